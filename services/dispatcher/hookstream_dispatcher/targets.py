"""Webhook delivery settings, cached in memory and dropped the moment the API changes them.

Postgres `NOTIFY` (sent at commit of every webhook change, see `webhook_store.record_change`)
evicts the entry, so a new URL, secret, header or enabled flag applies within a second without a
query per delivery. A lost listener connection clears the cache; entries also expire after
`ttl` seconds as a last resort.
"""

import asyncio
import time

import asyncpg
import prometheus_client
import structlog

from hookstream_common.crypto import SecretBox
from hookstream_common.resilience import TRANSIENT
from hookstream_common.webhook_model import DeliveryTarget
from hookstream_common.webhook_store import OUTBOX_CHANNEL, load_target

log = structlog.get_logger(__name__)

_MISSING = object()
CHANGES_HEARD = prometheus_client.Counter(
    "hookstream_dispatcher_webhook_changes_heard_total",
    "Webhook changes the dispatcher was notified of (each drops that webhook's cached delivery"
    " settings).",
)


class TargetCache:
    """`await cache.get(webhook_id)`: the current `DeliveryTarget`, or None if deleted."""

    def __init__(self, dsn: str, pool: asyncpg.Pool, box: SecretBox, ttl: float = 60.0) -> None:
        self._dsn = dsn
        self._pool = pool
        self._box = box
        self._ttl = ttl
        self._entries: dict[str, tuple[float, DeliveryTarget | None]] = {}
        self._loading: dict[str, asyncio.Future[DeliveryTarget | None]] = {}
        self._listener: asyncpg.Connection | None = None
        self._changes = 0

    async def start(self) -> None:
        """Listen for changes on a connection of its own."""
        self._listener = await asyncpg.connect(self._dsn)
        await self._listener.add_listener(OUTBOX_CHANNEL, self._changed)
        self._listener.add_termination_listener(self._lost)

    async def stop(self) -> None:
        """Stop listening."""
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()

    def _changed(self, _conn: object, _pid: int, _channel: str, webhook_id: str) -> None:
        self._changes += 1
        self._entries.pop(webhook_id, None)
        CHANGES_HEARD.inc()

    def _lost(self, _conn: object) -> None:
        log.warning("change listener lost; cache cleared, reconnecting")
        self._changes += 1
        self._entries.clear()
        asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.5
        while True:
            try:
                await self.start()
                self._entries.clear()
                return
            except TRANSIENT as exc:
                log.warning("reconnecting the change listener failed", error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def get(self, webhook_id: str) -> DeliveryTarget | None:
        """The cached target, loading it once however many callers ask at the same time."""
        cached = self._entries.get(webhook_id, _MISSING)
        if cached is not _MISSING:
            loaded_at, target = cached  # type: ignore[misc]
            if time.monotonic() - loaded_at < self._ttl:
                return target
        pending = self._loading.get(webhook_id)
        if pending is not None:
            return await pending
        future: asyncio.Future[DeliveryTarget | None] = asyncio.get_running_loop().create_future()
        self._loading[webhook_id] = future
        changes = self._changes
        try:
            target = await load_target(self._pool, self._box, webhook_id)
            if changes == self._changes:  # else a change may have raced the load: don't keep it
                self._entries[webhook_id] = (time.monotonic(), target)
            future.set_result(target)
            return target
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: the caller re-raises it
            raise
        finally:
            del self._loading[webhook_id]
