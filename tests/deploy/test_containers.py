"""The image, docker-compose.yml and the Kubernetes dev overlay, run for real on podman.

`make deploy-test` runs this module (HOOKSTREAM_DEPLOY_TEST=1): it builds the stand-in base
images and the product's images (hookstream_dev.containers), then does what the README tells a
self-hoster: copy .env.example, make the keys, start the stack, register a webhook and publish
an event from outside the compose network. Then `podman kube play` runs the Kubernetes dev
overlay's workloads against the compose file's Kafka and Postgres. It takes minutes and needs
root (podman), so `make test` skips it; docs/operations.md records its runs and what podman
refuses.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from deploy_tools import COMPOSE, NEEDS_COMPOSE, REPO

from hookstream_dev.containers import (
    build_product,
    ensure_standins,
    podman_env,
    start_service,
    stop_service,
)
from hookstream_dev.stack import free_port
from support import wait_until

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("HOOKSTREAM_DEPLOY_TEST"),
        reason="`make deploy-test` runs this (podman as root, minutes)",
    ),
    NEEDS_COMPOSE,
]

PROJECT = "hookstream-deploy-test"
SERVICES = ("api", "matcher", "dispatcher", "janitor")
TENANT = "deploy-test"
SECRET = secrets.token_hex(20)
BIN = Path(sys.executable).parent


def _openssl(*args: str) -> str:
    return subprocess.run(
        ["openssl", *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """.env.example with the keys made as its comments say, the demo's values and free ports."""
    values = {
        "POSTGRES_PASSWORD": _openssl("rand", "-hex", "24"),
        "HOOKSTREAM_ENCRYPTION_KEYS": _openssl("rand", "-base64", "32").translate(
            str.maketrans("+/", "-_")
        ),
        "HOOKSTREAM_JWT_KEY": _openssl("rand", "-hex", "32"),
        "HOOKSTREAM_ALLOW_NETWORKS": "172.16.0.0/12,192.168.0.0/16,10.0.0.0/8",
        "HOOKSTREAM_EXTRA_CA_FILE": "/tls/ca.pem",
        "HOOKSTREAM_ALLOWED_PORTS": "443,8443",
        "HOOKSTREAM_API_PORT": str(free_port()),
        "HOOKSTREAM_RECEIVER_PORT": str(free_port()),
        "HOOKSTREAM_KAFKA_EXTERNAL_PORT": str(free_port()),
    }
    lines = []
    for line in (REPO / ".env.example").read_text().splitlines():
        name = line.partition("=")[0]
        lines.append(f"{name}={values[name]}" if name in values else line)
    path = tmp_path_factory.mktemp("compose") / ".env"
    path.write_text("\n".join(lines) + "\n")
    return {**values, "path": str(path)}


@pytest.fixture(scope="module")
def docker_host() -> Iterator[str]:
    """The stand-ins and the product's images built, podman's Docker API serving."""
    ensure_standins()
    build_product()
    yield start_service()
    stop_service()


