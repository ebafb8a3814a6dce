"""The operations endpoints of a worker service: `/metrics`, `/healthz` and `/readyz`.

prometheus-client's `_created` series are turned off for every service (each imports this
module): they double the series of every counter and histogram and no query here uses them.
"""

from collections.abc import Awaitable, Callable

import prometheus_client
from aiohttp import web

from hookstream_common.resilience import Readiness

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


async def start_ops_server(
    host: str, port: int, readiness: Readiness, extra: dict[str, Handler] | None = None
) -> web.AppRunner:
    """Serve Prometheus metrics, liveness (the loop answers) and readiness; `extra` adds GET
    routes of the service's own (paths in aiohttp's syntax)."""

    async def metrics(_: web.Request) -> web.Response:
        export_readiness(readiness)
        return web.Response(
            body=prometheus_client.generate_latest(),
            headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST},
        )

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        return web.json_response(readiness.report(), status=200 if readiness.ready else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    for path, handler in (extra or {}).items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
