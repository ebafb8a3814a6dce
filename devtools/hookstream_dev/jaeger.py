"""A local Jaeger (v2, the OpenTelemetry Collector based binary) as the collector of the tracing
test and benchmark: OTLP over HTTP in, spans kept in memory, its query API out, all on free
loopback ports.

`make jaeger` (and `make tracing-test`) builds the binary once per machine into
`~/.cache/hookstream/go/bin/jaeger` (JAEGER below; `HOOKSTREAM_JAEGER` names another): Jaeger's
module has `replace` directives, so `go install …@v1.75.0` refuses it and it is built from the
downloaded module instead.
"""

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hookstream_dev.infra import free_port

JAEGER = Path(os.environ.get("HOOKSTREAM_JAEGER", Path.home() / ".cache/hookstream/go/bin/jaeger"))

_CONFIG = """\
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memory:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memory
    http:
      endpoint: 127.0.0.1:{query}
    grpc:
      endpoint: 127.0.0.1:{query_grpc}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memory
"""


@dataclass(frozen=True)
class Jaeger:
    """A running Jaeger: where to send spans, and its query API."""

    otlp_port: int
    query_port: int

    @property
    def otlp_endpoint(self) -> str:
        """`OTEL_EXPORTER_OTLP_ENDPOINT` for http/protobuf."""
        return f"http://127.0.0.1:{self.otlp_port}"

    def otel_env(self, sampling: float = 1.0) -> dict[str, str]:
        """The services' settings that send their spans here, keeping `sampling` of traces;
        spans are exported within a fifth of a second, so a test waits little for them."""
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_endpoint,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": str(sampling),
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """One trace as the query API gives it (`spans`, `processes`), or None while unknown."""
        response = httpx.get(f"http://127.0.0.1:{self.query_port}/api/traces/{trace_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        [found] = response.json()["data"]
        return found

    def traces(self, service: str, operation: str | None = None) -> list[dict[str, Any]]:
        """The latest traces with spans of `service` (and `operation`)."""
        params = {"service": service, "limit": "100", "lookback": "1h"}
        if operation is not None:
            params["operation"] = operation
        url = f"http://127.0.0.1:{self.query_port}/api/traces"
        response = httpx.get(url, params=params)
        response.raise_for_status()
        return response.json()["data"] or []

    def span_count(self, service: str) -> int:
        """Spans of `service` in its latest traces (at most 100 traces)."""
        return sum(len(found["spans"]) for found in self.traces(service))


@contextmanager
def running_jaeger(directory: Path, timeout: float = 60.0) -> Iterator[Jaeger]:
    """Start Jaeger with its state and log in `directory`; stop it afterwards."""
    if not JAEGER.is_file():
        raise FileNotFoundError(f"{JAEGER} is missing: run `make jaeger`, which builds it")
    jaeger = Jaeger(otlp_port=free_port(), query_port=free_port())
    config = directory / "jaeger.yaml"
    config.write_text(
        _CONFIG.format(otlp=jaeger.otlp_port, query=jaeger.query_port, query_grpc=free_port())
    )
    with open(directory / "jaeger.log", "ab") as log:
        process = subprocess.Popen(
            [str(JAEGER), "--config", f"file:{config}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        _wait_ready(jaeger, process, directory / "jaeger.log", timeout)
        yield jaeger
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(
    jaeger: Jaeger, process: subprocess.Popen[bytes], log: Path, timeout: float
) -> None:
    """Until its query API answers and its OTLP receiver (started after it) takes connections."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"jaeger exited with {process.returncode}:\n{log.read_text()}")
        try:
            httpx.get(f"http://127.0.0.1:{jaeger.query_port}/api/services").raise_for_status()
            socket.create_connection(("127.0.0.1", jaeger.otlp_port), timeout=1).close()
            return
        except (httpx.HTTPError, OSError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)
