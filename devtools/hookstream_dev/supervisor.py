"""Run services as child processes and restart any that exits, as Kubernetes would.

Crash-only services (DESIGN decision 10) exit on what they cannot fix and rely on whatever
runs them to start them again; this is that for `make run` and the fault suite. Each restart
waits a capped exponential backoff and is logged as one JSON line. `<run dir>/<name>.pid`
always holds the current process of a service, so tools can SIGKILL or SIGSTOP it.

    python -m hookstream_dev.supervisor RUN_DIR      # reads RUN_DIR/services.json

SIGTERM or SIGINT stops every child (SIGTERM, then SIGKILL after a grace) and then the
supervisor.
"""

import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import structlog

from hookstream_common.logging import configure_logging

SPEC_FILE = "services.json"
PID_FILE = "supervisor.pid"
LOG_FILE = "supervisor.log"
STOP_GRACE = 25.0  # longer than the dispatcher's 20 s shutdown grace
_PR_SET_PDEATHSIG = 1

log = structlog.get_logger("hookstream_dev.supervisor")


@dataclass(frozen=True)
class ServiceSpec:
    """How to run one service process: `name` is unique (e.g. `dispatcher-2`)."""

    name: str
    command: list[str]
    env: dict[str, str]
    log: str
    cwd: str


@dataclass(frozen=True)
class Backoff:
    """Delay before restart n of a run of quick exits: initial · 2^(n-1), at most `maximum`.

    A process that stayed up `reset_after` seconds was healthy; its exit starts a new run.
    """

    initial: float = 0.5
    maximum: float = 10.0
    reset_after: float = 30.0

    def delay(self, quick_exits: int) -> float:
        return min(self.initial * 2 ** max(quick_exits - 1, 0), self.maximum)


@dataclass
class _Child:
    spec: ServiceSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    quick_exits: int = 0
    due: float = 0.0  # when to start it again, while it is not running


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the supervisor dies, so no service outlives it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_suffix(path.suffix + ".tmp")
    partial.write_text(text)
    os.replace(partial, path)


def _exit_reason(code: int) -> str:
    return signal.Signals(-code).name if code < 0 else f"exit {code}"


@dataclass
class Supervisor:
    """Keeps one process per spec running until asked to stop."""

    specs: list[ServiceSpec]
    run_dir: Path
    backoff: Backoff = field(default_factory=Backoff)
    grace: float = STOP_GRACE
    _children: list[_Child] = field(default_factory=list)
    _stopping: bool = False

    def run(self) -> None:
        """Start every service, restart what exits, and stop them all on SIGTERM or SIGINT."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._request_stop)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._children = [_Child(spec) for spec in self.specs]
        log.info("supervisor started", services=[spec.name for spec in self.specs])
        while not self._stopping:
            self._tick(time.monotonic())
            time.sleep(0.1)
        self._stop_children()
        log.info("supervisor stopped")

    def _request_stop(self, signum: int, frame: object) -> None:
        self._stopping = True

    def _tick(self, now: float) -> None:
        for child in self._children:
            if child.process is not None and child.process.poll() is not None:
                self._on_exit(child, now)
            if child.process is None and now >= child.due and not self._stopping:
                self._start(child)

    def _start(self, child: _Child) -> None:
        spec = child.spec
        Path(spec.log).parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log, "ab") as output:
            child.process = subprocess.Popen(
                spec.command,
                env=spec.env,
                cwd=spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # safe: the supervisor has one thread
            )
        child.started_at = time.monotonic()
        _write_atomically(self.run_dir / f"{spec.name}.pid", f"{child.process.pid}\n")
        log.info("service started", service=spec.name, pid=child.process.pid)

    def _on_exit(self, child: _Child, now: float) -> None:
        """Schedule the restart: the longer the run of quick exits, the longer the wait."""
        assert child.process is not None
        code, pid = child.process.returncode, child.process.pid
        uptime = now - child.started_at
        (self.run_dir / f"{child.spec.name}.pid").unlink(missing_ok=True)
        child.process = None
        if self._stopping:
            return
        child.quick_exits = 1 if uptime >= self.backoff.reset_after else child.quick_exits + 1
        delay = self.backoff.delay(child.quick_exits)
        child.restarts += 1
        child.due = now + delay
        log.warning(
            "service exited, restarting",
            service=child.spec.name,
            pid=pid,
            exit_code=code,
            reason=_exit_reason(code),
            uptime=round(uptime, 3),
            restarts=child.restarts,
            delay=delay,
        )

    def _stop_children(self) -> None:
        """SIGTERM all at once, so they drain in parallel; SIGKILL what outlasts the grace."""
        running = [c.process for c in self._children if c.process and c.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while any(p.poll() is None for p in running) and time.monotonic() < deadline:
            time.sleep(0.1)
        for process in running:
            if process.poll() is None:
                log.warning("service outlasted the grace, killing it", pid=process.pid)
                process.kill()
                process.wait()
        for child in self._children:
            (self.run_dir / f"{child.spec.name}.pid").unlink(missing_ok=True)


# --- for the tools that start and stop a supervisor ------------------------------------------


def write_specs(run_dir: Path, specs: Iterable[ServiceSpec]) -> None:
    """Store what to run; readable by its owner only, since the environment holds keys."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / SPEC_FILE
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps([asdict(spec) for spec in specs], indent=2))


