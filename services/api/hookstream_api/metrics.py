"""The API's metrics: requests by method and route template, and the outbox backlog.

Every label set is bounded: requests are labelled by route template (`/api/v1/webhooks/{id}`),
never by the raw path (a path no route matches is `unmatched`), and by method only among the
methods HTTP defines (anything else is `other`), whatever clients send.

The outbox backlog is read from Postgres by a background task every few seconds, never by a
scrape: scrapes cost no query, and every API replica reports the same cluster-wide value.
"""

import asyncio
import time

import asyncpg
import prometheus_client
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hookstream_common.resilience import TRANSIENT

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
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
_BACKLOG_QUERY = """
    SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)
    FROM outbox WHERE published_at IS NULL AND failed_at IS NULL
"""
_QUERY_TIMEOUT = 2.0


def method_label(method: str) -> str:
    """The method as a label: one of HTTP's, or `other`."""
    return method if method in KNOWN_METHODS else "other"


class RequestMetrics:
    """ASGI middleware counting and timing every request by its route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
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
            method = method_label(scope["method"])
            REQUESTS.labels(method, template, str(status)).inc()
            REQUEST_SECONDS.labels(method, template).observe(time.perf_counter() - started)


async def watch_outbox(pool: asyncpg.Pool, interval: float) -> None:
    """Keep the outbox gauges current; while Postgres is unreachable they keep their last
    value and `hookstream_dependency_up{dependency="postgres"}` says why."""
    while True:
        try:
            count, age = await asyncio.wait_for(pool.fetchrow(_BACKLOG_QUERY), _QUERY_TIMEOUT)
        except TRANSIENT as exc:
            log.info("outbox backlog not read", error_class=type(exc).__name__)
        else:
            OUTBOX_BACKLOG.set(count)
            OUTBOX_OLDEST_AGE.set(float(age))
        await asyncio.sleep(interval)
