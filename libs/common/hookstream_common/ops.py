"""The operations endpoints of a worker service: `/metrics`, `/healthz` and `/readyz`."""

from collections.abc import Callable

import prometheus_client
from aiohttp import web


async def start_ops_server(host: str, port: int, is_ready: Callable[[], bool]) -> web.AppRunner:
    """Serve Prometheus metrics, liveness (the loop answers) and readiness (`is_ready()`)."""

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=prometheus_client.generate_latest(),
            headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST},
        )

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        ready = is_ready()
        return web.json_response(
            {"status": "ready" if ready else "starting"}, status=200 if ready else 503
        )

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
