"""The operations endpoints of every service: `/metrics`, `/healthz` and `/readyz`.

What each answers is written once here, as an `Answer`; the workers serve them with aiohttp
(`start_ops_server`), the API with its own FastAPI routes, each only translating the answer.
The workers stop on SIGTERM and SIGINT the same way (`stop_on_signals`).
prometheus-client's `_created` series are turned off for every service (each imports this
module): they double the series of every counter and histogram and no query here uses them.
"""

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import prometheus_client
from aiohttp import web

from hookstream_common.resilience import Readiness, Turns

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

prometheus_client.disable_created_metrics()

DEPENDENCY_UP = prometheus_client.Gauge(
    "hookstream_dependency_up",
    "Whether a dependency (postgres, kafka) answered its last readiness probe: 1 up, 0 down.",
    ["dependency"],
)
READY = prometheus_client.Gauge(
    "hookstream_ready", "Whether the service is ready (what /readyz answers): 1 ready, 0 not."
)


def export_readiness(readiness: Readiness) -> None:
    """Copy the last probe results into the gauges (called on every scrape)."""
    for name, up in readiness.dependencies.items():
        DEPENDENCY_UP.labels(name).set(1 if up else 0)
    READY.set(1 if readiness.ready else 0)


@dataclass(frozen=True)
class Answer:
    """What an operations endpoint answers, whichever web framework serves it."""

    status: int
    body: bytes
    content_type: str


def _json(doc: object, status: int = 200) -> Answer:
    return Answer(status, orjson.dumps(doc), "application/json")


def healthz(turns: Turns | None = None) -> Answer:
    """Liveness: the process and its event loop answer, and its main loop turns (`turns`);
    503 once that loop is stuck, so the orchestrator restarts the process."""
    stuck_for = turns.stuck_for() if turns is not None else None
    if stuck_for is not None:
        return _json({"status": "stuck", "loopStillSeconds": round(stuck_for, 1)}, 503)
    return _json({"status": "ok"})


def readyz(readiness: Readiness) -> Answer:
    """Readiness: 200 while every dependency answers its probe, else 503 with their states."""
    return _json(readiness.report(), 200 if readiness.ready else 503)


def metrics(readiness: Readiness | None) -> Answer:
    """Every metric of the process in Prometheus' text format, readiness gauges refreshed."""
    if readiness is not None:
        export_readiness(readiness)
    return Answer(200, prometheus_client.generate_latest(), prometheus_client.CONTENT_TYPE_LATEST)


def _aiohttp(answer: Answer) -> web.Response:
    return web.Response(
        status=answer.status, body=answer.body, headers={"Content-Type": answer.content_type}
    )


async def start_ops_server(
    host: str, port: int, readiness: Readiness, extra: dict[str, Handler] | None = None
) -> web.AppRunner:
    """Serve metrics, liveness and readiness for a worker; `extra` adds GET routes of the
    service's own (paths in aiohttp's syntax)."""
    answers: dict[str, Callable[[], Answer]] = {
        "/metrics": lambda: metrics(readiness),
        "/healthz": lambda: healthz(readiness.turns),
        "/readyz": lambda: readyz(readiness),
    }
    app = web.Application()
    for path, answer in answers.items():

        async def serve(_: web.Request, answer: Callable[[], Answer] = answer) -> web.Response:
            return _aiohttp(answer())

        app.router.add_get(path, serve)
    for path, handler in (extra or {}).items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


class Stoppable(Protocol):
    """A running part of a worker that finishes its in-flight work once told to stop."""

    def stop(self) -> None: ...


def stop_on_signals(startup: "asyncio.Task[Any]", running: Sequence[Stoppable]) -> None:
    """On SIGTERM or SIGINT stop every part in `running` (read when the signal comes), or
    cancel `startup` while nothing runs yet."""

    def on_signal() -> None:
        if running:
            for part in running:
                part.stop()
        else:
            startup.cancel()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
