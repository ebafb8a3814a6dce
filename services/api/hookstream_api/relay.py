"""The outbox relay: turns committed webhook changes into records on the compacted topic.

It wakes on `NOTIFY hookstream_outbox` and also polls, so a lost notification only delays. One
relay works at a time (an advisory lock), so a tenant's webhook sets reach Kafka in commit order;
publishing the complete set is idempotent, so a crash between publish and mark is harmless.
"""

import asyncio
import contextlib

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from hookstream_common.db import advisory_lock_key
from hookstream_common.kafka import delivery_topic, ensure_topics
from hookstream_common.resilience import TRANSIENT, Backoff
from hookstream_common.topics import Topics
from hookstream_common.webhook_store import OUTBOX_CHANNEL, load_tenant_routes

log = structlog.get_logger(__name__)

_RELAY_LOCK = advisory_lock_key("hookstream.relay")
_BATCH = 500


class OutboxRelay:
    """Publishes pending outbox rows; run `run()` as a background task."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        admin: AIOKafkaAdminClient,
        topics: Topics,
        replication: int,
        interval: float,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._admin = admin
        self._topics = topics
        self._replication = replication
        self._interval = interval
        self._wake = asyncio.Event()

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
        """Publish on every notification (and every interval) while the listener lives."""
        async with self._pool.acquire() as listener:
            await listener.add_listener(OUTBOX_CHANNEL, self._notified)
            try:
                while not listener.is_closed():
                    try:
                        while await self.publish_pending() == _BATCH:
                            pass
                        backoff.reset()
                    except Exception as exc:
                        log.warning("outbox relay failed; retrying", error=str(exc))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._interval)
                    self._wake.clear()
            finally:
                if not listener.is_closed():
                    await listener.remove_listener(OUTBOX_CHANNEL, self._notified)

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish one batch of pending rows; return how many rows it handled."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _RELAY_LOCK)
            rows = await conn.fetch(
                "SELECT id, tenant_id, webhook_id, kind FROM outbox WHERE published_at IS NULL"
                f" ORDER BY id LIMIT {_BATCH}"
            )
            if not rows:
                return 0
            created = [str(r["webhook_id"]) for r in rows if r["kind"] == "created"]
            if created:
                await ensure_topics(
                    self._admin,
                    [delivery_topic(self._topics, wid, self._replication) for wid in created],
                )
            for tenant_id in dict.fromkeys(r["tenant_id"] for r in rows):
                routes = await load_tenant_routes(conn, tenant_id)
                value = routes.dumps() if routes.routes else None
                await self._producer.send_and_wait(
                    self._topics.webhooks, value, key=tenant_id.encode()
                )
                log.info("webhook set published", tenant_id=tenant_id, webhooks=len(routes.routes))
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                [r["id"] for r in rows],
            )
            return len(rows)
