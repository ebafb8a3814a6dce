"""The four services as local processes, for `make run`, the end-to-end and the fault tests.

`ServiceSet` runs each service as `python -m <package>.main` with one environment, logs to a
file per instance, and waits for its `/readyz`. Tests start instances as children and kill them
at will; `make run` and the fault suite hand them to a supervisor (hookstream_dev.supervisor),
which restarts any that exits, as Kubernetes would.
"""

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiokafka.admin import AIOKafkaAdminClient
from cryptography.fernet import Fernet

from hookstream_common.kafka import client_options
from hookstream_common.settings import KafkaSecurity
from hookstream_dev import infra, supervisor
from hookstream_dev.supervisor import ServiceSpec
from hookstream_dev.tokens import DEV_AUDIENCE, DEV_ISSUER

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
API_OPS_PORT_SETTING = "HOOKSTREAM_OPS_PORT"
"""The API serves its operations endpoints on a port of their own; the workers on their one."""
DEV_ENV = infra.STATE_DIR / "dev.env"
RUN_DIR = infra.STATE_DIR / "run"


def kafka_security_of(env: Mapping[str, str]) -> KafkaSecurity:
    """The Kafka security an installation's environment gives its services (`KAFKA_*`), for
    the tools that talk to the same cluster from this process."""
    fields = KafkaSecurity.model_fields
    given = {key.removeprefix("KAFKA_").lower(): value for key, value in env.items()}
    return KafkaSecurity(**{name: value for name, value in given.items() if name in fields})


async def delete_topics_under(
    bootstrap: str, prefix: str, security: KafkaSecurity | None = None
) -> None:
    """Delete every topic of one installation: a test session or a benchmark leaves none
    behind on the shared broker (thousands of stale partitions once exhausted its heap)."""
    admin = AIOKafkaAdminClient(
        **{**client_options(bootstrap, security), "request_timeout_ms": 60000}
    )
    await admin.start()
    try:
        ours = [t for t in await admin.list_topics() if t.startswith(f"{prefix}.")]
        for start in range(0, len(ours), 500):
            await admin.delete_topics(ours[start : start + 500])
    finally:
        await admin.close()


free_port = infra.free_port


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


def service_of(instance: str) -> str:
    """The service an instance runs: `dispatcher-2` is a second dispatcher."""
    service = instance.rsplit("-", 1)[0] if instance not in MODULES else instance
    if service not in MODULES:
        raise ValueError(f"unknown service instance {instance!r}")
    return service