def compose(
    docker_host: str,
    env_file: dict[str, str],
    *args: str,
    project: str = PROJECT,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """docker compose (compose's own binary) on this checkout's compose file, through podman."""
    command = [COMPOSE, "--env-file", env_file["path"], "-p", project, "--profile", "demo", *args]
    result = subprocess.run(
        command,
        cwd=REPO,
        env={**podman_env(), "DOCKER_HOST": docker_host},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"compose {args[0]} failed:\n{result.stdout}{result.stderr}"
    return result


def _states(docker_host: str, env_file: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each service's container state; compose prints a JSON array or one object a line."""
    output = compose(docker_host, env_file, "ps", "--all", "--format", "json").stdout
    rows = (
        json.loads(output)
        if output.lstrip().startswith("[")
        else [json.loads(line) for line in output.splitlines() if line.strip()]
    )
    return {row["Service"]: row for row in rows}


async def _started(docker_host: str, env_file: dict[str, str]) -> None:
    """`up -d`, then migrate has exited 0 and the four services report healthy."""
    compose(docker_host, env_file, "up", "-d")

    def ready() -> bool:
        states = _states(docker_host, env_file)
        migrate = states.get("migrate", {})
        assert not (migrate.get("State") == "exited" and migrate.get("ExitCode")), migrate
        healthy = all(states.get(name, {}).get("Health") == "healthy" for name in SERVICES)
        return migrate.get("State") == "exited" and healthy

    await wait_until(ready, timeout=180, interval=2)


def _cli(program: str, *args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [BIN / program, *args], env={**os.environ, **env}, capture_output=True, text=True
    )
    assert result.returncode == 0, f"{program} {args[0]} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture
def stack(docker_host: str, env_file: dict[str, str]) -> Iterator[dict[str, str]]:
    """The compose stack of one test, removed with its volumes after it (ports are reused)."""
    yield {"docker_host": docker_host, **env_file}
    compose(docker_host, env_file, "down", "--volumes")


async def test_compose_delivers_a_signed_event_and_keeps_webhooks_across_down_and_up(
    stack: dict[str, str], env_file: dict[str, str]
) -> None:
    docker_host = stack["docker_host"]
    await _started(docker_host, env_file)
    api = {"HOOKSTREAM_API": f"http://127.0.0.1:{env_file['HOOKSTREAM_API_PORT']}"}
    token_env = {"HOOKSTREAM_JWT_KEY": env_file["HOOKSTREAM_JWT_KEY"]}
    token = _cli(
        "hookstream-dev",
        "token",
        "--tenant",
        TENANT,
        "--user",
        "admin",
        "--role",
        "TenantAdmin",
        env=token_env,
    ).strip()
    cli_env = {**api, "HOOKSTREAM_TOKEN": token}
    created = _cli(
        "hookstream",
        "webhooks",
        "create",
        "--name",
        "deploy test",
        "--url",
        "https://receiver.hookstream.test:8443/hooks/deploy-test",
        "--event-type",
        "com.qlik.v1.app.created",
        "--secret",
        SECRET,
        "-o",
        "json",
        env=cli_env,
    )
    webhook_id = json.loads(created)["id"]

    ca = compose(docker_host, env_file, "exec", "-T", "receiver", "cat", "/tls/ca.pem").stdout
    ca_file = Path(env_file["path"]).with_name("ca.pem")
    ca_file.write_text(ca)
    trust = ssl.create_default_context(cafile=ca_file)
    receiver = f"https://127.0.0.1:{env_file['HOOKSTREAM_RECEIVER_PORT']}/requests"
    kafka = {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{env_file['HOOKSTREAM_KAFKA_EXTERNAL_PORT']}"}

    def delivered() -> list[dict[str, Any]]:
        """Publish from the host through Kafka's EXTERNAL listener until one arrives: the first
        events may reach the matcher before the new webhook's route does."""
        _cli("hookstream-dev", "emit", "--tenant", TENANT, "--user", "admin", env=kafka)
        arrived = httpx.get(receiver, verify=trust, timeout=5).json()
        return [r for r in arrived if r["path"] == "/hooks/deploy-test"]

    [request, *_] = await wait_until(delivered, timeout=120, interval=1)
    body = request["body"].encode()
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert request["headers"]["qlik-signature"] == expected
    assert json.loads(body)["eventType"] == "com.qlik.v1.app.created"

    compose(docker_host, env_file, "down")
    await _started(docker_host, env_file)
    kept = json.loads(_cli("hookstream", "webhooks", "get", webhook_id, "-o", "json", env=cli_env))
    assert kept["name"] == "deploy test" and kept["secretKeyAdded"]


# --- Kubernetes: the dev overlay's workloads with `podman kube play` ---------------------------

KUBE_PROJECT = "hookstream-kube-test"
PLAYED = {"ConfigMap", "Deployment"}
"""What podman 4.3 plays of the overlay. It refuses every other kind the overlay holds, alone
("YAML document does not contain any supported kube kind") and skips them in a stream; a
Secret document it cannot read either, so the test creates the podman secret itself."""
REFUSED = {
    "Namespace",
    "ServiceAccount",
    "Service",
    "CronJob",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "NetworkPolicy",
    "ServiceMonitor",
    "PrometheusRule",
}
OPS_PORTS = {"api": 8004, "matcher": 8001, "dispatcher": 8002}


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *args], env=podman_env(), capture_output=True, text=True, timeout=300
    )
    assert not check or result.returncode == 0, f"podman {args[:2]}:\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def dependencies(docker_host: str, env_file: dict[str, str]) -> Iterator[str]:
    """Kafka and Postgres from the compose file (stand-ins); returns their network's name."""
    compose(docker_host, env_file, "up", "-d", "--wait", "kafka", "postgres", project=KUBE_PROJECT)
    yield f"{KUBE_PROJECT}_default"
    compose(docker_host, env_file, "down", "--volumes", project=KUBE_PROJECT)


def _rendered(directory: Path) -> list[dict[str, Any]]:
    output = subprocess.run(
        ["kubectl", "kustomize", REPO / "deploy" / "k8s" / "overlays" / "dev"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (directory / "dev.yaml").write_text(output)
    return [doc for doc in yaml.safe_load_all(output) if doc]


def _secret(env_file: dict[str, str]) -> None:
    """hookstream-secrets as podman 4.3 reads a secretKeyRef: a JSON map of base64 values."""
    values = {
        "DATABASE_URL": f"postgresql://hookstream:{env_file['POSTGRES_PASSWORD']}"
        "@postgres:5432/hookstream",
        "HOOKSTREAM_ENCRYPTION_KEYS": env_file["HOOKSTREAM_ENCRYPTION_KEYS"],
        "HOOKSTREAM_JWT_KEY": env_file["HOOKSTREAM_JWT_KEY"],
    }
    encoded = {name: base64.b64encode(value.encode()).decode() for name, value in values.items()}
    path = Path(env_file["path"]).with_name("secret.json")
    path.write_text(json.dumps(encoded))
    podman("secret", "rm", "hookstream-secrets", check=False)
    podman("secret", "create", "hookstream-secrets", str(path))


def _migrate_pod(api: dict[str, Any]) -> dict[str, Any]:
    """The API's init container as a Pod that runs once: podman 4.3 restarts init containers
    under the pod's restartPolicy (Always, for a Deployment) and then fails to remove them."""
    spec = api["spec"]["template"]["spec"]
    [migrate] = spec.pop("initContainers")
    pod_spec = {"restartPolicy": "Never", "securityContext": spec["securityContext"]}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hookstream-migrate"},
        "spec": {**pod_spec, "containers": [migrate]},
    }


def _exec(container: str, *command: str) -> str:
    return podman("exec", container, *command).stdout


async def test_kube_play_runs_the_dev_overlay_workloads_with_their_security_context(
    dependencies: str, env_file: dict[str, str], tmp_path: Path
) -> None:
    docs = _rendered(tmp_path)
    for kind in {doc["kind"] for doc in docs} - PLAYED:
        [doc] = [doc for doc in docs if doc["kind"] == kind][:1]
        alone = tmp_path / f"{kind}.yaml"
        alone.write_text(yaml.safe_dump(doc))
        refused = podman("kube", "play", str(alone), check=False)
        assert refused.returncode != 0 and "supported kube kind" in refused.stderr, kind
        assert kind in REFUSED, f"podman refuses {kind}: add it to REFUSED and docs"

    podman("tag", "hookstream:local", "hookstream:dev")
    _secret(env_file)
    played = [doc for doc in docs if doc["kind"] in PLAYED]
    [api] = [doc for doc in played if doc["metadata"]["name"] == "hookstream-api"]
    migrate = tmp_path / "migrate.yaml"
    migrate.write_text(yaml.safe_dump(_migrate_pod(api)))
    workloads = tmp_path / "workloads.yaml"
    workloads.write_text(yaml.safe_dump_all(played))
    try:
        podman("kube", "play", "--network", dependencies, str(migrate))
        status = "{{.State.Status}} {{.State.ExitCode}}"

        def migrated() -> bool:
            state = podman("inspect", "hookstream-migrate-migrate", "--format", status).stdout
            assert state.split() != ["exited", "1"], podman("logs", "hookstream-migrate-migrate")
            return state.split() == ["exited", "0"]

        await wait_until(migrated, timeout=60, interval=1)
        podman("kube", "play", "--network", dependencies, str(workloads))
        for service, port in OPS_PORTS.items():
            container = f"hookstream-{service}-pod-0-{service}"
            probe = (
                f"__import__('urllib.request').request.urlopen('http://127.0.0.1:{port}/readyz')"
            )

            def ready(container: str = container, probe: str = probe) -> bool:
                run = podman("exec", container, "python", "-c", probe, check=False)
                return run.returncode == 0

            await wait_until(ready, timeout=90, interval=1)
            assert _exec(container, "id", "-u").strip() == "10001"
            status = _exec(container, "cat", "/proc/1/status")
            assert "CapEff:\t0000000000000000" in status and "NoNewPrivs:\t1" in status
            writable = podman("exec", container, "touch", "/probe", check=False)
            assert "Read-only file system" in writable.stderr
    finally:
        podman("kube", "down", str(workloads), check=False)
        podman("kube", "down", str(migrate), check=False)
        podman("secret", "rm", "hookstream-secrets", check=False)
