"""Containers on a machine without a Docker engine or registry access: podman, and stand-ins for
the images the product's Dockerfile and docker-compose.yml name.

    python -m hookstream_dev.containers images    # base + stand-ins (once) and the product images
    python -m hookstream_dev.containers service   # podman's Docker API; prints DOCKER_HOST=...
    python -m hookstream_dev.containers down      # stop that API service

podman runs with devtools/containers/containers.conf (runc, cgroupfs, ulimits this machine
allows). The stand-ins (devtools/containers/*/Containerfile, each saying how it differs from the
official image) are tagged with the official names, so the Dockerfile and the compose file build
and run unchanged. A TLS-intercepting proxy's CA bundle reaches builds as the `ca-bundle` build
secret, never a layer. docs/operations.md records what ran.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from hookstream_dev.infra import REPO_ROOT, STATE_DIR, InfraError, _alive, _say

CONTAINERS = REPO_ROOT / "devtools" / "containers"
WORK = STATE_DIR / "containers"
SOCKET = WORK / "podman.sock"
SERVICE_PID = WORK / "podman-service.pid"
TICKER_PID = WORK / "healthchecks.pid"
HEALTH_TICK = 5.0
DEBIAN_MIRROR = "http://deb.debian.org/debian"
CA_BUNDLE = Path(os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"))
PRODUCT_IMAGE = "hookstream:local"
RECEIVER_IMAGE = "hookstream-receiver:local"


def base_image(suite: str) -> str:
    """The local name of the imported Debian root file system of `suite`."""
    return f"localhost/debian:{suite}-minbase"


def podman_env() -> dict[str, str]:
    """The environment every podman command here runs with."""
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS / "containers.conf")}


def podman(*args: str, capture: bool = False) -> str:
    """Run podman; fail with its output when it exits non-zero."""
    podman_path = shutil.which("podman")
    if podman_path is None:
        raise InfraError("podman is not installed: apt-get install -y podman runc debootstrap")
    result = subprocess.run(
        [podman_path, *args], env=podman_env(), capture_output=capture, text=True, check=False
    )
    if result.returncode:
        output = f"\n{result.stdout}{result.stderr}" if capture else ""
        raise InfraError(f"podman {' '.join(args[:2])} failed ({result.returncode}){output}")
    return result.stdout if capture else ""


def image_exists(name: str) -> bool:
    found = subprocess.run(
        ["podman", "image", "exists", name], env=podman_env(), check=False, capture_output=True
    )
    return found.returncode == 0


def ensure_base(suite: str = "bookworm") -> str:
    """Debian `suite` (minbase) from Debian's mirror, imported as an image once."""
    name = base_image(suite)
    if image_exists(name):
        return name
    root = WORK / f"rootfs-{suite}"
    shutil.rmtree(root, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    _say(f"containers: debootstrap {suite} into {root}…")
    subprocess.run(
        ["debootstrap", "--variant=minbase", suite, str(root), DEBIAN_MIRROR],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(["podman", "import", "-", name], stdin=tar.stdout, env=podman_env(), check=True)
    tar.wait()
    shutil.rmtree(root)
    return name


def build(context: Path, tag: str, *extra: str) -> None:
    """`podman build` in Docker format (HEALTHCHECK and SHELL kept), with the CA secret."""
    secret = ["--secret", f"id=ca-bundle,src={CA_BUNDLE}"] if CA_BUNDLE.is_file() else []
    _say(f"containers: building {tag}")
    podman("build", "--format", "docker", *secret, *extra, "--tag", tag, str(context))


def official_names() -> dict[str, str]:
    """The official images the product names, read from its files so the tags stay in step."""
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    compose = (REPO_ROOT / "docker-compose.yml").read_text()
    python = re.search(r"^FROM (python:\S+)", dockerfile, re.M)
    kafka = re.search(r"image: (apache/kafka:\S+)", compose)
    postgres = re.search(r"image: (postgres:\S+)", compose)
    if not (python and kafka and postgres):
        raise InfraError("Dockerfile or docker-compose.yml no longer names python, kafka, postgres")
    return {
        "python": f"docker.io/library/{python[1]}",
        "kafka": f"docker.io/{kafka[1]}",
        "postgres": f"docker.io/library/{postgres[1]}",
    }


def kafka_libs() -> Path:
    """The stand-in's jars, fetched with Maven into the state folder (again when pom.xml moves)."""
    pom = CONTAINERS / "kafka" / "pom.xml"
    libs = WORK / "kafka-libs"
    stamp = libs / ".pom"
    if stamp.is_file() and stamp.read_text() == pom.read_text():
        return libs
    shutil.rmtree(libs, ignore_errors=True)
    subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
        ],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    stamp.write_text(pom.read_text())
    return libs


def ensure_standins(rebuild: bool = False) -> dict[str, str]:
    """The python, kafka and postgres stand-ins, built once (or again with `rebuild`)."""
    ensure_base()
    names = official_names()
    if rebuild or not image_exists(names["python"]):
        build(CONTAINERS / "python", names["python"])
    if rebuild or not image_exists(names["kafka"]):
        build(CONTAINERS / "kafka", names["kafka"], "--build-context", f"libs={kafka_libs()}")
    if rebuild or not image_exists(names["postgres"]):
        python = ["--build-arg", f"PYTHON_IMAGE={names['python']}"]
        build(CONTAINERS / "postgres", names["postgres"], *python)
    return names


def build_product() -> None:
    """The product's runtime image and the demo receiver, as compose names them."""
    build(REPO_ROOT, PRODUCT_IMAGE, "--target", "runtime")
    build(REPO_ROOT, RECEIVER_IMAGE, "--target", "demo-receiver")


def run_healthchecks() -> None:
    """Run the health checks of every running container that has one, every HEALTH_TICK s.

    podman schedules health checks with systemd timers; without systemd (these machines) they
    never run, and compose's `service_healthy` waits forever. This loop stands in for the timer.
    """
    while True:
        listing = podman("ps", "--format", "{{.ID}}\t{{.Status}}", capture=True)
        for line in listing.splitlines():
            container, _, status = line.partition("\t")
            if "healthy" in status or "starting" in status:
                subprocess.run(
                    ["podman", "healthcheck", "run", container],
                    env=podman_env(),
                    capture_output=True,
                    check=False,
                )
        time.sleep(HEALTH_TICK)


def _detached(command: list[str], pid_file: Path, log_name: str) -> subprocess.Popen[bytes]:
    log = (WORK / log_name).open("ab")
    process = subprocess.Popen(
        command,
        env=podman_env(),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    pid_file.write_text(f"{process.pid}\n")
    return process


def _running(pid_file: Path) -> bool:
    return pid_file.is_file() and _alive(int(pid_file.read_text()))


def start_service() -> str:
    """podman's Docker-compatible API on a socket of this checkout, and the health-check loop;
    returns the API's DOCKER_HOST."""
    host = f"unix://{SOCKET}"
    WORK.mkdir(parents=True, exist_ok=True)
    if not _running(TICKER_PID):
        ticker = [sys.executable, "-m", "hookstream_dev.containers", "healthchecks"]
        _detached(ticker, TICKER_PID, "healthchecks.log")
    if _running(SERVICE_PID) and SOCKET.exists():
        return host
    SOCKET.unlink(missing_ok=True)
    command = ["podman", "system", "service", "--time=0", host]
    service = _detached(command, SERVICE_PID, "podman-service.log")
    deadline = time.monotonic() + 20
    while not SOCKET.exists():
        if service.poll() is not None or time.monotonic() > deadline:
            raise InfraError(f"podman system service did not start: see {WORK}/podman-service.log")
        time.sleep(0.1)
    return host


def stop_service() -> None:
    """Stop the API service and the health-check loop this checkout started, if they run."""
    for pid_file in (SERVICE_PID, TICKER_PID):
        if _running(pid_file):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        pid_file.unlink(missing_ok=True)
    SOCKET.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hookstream_dev.containers", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    images = commands.add_parser("images", help="build the stand-ins (once) and the product")
    images.add_argument("--rebuild", action="store_true", help="build the stand-ins again")
    commands.add_parser("service", help="start podman's Docker API; print DOCKER_HOST")
    commands.add_parser("down", help="stop podman's Docker API service")
    commands.add_parser("healthchecks", help="run containers' health checks (no systemd here)")
    args = parser.parse_args(argv)
    try:
        if args.command == "images":
            ensure_standins(args.rebuild)
            build_product()
        elif args.command == "service":
            print(f"DOCKER_HOST={start_service()}")
        elif args.command == "healthchecks":
            run_healthchecks()
        else:
            stop_service()
    except (InfraError, subprocess.CalledProcessError) as error:
        sys.exit(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