@dataclass
class ServiceSet:
    """The service instances of one installation: one environment, one port each.

    `ports` names the instances: a service (`api`) or another copy of one (`dispatcher-2`);
    `ops_ports` gives API instances their operations port (a free one if not given);
    `instance_env` adds settings to single instances (e.g. a second matcher's data dir).
    """

    env: dict[str, str]
    ports: dict[str, int]
    log_dir: Path
    ops_ports: dict[str, int] = field(default_factory=dict)
    instance_env: dict[str, dict[str, str]] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    run_dir: Path | None = None  # where the supervisor keeps its pid files, once supervised

    def __post_init__(self) -> None:
        for instance in self.ports:
            if service_of(instance) == "api":
                self.ops_ports.setdefault(instance, free_port())

    def url(self, instance: str) -> str:
        """Base URL of an instance's HTTP endpoints (the API's public port)."""
        return f"http://127.0.0.1:{self.ports[instance]}"

    def ops_port(self, instance: str) -> int:
        """The port of an instance's /metrics, /healthz and /readyz."""
        return self.ops_ports.get(instance, self.ports[instance])

    def ops_url(self, instance: str) -> str:
        """Base URL of an instance's /metrics, /healthz and /readyz."""
        return f"http://127.0.0.1:{self.ops_port(instance)}"

    def spec(self, instance: str) -> ServiceSpec:
        """How to run an instance: command, environment, log file."""
        service = service_of(instance)
        env = {
            **os.environ,
            **self.env,
            **self.instance_env.get(instance, {}),
            PORT_SETTINGS[service]: str(self.ports[instance]),
        }
        if instance in self.ops_ports:
            env[API_OPS_PORT_SETTING] = str(self.ops_ports[instance])
        return ServiceSpec(
            name=instance,
            command=[sys.executable, "-m", MODULES[service]],
            env=env,
            log=str(self.log_dir / f"{instance}.log"),
            cwd=str(infra.REPO_ROOT),
        )

    def start(self, instance: str, wait: bool = True) -> subprocess.Popen[bytes]:
        """Start one instance as our child; with `wait`, return once its /readyz answers 200."""
        spec = self.spec(instance)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(spec.log, "ab") as log:
            process = subprocess.Popen(
                spec.command,
                env=spec.env,
                cwd=spec.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.processes[instance] = process
        if wait:
            self.wait_ready(instance)
        return process

    def supervise(self, run_dir: Path) -> int:
        """Hand every instance to a detached supervisor on `run_dir`; return its pid."""
        supervisor.write_specs(run_dir, [self.spec(name) for name in self.ports])
        self.run_dir = run_dir
        return supervisor.launch(run_dir, infra.REPO_ROOT)

    def pid(self, instance: str) -> int | None:
        """The instance's current process, or None while it is down."""
        process = self.processes.get(instance)
        if process is not None:
            return process.pid if process.poll() is None else None
        return supervisor.service_pid(self.run_dir, instance) if self.run_dir else None

    def ready(self, instance: str) -> bool:
        """True if the instance's /readyz answers 200 now."""
        try:
            return httpx.get(f"{self.ops_url(instance)}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, instance: str, timeout: float = 90.0) -> None:
        """Poll /readyz; on timeout or exit, fail with the end of the instance's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_running(instance)
            if self.ready(instance):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{instance} not ready after {timeout:.0f}s\n{self.tail(instance)}")

    def _check_running(self, instance: str) -> None:
        """Fail fast when nothing will make the instance ready: it or its supervisor ended."""
        process = self.processes.get(instance)
        if process is not None and process.poll() is not None:
            code = process.returncode
            raise RuntimeError(f"{instance} exited with {code}\n{self.tail(instance)}")
        if self.run_dir is not None and supervisor.supervisor_pid(self.run_dir) is None:
            log = self.run_dir / supervisor.LOG_FILE
            raise RuntimeError(f"the supervisor exited\n{infra.tail(log)}\n{self.tail(instance)}")

    def tail(self, instance: str, lines: int = 40) -> str:
        """The end of an instance's log, for error messages."""
        path = self.log_dir / f"{instance}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return f"--- {path} ---\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self, instance: str, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        """Signal one child instance and wait for it; SIGKILL if it does not exit in time."""
        process = self.processes.pop(instance, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop_all(self) -> None:
        """Stop every instance this set started, and its supervisor if it has one."""
        for instance in list(self.processes):
            self.stop(instance)
        if self.run_dir is not None:
            supervisor.stop(self.run_dir)


def service_environment(
    kafka: str,
    database: str,
    *,
    ca_file: Path,
    static_hosts: Mapping[str, str],
    prefix: str | None = None,
    keys: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment every service of one local installation runs with (`make run`, a test
    session, a benchmark, a fault scenario): its servers and topic prefix, its keys (fresh
    unless given), and the development-only openings that let the dispatcher reach a loopback
    receiver by name and trust its CA. Test receivers bind whatever port is free, so every
    unprivileged port is allowed (`HOOKSTREAM_ALLOWED_PORTS` takes ranges) besides 443.
    `overrides` are the caller's own settings."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "DATABASE_URL": database,
        **({"HOOKSTREAM_TOPIC_PREFIX": prefix} if prefix else {}),
        **(
            keys
            or {
                "HOOKSTREAM_JWT_KEY": secrets.token_urlsafe(32),
                "HOOKSTREAM_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            }
        ),
        "HOOKSTREAM_JWT_ISSUER": DEV_ISSUER,
        "HOOKSTREAM_JWT_AUDIENCE": DEV_AUDIENCE,
        "HOOKSTREAM_EXTRA_CA_FILE": str(ca_file),
        "HOOKSTREAM_ALLOW_NETWORKS": "127.0.0.0/8",
        "HOOKSTREAM_ALLOWED_PORTS": "443,1024-65535",
        "HOOKSTREAM_STATIC_HOSTS": ",".join(f"{n}={ip}" for n, ip in static_hosts.items()),
        **(overrides or {}),
    }


def dev_environment(kafka: str, database: str) -> dict[str, str]:
    """What `make run` gives every service: the local servers, the kept keys, the demo
    receiver (on IPv6 loopback too, and on its port only besides 443)."""
    return service_environment(
        kafka,
        database,
        ca_file=infra.STATE_DIR / "tls" / "ca.pem",
        static_hosts={"receiver.hookstream.test": "127.0.0.1"},
        keys=dev_secrets(),
        overrides={
            "HOOKSTREAM_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",
            "HOOKSTREAM_ALLOWED_PORTS": f"443,{RECEIVER_PORT}",
        },
    )


def stop_detached(timeout: float = 15.0) -> None:
    """Stop what a previous `make run` left running: the supervisor with its services, then
    the receiver (and services of a run from before the supervisor): SIGKILL stragglers."""
    supervisor.stop(RUN_DIR)
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
DEMO_API_OPS_PORT = 8004
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
    from hookstream_common.tokens import TENANT_ADMIN
    from hookstream_dev.receiver import ensure_tls
    from hookstream_dev.tokens import mint_token

    kafka, database = infra.ensure_kafka(), infra.ensure_postgres()
    ensure_tls(infra.STATE_DIR / "tls")
    stop_detached()
    services = ServiceSet(
        env=dev_environment(kafka, database),
        ports=DEMO_PORTS,
        ops_ports={"api": DEMO_API_OPS_PORT},
        log_dir=infra.LOGS,
    )
    print(f"starting {', '.join(MODULES)} under a supervisor…", file=sys.stderr, flush=True)
    services.supervise(RUN_DIR)
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
  console         {api}/console/#token={token}
                  (asks, then signs the demo admin in)
  API docs        {api}/docs
  demo receiver   {receiver}
                  what it received: https://127.0.0.1:{RECEIVER_PORT}/requests
  logs            .hookstream/logs/   restarts: .hookstream/run/supervisor.log
  stop everything make down

A token for tenant {DEMO_TENANT}, user {DEMO_USER} (TenantAdmin), valid 24 h:
{token}

Try it:
  export TOKEN=$(cat .hookstream/token)
  # 1. create a webhook that points at the demo receiver
  curl -s -X POST {api}/api/v1/webhooks -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' -d '{body}'
  # 2. publish an event for the tenant
  .venv/bin/hookstream-dev emit --tenant {DEMO_TENANT} --user {DEMO_USER}
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
