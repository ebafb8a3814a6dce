"""Smokescreen, Stripe's SSRF-safe HTTP CONNECT proxy, run as the egress proxy of tests.

`make test-tools` installs it with `go install` into `.hookstream/go/bin` (GOBIN); one on PATH
does too. Smokescreen denies loopback, private, link-local and CGNAT addresses by itself, so a
test that sends to its loopback receiver opens exactly that range (`allow_ranges`), as the
services open it with HOOKSTREAM_ALLOW_NETWORKS.
"""

import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hookstream_dev import infra

BIN_DIR = infra.STATE_DIR / "go" / "bin"
START_TIMEOUT = 15.0


def binary() -> str | None:
    """The installed `smokescreen`, or None."""
    return shutil.which("smokescreen", path=str(BIN_DIR)) or shutil.which("smokescreen")


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True


@dataclass
class Smokescreen:
    """One running proxy; its JSON log is where it says what it decided."""

    host: str
    port: int
    log: Path
    command: list[str]
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(
        cls,
        executable: str,
        log: Path,
        allow_ranges: tuple[str, ...] = (),
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> "Smokescreen":
        """Start on `host`:`port` (a free port by default); return once it accepts
        connections."""
        port = port or infra.free_port()
        allow = [arg for cidr in allow_ranges for arg in ("--allow-range", cidr)]
        command = [executable, "--listen-ip", host, "--listen-port", str(port), *allow]
        proxy = cls(host, port, log, command)
        proxy.restart()
        return proxy

    def restart(self) -> None:
        """Start it (again, after `stop`) on the same port, with the same log and rules."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not _listening(self.host, self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise infra.InfraError(f"smokescreen did not start\n{infra.tail(self.log)}")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        """What HOOKSTREAM_EGRESS_PROXY is set to."""
        return f"http://{self.host}:{self.port}"

    def decisions(self) -> list[dict[str, Any]]:
        """Its decision for every request so far, allowed or denied (`CANONICAL-PROXY-DECISION`
        log lines: `requested_host`, `allow`, `decision_reason`, ...)."""
        lines = self.log.read_text(errors="replace").splitlines()
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        return [e for e in entries if e.get("msg") == "CANONICAL-PROXY-DECISION"]

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL) and wait for it."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
