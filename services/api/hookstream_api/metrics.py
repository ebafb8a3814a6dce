"""The API's metrics: requests by method and route template, and the outbox backlog.

Every label set is bounded: requests are labelled by route template (`/api/v1/webhooks/{id}`),
never by the raw path (a path no route matches is `unmatched`), and by method only among the
methods HTTP defines (anything else is `other`), whatever clients send.

The outbox backlog is read from Postgres by a background task every few seconds, never by a
scrape, so scrapes cost no query. It is a cluster-wide value, so one API replica reads and
exports it: the one holding a Postgres session advisory lock, on a connection of its own outside
the pool (the lock ends with that session and never goes back to the pool, which skips the reset).
The others export no outbox series (not a stale or zero one), and take over within an interval
when the holder's connection ends. While Postgres is unreachable no replica holds the lock, the
series are absent, and `hookstream_dependency_up{dependency="postgres"}` says why.
"""

import asyncio
import time
from collections.abc import Iterator

import asyncpg
import prometheus_client
import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import Message, Receive, Scope, Send

from hookstream_api.asgi import HttpMiddleware
from hookstream_common.db import advisory_lock_key, own_connection
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
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
_BACKLOG_QUERY = """
    SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)
    FROM outbox WHERE published_at IS NULL AND failed_at IS NULL
"""
_QUERY_TIMEOUT = 2.0
_GAUGE_LOCK = advisory_lock_key("hookstream.outbox-gauge")


def method_label(method: str) -> str:
    """The method as a label: one of HTTP's, or `other`."""
    return method if method in KNOWN_METHODS else "other"


class RequestMetrics(HttpMiddleware):
    """ASGI middleware counting and timing every request by its route template."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
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


class OutboxGauges(Collector):
    """The outbox gauges, exported only while this replica has a reading of its own."""

    def __init__(self) -> None:
        self.reading: tuple[int, float] | None = None
        """The backlog's row count and oldest age, or None while another replica reports."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return self._families(0, 0.0)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.reading is not None:
            yield from self._families(*self.reading)

    @staticmethod
    def _families(count: int, age: float) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "hookstream_outbox_backlog",
            "Outbox rows neither published nor marked failed (webhook changes not yet on Kafka);"
            " exported by one API replica.",
            value=count,
        )
        yield GaugeMetricFamily(
            "hookstream_outbox_oldest_age_seconds",
            "Age of the oldest outbox row still to publish, 0 when there is none;"
            " exported by one API replica.",
            value=age,
        )


OUTBOX = OutboxGauges()
prometheus_client.REGISTRY.register(OUTBOX)


async def watch_outbox(dsn: str, interval: float, gauges: OutboxGauges = OUTBOX) -> None:
    """Keep `gauges` current while this replica holds the gauge lock; try for it every
    `interval` while another replica holds it or Postgres is unreachable."""
    while True:
        try:
            async with own_connection(dsn) as conn:
                while True:
                    if await conn.fetchval(
                        "SELECT pg_try_advisory_lock($1)", _GAUGE_LOCK, timeout=_QUERY_TIMEOUT
                    ):
                        await _report(conn, interval, gauges)
                    await asyncio.sleep(interval)
        except TRANSIENT as exc:
            log.info("outbox backlog not read", error_class=type(exc).__name__)
        await asyncio.sleep(interval)


async def _report(conn: asyncpg.Connection, interval: float, gauges: OutboxGauges) -> None:
    """Read the backlog every `interval` until the connection fails; the session lock goes with
    the connection, and the reading with the lock."""
    try:
        while True:
            count, age = await asyncio.wait_for(conn.fetchrow(_BACKLOG_QUERY), _QUERY_TIMEOUT)
            gauges.reading = (count, float(age))
            await asyncio.sleep(interval)
    finally:
        gauges.reading = None
