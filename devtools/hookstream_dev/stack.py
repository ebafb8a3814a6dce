"""The four services as local processes, for `make run` and the end-to-end tests.

`ServiceSet` starts each service as `python -m <package>.main` with one environment, logs to a
file per service, and waits for its `/readyz`. `make run` detaches them and records their pids,
so `make down` can stop them; tests keep them as children and kill them at will.
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from hookstream_dev import infra

MODULES = {
    "api": "hookstream_api.main",
    "matcher": "hookstream_matcher.main",
    "dispatcher": "hookstream_dispatcher.main",
    "janitor": "hookstream_janitor.main",
}
PORT_SETTINGS = {
    "api": "HOOKSTREAM_PORT",
    "matcher": "HOOKSTREAM_MATCHER_PORT",
    "dispatcher": "HOOKSTREAM_DISPATCHER_PORT",
    "janitor": "HOOKSTREAM_JANITOR_PORT",
}
DEV_ENV = infra.STATE_DIR / "dev.env"
RUN_DIR = infra.STATE_DIR / "run"


def free_port() -> int:
    """A loopback port nothing listens on now, for a service of a test or benchmark run."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dev_secrets() -> dict[str, str]:
    """The development JWT and encryption keys, made once and kept in `.hookstream/dev.env`."""
    if DEV_ENV.exists():
        pairs = (line.split("=", 1) for line in DEV_ENV.read_text().splitlines() if "=" in line)
        return {key: value for key, value in pairs}
    values = {
        "HOOKSTREAM_JWT_KEY": secrets.token_urlsafe(32),
        "HOOKSTREAM_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    DEV_ENV.parent.mkdir(parents=True, exist_ok=True)
    DEV_ENV.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    DEV_ENV.chmod(0o600)
    return values


@dataclass
class ServiceSet:
    """The services of one installation: one environment, one port each."""

    env: dict[str, str]
    ports: dict[str, int]
    log_dir: Path
    detached: bool = False
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, service: str) -> str:
        """Base URL of a service's HTTP endpoints."""
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self, service: str, wait: bool = True) -> subprocess.Popen[bytes]:
        """Start one service; with `wait`, return once its /readyz answers 200."""
        env = {**os.environ, **self.env, PORT_SETTINGS[service]: str(self.ports[service])}
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{service}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", MODULES[service]],
            env=env,
            cwd=infra.REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=self.detached,
        )
        self.processes[service] = process
        if self.detached:
            RUN_DIR.mkdir(parents=True, exist_ok=True)
            (RUN_DIR / f"{service}.pid").write_text(str(process.pid))
        if wait:
            self.wait_ready(service)
        return process

    def wait_ready(self, service: str, timeout: float = 90.0) -> None:
        """Poll /readyz; on timeout or exit, fail with the end of the service's log."""
        deadline = time.monotonic() + timeout
        process = self.processes[service]
        while time.monotonic() < deadline:
            if process.poll() is not None:
                code = process.returncode
                raise RuntimeError(f"{service} exited with {code}\n{self.tail(service)}")
            try:
                if httpx.get(f"{self.url(service)}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{service} not ready after {timeout:.0f}s\n{self.tail(service)}")

    def tail(self, service: str, lines: int = 40) -> str:
        """The end of a service's log, for error messages."""
        path = self.log_dir / f"{service}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return f"--- {path} ---\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self, service: str, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        """Signal one service and wait for it; SIGKILL if it does not exit in time."""
        process = self.processes.pop(service, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop_all(self) -> None:
        """Stop every service this set started."""
        for service in list(self.processes):
            self.stop(service)


def dev_environment(kafka: str, database: str) -> dict[str, str]:
    """What `make run` gives every service: the local servers, the keys, the demo receiver."""
    tls = infra.STATE_DIR / "tls"
    return {
        **dev_secrets(),
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "DATABASE_URL": database,
        "HOOKSTREAM_EXTRA_CA_FILE": str(tls / "ca.pem"),
        "HOOKSTREAM_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",
        "HOOKSTREAM_STATIC_HOSTS": "receiver.hookstream.test=127.0.0.1",
        "HOOKSTREAM_MATCHER_DATA_DIR": str(infra.STATE_DIR / "matcher"),
    }


def stop_detached(timeout: float = 15.0) -> None:
    """Stop the services a previous `make run` left running: all at once, SIGKILL stragglers."""
    pid_files = sorted(RUN_DIR.glob("*.pid")) if RUN_DIR.exists() else []
    running = set()
    for pid_file in pid_files:
        pid = int(pid_file.read_text())
        pid_file.unlink()
        try:
            os.kill(pid, signal.SIGTERM)
            running.add(pid)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while running and time.monotonic() < deadline:
        running = {pid for pid in running if _alive(pid)}
        time.sleep(0.1)
    for pid in running:
        os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


DEMO_TENANT = "demo-tenant"
DEMO_USER = "demo-admin"
DEMO_PORTS = {"api": 8000, "matcher": 8001, "dispatcher": 8002, "janitor": 8003}
RECEIVER_PORT = 8443


def _start_receiver(log_dir: Path) -> None:
    """The demo HTTPS receiver, detached like the services."""
    log = (log_dir / "receiver.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "hookstream_dev.receiver", "--port", str(RECEIVER_PORT)],
        cwd=infra.REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    (RUN_DIR / "receiver.pid").write_text(str(process.pid))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the demo receiver exited; see {log_dir / 'receiver.log'}")
        try:
            httpx.get(f"https://127.0.0.1:{RECEIVER_PORT}/", verify=False, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"the demo receiver did not start; see {log_dir / 'receiver.log'}")


def up() -> None:
    """`make run`: everything on this machine, then a token and a three-step example."""
    from hookstream_common.tokens import TENANT_ADMIN, mint_token
    from hookstream_dev.receiver import ensure_tls

    kafka, database = infra.ensure_kafka(), infra.ensure_postgres()
    ensure_tls(infra.STATE_DIR / "tls")
    stop_detached()
    services = ServiceSet(
        env=dev_environment(kafka, database),
        ports=DEMO_PORTS,
        log_dir=infra.LOGS,
        detached=True,
    )
    print(f"starting {', '.join(MODULES)}…", file=sys.stderr, flush=True)
    for name in MODULES:
        services.start(name, wait=False)
    for name in MODULES:
        services.wait_ready(name)
    _start_receiver(infra.LOGS)
    token = mint_token(services.env["HOOKSTREAM_JWT_KEY"], DEMO_TENANT, DEMO_USER, [TENANT_ADMIN])
    (infra.STATE_DIR / "token").write_text(token)
    api = services.url("api")
    receiver = f"https://receiver.hookstream.test:{RECEIVER_PORT}"
    body = (
        '{"name":"demo","url":"' + receiver + '/hooks/demo",'
        '"eventTypes":["com.qlik.v1.app.created"],'
        '"secret":"my-demo-secret-that-is-32-chars-long"}'
    )
    print(
        f"""
Hookstream is running.
  API             {api}/api/v1/webhooks
  console         {api}/docs  (interactive API docs)
  demo receiver   {receiver}
                  what it received: https://127.0.0.1:{RECEIVER_PORT}/requests
  logs            .hookstream/logs/   stop everything: make down

A token for tenant {DEMO_TENANT}, user {DEMO_USER} (TenantAdmin), valid 24 h:
{token}

Try it:
  export TOKEN=$(cat .hookstream/token)
  # 1. create a webhook that points at the demo receiver
  curl -s -X POST {api}/api/v1/webhooks -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' -d '{body}'
  # 2. publish an event for the tenant
  .venv/bin/hookstream emit --tenant {DEMO_TENANT} --user {DEMO_USER}
  # 3. see the delivery, with the id step 1 printed
  curl -s {api}/api/v1/webhooks/<id>/deliveries -H "Authorization: Bearer $TOKEN"
"""
    )


def down() -> None:
    """`make down`: stop the services, the receiver, Kafka and Postgres."""
    stop_detached()
    infra.stop_all()


def main(argv: list[str] | None = None) -> int:
    """`python -m hookstream_dev.stack up|down`."""
    command = (argv if argv is not None else sys.argv[1:]) or ["up"]
    try:
        {"up": up, "down": down}[command[0]]()
    except KeyError:
        print("usage: python -m hookstream_dev.stack up|down", file=sys.stderr)
        return 2
    except (RuntimeError, infra.InfraError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
