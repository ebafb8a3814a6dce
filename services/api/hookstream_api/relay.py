"""The outbox relay: turns committed webhook changes into records on the compacted topic, and
publishes the operational events written with them (hookstream_common.operational) to the events
topic, keyed by tenant like every event.

It wakes on `NOTIFY hookstream_outbox` and also polls, so a lost notification only delays. It
listens on a connection of its own, outside the pool, so no LISTEN goes back to the pool (which
skips asyncpg's reset). One relay works at a time (an advisory lock held to commit), so a
tenant's webhook sets reach Kafka in commit order; publishing the complete set is idempotent,
so a crash between publish and mark is harmless.

A tenant whose set can never be published (decision 10: say, over the broker's message limit)
does not hold up the others: its rows are marked failed with the reason, logged and counted in
`hookstream_outbox_failed_rows_total`, and the relay moves on. Its next change publishes the
whole set again. An outage (`TRANSIENT`) is never a reason to fail a row: the batch is retried.

The route set is small by construction: only what matching needs (hookstream_common.routing), and
every field in it bounded by the API (hookstream_api.schemas). One route takes at most 9,453
bytes, so a tenant at the default limit of 100 webhooks publishes at most 945,300 bytes plus
twice its tenant id (key and value; the request header limit caps it at 16 KiB): under the
broker's default limit of 1 MiB. tests/unit/test_route_set_size.py computes this from the limits.
"""

import asyncio
import contextlib

import asyncpg
import prometheus_client
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from hookstream_common.db import advisory_lock_key, own_connection
from hookstream_common.kafka import delivery_topic, ensure_topics
from hookstream_common.operational import EVENT_KIND, EVENTS_CHANNEL
from hookstream_common.parking import reason_of
from hookstream_common.resilience import TRANSIENT, Backoff
from hookstream_common.settings import CommonSettings
from hookstream_common.webhook_store import OUTBOX_CHANNEL, load_tenant_routes

log = structlog.get_logger(__name__)

FAILED_ROWS = prometheus_client.Counter(
    "hookstream_outbox_failed_rows_total",
    "Outbox rows the relay can never publish, marked failed in the outbox, by error class.",
    ["error"],
)
UNPUBLISHABLE = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)
"""Kafka errors about the record itself: retrying sends the same record and fails the same way."""
_RELAY_LOCK = advisory_lock_key("hookstream.relay")
_BATCH = 500
_MAX_ERROR_CHARS = 1024


