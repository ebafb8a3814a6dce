"""The launcher of `make run` and the fault suite restarts what exits, with backoff, and
stops everything it started."""

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hookstream_dev import infra, supervisor
from hookstream_dev.supervisor import Backoff, ServiceSpec

pytestmark = pytest.mark.faults


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(initial=0.5, maximum=10.0)
    assert [backoff.delay(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]


def spec(run_dir: Path, name: str, code: str) -> ServiceSpec:
    command = [sys.executable, "-c", code]
    return ServiceSpec(name, command, dict(os.environ), str(run_dir / f"{name}.log"), str(run_dir))


def wait_for(check: Callable[[], object], timeout: float = 15.0) -> object:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
    return result


def test_restarts_what_exits_and_stops_everything(tmp_path: Path) -> None:
    supervisor.write_specs(
        tmp_path,
        [
            spec(tmp_path, "crasher", "raise SystemExit(3)"),
            spec(tmp_path, "sleeper", "import time; time.sleep(600)"),
        ],
    )
    supervisor.launch(tmp_path, infra.REPO_ROOT)
    try:
        wait_for(lambda: len(supervisor.restarts(tmp_path)) >= 2)
        first, second = supervisor.restarts(tmp_path)[:2]
        assert (first["service"], first["exit_code"], first["delay"]) == ("crasher", 3, 0.5)
        assert (second["restarts"], second["delay"]) == (2, 1.0)

        killed = wait_for(lambda: supervisor.service_pid(tmp_path, "sleeper"))
        os.kill(killed, signal.SIGKILL)
        successor = wait_for(
            lambda: (
                supervisor.service_pid(tmp_path, "sleeper") not in (None, killed)
                and supervisor.service_pid(tmp_path, "sleeper")
            )
        )
    finally:
        supervisor.stop(tmp_path)
    assert supervisor.supervisor_pid(tmp_path) is None
    assert supervisor.service_pid(tmp_path, "sleeper") is None
    with pytest.raises(ProcessLookupError):
        os.kill(successor, 0)
    sleeper_exits = [r for r in supervisor.restarts(tmp_path) if r["service"] == "sleeper"]
    assert [r["reason"] for r in sleeper_exits] == ["SIGKILL"]
