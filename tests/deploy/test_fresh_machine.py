"""The README's two steps on a bare Debian 13 (Python 3.13, OpenJDK 21): a podman container made
from `debootstrap --variant=minbase trixie` and nothing else gets what the README lists
(`make`, `python3`, `curl`), a copy of this checkout, `make run`, and the README's three-step
example, which must end in a successful delivery.

`make fresh-machine-test` runs it (HOOKSTREAM_FRESH_MACHINE_TEST=1; root, podman, about ten
minutes of downloads); docs/operations.md records its runs. The container trusts this machine's
local CAs (a TLS-intercepting proxy's) by a read-only mount, as the machine itself does.
"""

import json
import os
import subprocess
import time
from collections.abc import Iterator

import pytest
from deploy_tools import REPO

from hookstream_dev.containers import ensure_base, podman_env
from support import wait_until

pytestmark = pytest.mark.skipif(
    not os.environ.get("HOOKSTREAM_FRESH_MACHINE_TEST"),
    reason="`make fresh-machine-test` runs this (podman as root, minutes of downloads)",
)

CONTAINER = "hookstream-fresh-trixie"
LOCAL_CAS = "/usr/local/share/ca-certificates"
CHECKOUT = "/root/hookstream"
API = "http://127.0.0.1:8000/api/v1/webhooks"


def _podman(*args: str, stdin: bytes | None = None, timeout: float = 60) -> str:
    result = subprocess.run(
        ["podman", *args], env=podman_env(), input=stdin, capture_output=True, timeout=timeout
    )
    output = (result.stdout[-3000:] + result.stderr[-3000:]).decode(errors="replace")
    assert result.returncode == 0, f"podman {args[:3]} failed:\n{output}"
    return result.stdout.decode()


def sh(script: str, timeout: float = 120) -> str:
    """Run a shell script as root in the container, in the checkout when it is there."""
    return _podman("exec", "--workdir", "/root", CONTAINER, "bash", "-ec", script, timeout=timeout)


@pytest.fixture
def machine() -> Iterator[str]:
    subprocess.run(["podman", "rm", "-f", CONTAINER], env=podman_env(), capture_output=True)
    _podman(
        "run", "--detach", "--name", CONTAINER,
        "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--volume", f"{LOCAL_CAS}:{LOCAL_CAS}:ro",
        ensure_base("trixie"), "sleep", "infinity",
    )  # fmt: skip
    yield CONTAINER
    subprocess.run(["podman", "rm", "-f", CONTAINER], env=podman_env(), capture_output=True)


def _checkout() -> bytes:
    """This working tree as a tar stream, without local state (.git, .venv, .hookstream)."""
    excluded = [f"--exclude=./{name}" for name in (".git", ".venv", ".hookstream")]
    return subprocess.run(
        ["tar", "-C", str(REPO), *excluded, "--exclude=__pycache__", "-c", "."],
        capture_output=True,
        check=True,
    ).stdout


async def test_make_run_and_the_readme_example_deliver_on_a_bare_debian_13(machine: str) -> None:
    started = time.monotonic()
    sh("apt-get update -q && apt-get install -y -q make python3 curl ca-certificates", 600)
    sh(f"mkdir -p {CHECKOUT}")
    _podman("exec", "-i", machine, "tar", "-x", "-C", CHECKOUT, stdin=_checkout(), timeout=120)
    sh(f"cd {CHECKOUT} && make run", timeout=1800)
    run_took = time.monotonic() - started
    versions = sh(f"{CHECKOUT}/.venv/bin/python --version; java -version 2>&1 | head -1")
    assert "Python 3.13" in versions and '"21' in versions, versions

    token = sh(f"cat {CHECKOUT}/.hookstream/token").strip()
    auth = f"Authorization: Bearer {token}"
    webhook = {
        "name": "demo",
        "url": "https://receiver.hookstream.test:8443/hooks/demo",
        "eventTypes": ["com.qlik.v1.app.created"],
        "secret": "my-demo-secret-that-is-32-chars-long",
    }
    created = sh(
        f"curl -sf -X POST {API} -H '{auth}' -H 'Content-Type: application/json' "
        f"-d '{json.dumps(webhook)}'"
    )
    webhook_id = json.loads(created)["id"]

    def delivered() -> bool:
        sh(f"cd {CHECKOUT} && .venv/bin/hookstream-dev emit --tenant demo-tenant --user demo-admin")
        listing = json.loads(sh(f"curl -sf {API}/{webhook_id}/deliveries -H '{auth}'"))
        return any(delivery["status"] == "success" for delivery in listing["data"])

    await wait_until(delivered, timeout=120, interval=2)
    print(
        f"\nfresh Debian 13: {versions.strip()}; make run took {run_took:.0f} s; "
        f"delivered after {time.monotonic() - started:.0f} s in all"
    )
