"""One delivery per event (issue 22 item 1): a job whose delivery is already stored as a success
is not sent again.

A delivery's id is derived from the webhook and the event id (`jobs.delivery_id_for`), so an
event published twice, or a topic replayed, makes jobs with the same delivery id. Before a lane
sends a job, `OncePerEvent` asks whether that delivery succeeded within the retention; if so the
job is skipped (counted and logged) and its offset moves on. Lookups are batched: every id asked
while a query runs goes into the next query, one round trip for many jobs.

Recoveries (`retryBase` > 0) always send: an operator asked for them. Resends and test events
never pass here (the API sends them with new ids). If Postgres cannot answer, the job is sent:
at least once stays the guarantee, and the receiver still has the stable `webhook-id`. Two copies
of an event handled at the same instant may both be sent; the check closes the common case, a
copy arriving after the first was stored.
"""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg
import orjson
import prometheus_client
import structlog
from aiokafka.structs import ConsumerRecord

log = structlog.get_logger(__name__)

SKIPPED = prometheus_client.Counter(
    "hookstream_dispatcher_already_delivered_total",
    "Jobs not sent because their delivery had already succeeded (an event published again).",
)

Lookup = Callable[[list[str]], Awaitable[set[str]]]
"""Of these delivery ids, the ones stored as a success."""
Run = Callable[[ConsumerRecord], Awaitable[asyncio.Future[None] | None]]
"""What a lane calls with each record (`Attempts.run`)."""

MAX_BATCH = 1000


def succeeded_in(pool: asyncpg.Pool, retention: timedelta) -> Lookup:
    """The Postgres lookup: deliveries with one of the ids, a success, within the retention."""

    async def lookup(delivery_ids: list[str]) -> set[str]:
        rows = await pool.fetch(
            "SELECT id FROM deliveries WHERE id = ANY($1::uuid[]) AND status = 'success'"
            " AND triggered_at >= now() - $2::interval",
            delivery_ids,
            retention,
        )
        return {str(row["id"]) for row in rows}

    return lookup


class BatchedLookup:
    """Asks `lookup` about many ids at once: the ids asked while one query runs go in the next."""

    def __init__(self, lookup: Lookup, max_batch: int = MAX_BATCH) -> None:
        self._lookup = lookup
        self._max_batch = max_batch
        self._pending: list[tuple[str, asyncio.Future[bool]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def succeeded(self, delivery_id: str) -> bool:
        """Whether the delivery is stored as a success; raises what the lookup raised."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((delivery_id, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let the jobs handed over in the same turn join the first batch
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                found = await self._lookup(list(dict.fromkeys(i for i, _ in batch)))
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for delivery_id, future in batch:
                if not future.done():
                    future.set_result(delivery_id in found)


def delivery_to_check(raw: bytes) -> str | None:
    """The delivery id of a job that must not be sent twice, or None: a recovery, or a record
    that is no job (left to `Attempts.run`, which parks it; a bad id in a lookup's batch would
    leave the whole batch unchecked)."""
    try:
        doc = orjson.loads(raw)
        if doc.get("retryBase", 0):
            return None
        return str(uuid.UUID(doc["deliveryId"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


class OncePerEvent:
    """Wraps a lane's `run`: a job whose delivery already succeeded is skipped."""

    def __init__(self, run: Run, lookup: BatchedLookup) -> None:
        self._run = run
        self._lookup = lookup

    async def run(self, record: ConsumerRecord) -> asyncio.Future[None] | None:
        """`run(record)`, unless the record's delivery already succeeded (then None: done)."""
        delivery_id = delivery_to_check(record.value)
        if delivery_id is not None:
            try:
                if await self._lookup.succeeded(delivery_id):
                    SKIPPED.inc()
                    log.info("job skipped: its delivery already succeeded", delivery_id=delivery_id)
                    return None
            except Exception as exc:  # at least once: an unanswered check never holds a job
                log.warning(
                    "job sent unchecked: Postgres cannot say whether it was delivered",
                    delivery_id=delivery_id,
                    error_class=type(exc).__name__,
                )
        return await self._run(record)