class OutboxRelay:
    """Publishes pending outbox rows; run `run()` as a background task."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        admin: AIOKafkaAdminClient,
        settings: CommonSettings,
        interval: float,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._admin = admin
        self._settings = settings
        self._topics = settings.topics
        self._interval = interval
        self._pending = asyncio.Event()

    async def run(self) -> None:
        """Publish forever; errors are logged and retried, never fatal."""
        backoff = Backoff()
        while True:
            try:
                await self._listen_and_publish(backoff)
            except TRANSIENT as exc:
                log.warning(
                    "outbox relay lost Postgres; reconnecting",
                    error_class=type(exc).__name__,
                    retry_in=backoff.delay,
                )
                await backoff.wait()

    async def _listen_and_publish(self, backoff: Backoff) -> None:
        """Publish on every notification (and every interval) while the listener lives; its
        LISTENs end with its connection, whose end wakes the loop to connect again."""
        async with own_connection(self._settings.database_url) as listener:
            listener.add_termination_listener(self._notified)
            await listener.add_listener(OUTBOX_CHANNEL, self._notified)
            await listener.add_listener(EVENTS_CHANNEL, self._notified)
            while not listener.is_closed():
                try:
                    while await self.publish_pending() == _BATCH:
                        pass
                    backoff.reset()
                except Exception as exc:
                    log.warning("outbox relay failed; retrying", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._pending.wait(), self._interval)
                self._pending.clear()

    def _notified(self, *_: object) -> None:
        self._pending.set()

    async def publish_pending(self) -> int:
        """Publish one batch of pending rows; return how many rows it handled.

        Raises on an outage, leaving the whole batch pending; a tenant whose set cannot be
        published has its rows marked failed and the rest of the batch goes on.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _RELAY_LOCK)
            rows = await conn.fetch(
                "SELECT id, tenant_id, webhook_id, kind, event::text AS event FROM outbox"
                " WHERE published_at IS NULL AND failed_at IS NULL"
                f" ORDER BY id LIMIT {_BATCH}"
            )
            if not rows:
                return 0
            created = [str(r["webhook_id"]) for r in rows if r["kind"] == "created"]
            if created:
                await ensure_topics(
                    self._admin,
                    [delivery_topic(self._settings, wid) for wid in created],
                )
            changes = [r for r in rows if r["kind"] != EVENT_KIND]
            published: list[int] = []
            for tenant_id in dict.fromkeys(r["tenant_id"] for r in changes):
                ids = [r["id"] for r in changes if r["tenant_id"] == tenant_id]
                error = await self._publish_tenant(conn, tenant_id)
                if error is None:
                    published += ids
                else:
                    await _mark_failed(conn, tenant_id, ids, error)
            published += await self._publish_events(
                conn, [r for r in rows if r["kind"] == EVENT_KIND]
            )
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", published
            )
            return len(rows)

    async def _publish_tenant(self, conn: asyncpg.Connection, tenant_id: str) -> Exception | None:
        """Publish the tenant's current set; the error if it can never be published.

        A savepoint keeps a Postgres error about this tenant from aborting the batch.
        """
        try:
            async with conn.transaction():
                routes = await load_tenant_routes(conn, tenant_id)
                value = routes.dumps() if routes.routes else None
                await self._producer.send_and_wait(
                    self._topics.webhooks, value, key=tenant_id.encode()
                )
        except Exception as exc:
            if is_transient(exc):
                raise
            return exc
        log.info("webhook set published", tenant_id=tenant_id, webhooks=len(routes.routes))
        return None

    async def _publish_events(
        self, conn: asyncpg.Connection, rows: list[asyncpg.Record]
    ) -> list[int]:
        """Publish the event rows together (after the batch's webhook sets); return the ids of
        those published. One that can never be published is marked failed; an outage raises."""

        async def publish(row: asyncpg.Record) -> Exception | None:
            try:
                await self._producer.send_and_wait(
                    self._topics.events, row["event"].encode(), key=row["tenant_id"].encode()
                )
            except Exception as exc:
                if is_transient(exc):
                    raise
                return exc
            return None

        errors = await asyncio.gather(*(publish(row) for row in rows))
        for row, error in zip(rows, errors, strict=True):
            if error is not None:
                await _mark_failed(conn, row["tenant_id"], [row["id"]], error)
        if rows:
            log.info("operational events published", events=errors.count(None))
        return [row["id"] for row, error in zip(rows, errors, strict=True) if error is None]


def is_transient(error: Exception) -> bool:
    """An outage to wait out, as opposed to a set that will fail the same way every time."""
    return isinstance(error, TRANSIENT) and not isinstance(error, UNPUBLISHABLE)


async def _mark_failed(
    conn: asyncpg.Connection, tenant_id: str, ids: list[int], error: Exception
) -> None:
    """Park the tenant's rows with the reason: logged, counted, kept in the outbox."""
    reason = reason_of(error)[:_MAX_ERROR_CHARS]
    await conn.execute(
        "UPDATE outbox SET failed_at = now(), error = $2 WHERE id = ANY($1::bigint[])",
        ids,
        reason,
    )
    FAILED_ROWS.labels(type(error).__name__).inc(len(ids))
    log.error(
        "outbox rows cannot be published; marked failed",
        tenant_id=tenant_id,
        outbox_ids=ids,
        reason=reason,
    )