def read_specs(run_dir: Path) -> list[ServiceSpec]:
    return [ServiceSpec(**item) for item in json.loads((run_dir / SPEC_FILE).read_text())]


def launch(run_dir: Path, cwd: Path) -> int:
    """Start a supervisor detached on `run_dir`'s specs; return its pid.

    Started through a shell that exits at once, so the supervisor is nobody's child: it
    outlives `make run` and leaves no zombie behind.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    detach = ["/bin/sh", "-c", '"$@" </dev/null >>"$0" 2>&1 & echo $!', str(run_dir / LOG_FILE)]
    command = [sys.executable, "-m", "hookstream_dev.supervisor", str(run_dir)]
    started = subprocess.run(
        [*detach, *command],
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,
        cwd=cwd,
    )
    pid = int(started.stdout)
    _write_atomically(run_dir / PID_FILE, f"{pid}\n")
    return pid


def supervisor_pid(run_dir: Path) -> int | None:
    """The running supervisor of `run_dir`, if any."""
    return _live_pid(run_dir / PID_FILE, b"hookstream_dev.supervisor")


def service_pid(run_dir: Path, name: str) -> int | None:
    """The current process of a service, or None while it is down (between restarts)."""
    return _live_pid(run_dir / f"{name}.pid", b"")


def _live_pid(path: Path, marker: bytes) -> int | None:
    try:
        pid = int(path.read_text())
        os.kill(pid, 0)
        if marker and marker not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None  # a stale file whose pid was reused
    except (OSError, ValueError):
        return None
    return pid


def stop(run_dir: Path, timeout: float = STOP_GRACE + 5) -> None:
    """SIGTERM the supervisor of `run_dir` and wait for it (and so its services) to end."""
    pid = supervisor_pid(run_dir)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while supervisor_pid(run_dir) == pid and time.monotonic() < deadline:
            time.sleep(0.1)
        if supervisor_pid(run_dir) == pid:
            os.kill(pid, signal.SIGKILL)  # its children get SIGTERM from the kernel
    (run_dir / PID_FILE).unlink(missing_ok=True)


def restarts(run_dir: Path) -> list[dict[str, object]]:
    """The restarts the supervisor logged, oldest first."""
    path = run_dir / LOG_FILE
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    entries = (json.loads(line) for line in lines if line.startswith("{"))
    return [entry for entry in entries if entry.get("event") == "service exited, restarting"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hookstream_dev.supervisor",
        description="Run the services of RUN_DIR/services.json, restarting any that exits.",
    )
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    configure_logging("supervisor")
    Supervisor(read_specs(args.run_dir), args.run_dir).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
