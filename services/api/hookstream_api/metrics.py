"""The API's metrics: requests by route template, and the outbox backlog behind the relay.

Requests are labelled by route template (`/api/v1/webhooks/{webhook_id}`), never by the raw
path, so the number of series stays fixed whatever ids clients send; a path no route matches is
`unmatched`. The operations endpoints are not counted: scrapes and probes are not traffic.

The outbox backlog is read from Postgres when Prometheus scrapes (one indexed query on the
partial index of pending rows), so every API replica reports the same cluster-wide value.
"""

import asyncio
import time

import prometheus_client
import structlog
from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hookstream_common import ops

log = structlog.get_logger(__name__)

REQUESTS = prometheus_client.Counter(
    "hookstream_api_requests_total",
    "API requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = prometheus_client.Histogram(
    "hookstream_api_request_seconds",
    "Time to answer an API request, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
OUTBOX_BACKLOG = prometheus_client.Gauge(
    "hookstream_outbox_backlog",
    "Outbox rows neither published nor marked failed (webhook changes not yet on Kafka).",
)
OUTBOX_OLDEST_AGE = prometheus_client.Gauge(
    "hookstream_outbox_oldest_age_seconds",
    "Age of the oldest outbox row still to publish; 0 when there is none.",
)
_OPERATIONS_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})
_BACKLOG_QUERY = """
    SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)
    FROM outbox WHERE published_at IS NULL AND failed_at IS NULL
"""
_QUERY_TIMEOUT = 2.0


class RequestMetrics:
    """ASGI middleware counting and timing every request by its route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _OPERATIONS_PATHS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            REQUESTS.labels(scope["method"], template, str(status)).inc()
            REQUEST_SECONDS.labels(scope["method"], template).observe(time.perf_counter() - started)


def metrics_app(app: FastAPI) -> ASGIApp:
    """The `/metrics` endpoint: refreshes the outbox gauges, then answers as every service does
    (hookstream_common.ops)."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        await _refresh_outbox(app)
        answer = ops.metrics(getattr(app.state, "readiness", None))
        response = Response(answer.body, answer.status, media_type=answer.content_type)
        await response(scope, receive, send)

    return serve


async def _refresh_outbox(app: FastAPI) -> None:
    """Read the backlog; while Postgres is unreachable the gauges keep their last value and
    `hookstream_dependency_up{dependency="postgres"}` says why."""
    pool = getattr(app.state, "pool", None)
    if pool is None or not getattr(app.state, "connected", False):
        return
    try:
        count, age = await asyncio.wait_for(pool.fetchrow(_BACKLOG_QUERY), _QUERY_TIMEOUT)
    except Exception as exc:
        log.debug("outbox backlog not read", error_class=type(exc).__name__)
        return
    OUTBOX_BACKLOG.set(count)
    OUTBOX_OLDEST_AGE.set(float(age))
