"""Recoveries: a stored request to queue a window of failed deliveries again, and its worker.

A recover request is a `recoveries` row, answered at once with the count it will queue. The
worker, in every API process, queues it one page per transaction: it claims a running recovery
(`FOR UPDATE SKIP LOCKED`, so replicas never work on the same one), reads the next page of the
window by keyset on (triggered_at, id), marks the deliveries it takes, publishes their jobs and
waits for the broker's acks, then moves the cursor stored in the row. A crash rolls the page
back, so the next claim resumes there (its jobs may be sent again: at least once, same ids).

A delivery is taken when it failed, no attempt of it is pending (a retry is scheduled, or a
recovery queued it: `PENDING_ATTEMPT_SQL`) and it has not changed since this recovery was
requested (no outcome stored, no other recovery took it), so the same window recovered twice
sends once, however the two interleave with the attempts. Taking it sets `next_attempt_at`
(pending until the dispatcher stores the attempt, and counted as a pending retry in the health
rollups) and `changed_at`.
"""

import asyncio
import contextlib
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from hookstream_common import audit
from hookstream_common.events import Event, InvalidEvent
from hookstream_common.health_counts import add_counts, due_changes
from hookstream_common.history import PENDING_ATTEMPT_SQL
from hookstream_common.jobs import DeliveryJob
from hookstream_common.resilience import TRANSIENT, Backoff
from hookstream_common.shards import JobQueue
from hookstream_common.topics import Topics

log = structlog.get_logger(__name__)

_RETRYABLE = (*TRANSIENT, asyncpg.exceptions.TransactionRollbackError)

# Failed, with its event stored, nothing pending; `d` is deliveries and `b` its event body.
_RECOVERABLE = f"d.status = 'fail' AND ({PENDING_ATTEMPT_SQL}) IS NOT TRUE AND b.body IS NOT NULL"

_CREATE_SQL = f"""
INSERT INTO recoveries (id, tenant_id, webhook_id, since, until, total)
SELECT $1, $2, $3, $4, $5, count(*)
FROM deliveries d JOIN event_bodies b
    ON b.tenant_id = d.tenant_id AND b.event_id = d.event_id AND b.triggered_at = d.triggered_at
WHERE d.tenant_id = $2 AND d.webhook_id = $3 AND d.triggered_at >= $4 AND d.triggered_at < $5
    AND {_RECOVERABLE}
HAVING (SELECT count(*) FROM recoveries WHERE tenant_id = $2 AND state = 'running') < $6
RETURNING *
"""

_CLAIM_SQL = """
SELECT r.*, w.id IS NULL AS webhook_gone
FROM recoveries r LEFT JOIN webhooks w ON w.id = r.webhook_id
WHERE r.state = 'running'
ORDER BY r.worked_at NULLS FIRST, r.created_at
LIMIT 1
FOR UPDATE OF r SKIP LOCKED
"""

_PAGE_SQL = """
SELECT d.id, d.triggered_at FROM deliveries d
WHERE d.tenant_id = $1 AND d.webhook_id = $2 AND d.status = 'fail'
    AND d.triggered_at >= $3 AND d.triggered_at < $4
    AND ($5::timestamptz IS NULL OR (d.triggered_at, d.id) > ($5, $6::uuid))
ORDER BY d.triggered_at, d.id
LIMIT $7
"""

# Conditions checked again on the locked rows: a concurrent recovery or outcome wins cleanly.
_TAKE_SQL = f"""
UPDATE deliveries d SET next_attempt_at = now(), changed_at = now()
FROM event_bodies b
WHERE (d.id, d.triggered_at) IN (SELECT * FROM unnest($1::uuid[], $2::timestamptz[]))
    AND d.triggered_at >= $3 AND d.triggered_at <= $4
    AND b.tenant_id = d.tenant_id AND b.event_id = d.event_id AND b.triggered_at = d.triggered_at
    AND {_RECOVERABLE} AND (d.changed_at IS NULL OR d.changed_at < $5)
RETURNING d.id, d.triggered_at, d.attempts, b.body, d.webhook_id, new.status,
    new.next_attempt_at, old.status AS old_status, old.next_attempt_at AS old_next_attempt_at
"""

_ADVANCE_SQL = """
UPDATE recoveries SET
    cursor_triggered_at = COALESCE($2, cursor_triggered_at),
    cursor_id = COALESCE($3, cursor_id),
    queued = queued + $4,
    worked_at = now(),
    state = CASE WHEN $5 THEN 'done' ELSE state END,
    finished_at = CASE WHEN $5 THEN now() END
WHERE id = $1
"""

_FINISH_SQL = "UPDATE recoveries SET state = $2, finished_at = now() WHERE id = $1"


async def create_recovery(
    pool: asyncpg.Pool,
    tenant_id: str,
    webhook_id: uuid.UUID,
    since: datetime,
    until: datetime,
    max_running: int,
    actor: audit.Actor,
) -> asyncpg.Record | None:
    """Store a recovery of [since, until), counting the deliveries it will queue, with its audit
    row as `actor`'s; None when the tenant already has `max_running` recoveries under way."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            _CREATE_SQL, uuid.uuid4(), tenant_id, webhook_id, since, until, max_running
        )
        if row is not None:
            details = {
                "recoveryId": str(row["id"]),
                "since": since.isoformat(),
                "until": until.isoformat(),
                "total": row["total"],
            }
            await audit.record(conn, actor, "recover", webhook_id, details=details)
    return row


async def read_recovery(
    pool: asyncpg.Pool, tenant_id: str, webhook_id: uuid.UUID, recovery_id: uuid.UUID
) -> asyncpg.Record | None:
    """One recovery of the webhook, or None."""
    return await pool.fetchrow(
        "SELECT * FROM recoveries WHERE id = $1 AND tenant_id = $2 AND webhook_id = $3",
        recovery_id,
        tenant_id,
        webhook_id,
    )


async def take_page(
    conn: asyncpg.Connection, recovery: asyncpg.Record, keys: list[asyncpg.Record]
) -> list[DeliveryJob]:
    """Mark the page's recoverable deliveries as queued; their jobs."""
    rows = await conn.fetch(
        _TAKE_SQL,
        [key["id"] for key in keys],
        [key["triggered_at"] for key in keys],
        keys[0]["triggered_at"],
        keys[-1]["triggered_at"],
        recovery["created_at"],
    )
    await add_counts(conn, due_changes(rows))
    jobs = []
    for row in rows:
        try:
            event = Event.from_legacy(row["body"])
        except InvalidEvent as exc:
            log.warning(
                "delivery not recovered: its stored event is invalid",
                delivery_id=str(row["id"]),
                error=str(exc),
                **_ids(recovery),
            )
            continue
        jobs.append(
            DeliveryJob.for_recovery(
                str(row["id"]),
                str(recovery["webhook_id"]),
                recovery["tenant_id"],
                event,
                row["triggered_at"],
                row["attempts"],
            )
        )
    return jobs


class RecoveryWorker:
    """Queues stored recoveries, one page per transaction; run `run()` as a task."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        kafka: AIOKafkaProducer,
        topics: Topics,
        shards: int,
        page_size: int = 100,
        idle_seconds: float = 2.0,
        ack_timeout: float = 30.0,
    ) -> None:
        self._pool = pool
        self._kafka = kafka
        self._topics = topics
        self._shards = shards
        self._page_size = page_size
        self._idle_seconds = idle_seconds
        self._ack_timeout = ack_timeout
        self._requested = asyncio.Event()

    def run_soon(self) -> None:
        """A recovery was requested here: start on it now rather than at the next poll."""
        self._requested.set()

    async def run(self) -> None:
        """Work until cancelled; an outage or a failing recovery only delays the rest."""
        backoff = Backoff()
        while True:
            self._requested.clear()  # before the step: a request during it is not lost
            try:
                busy = await self.step()
                backoff.reset()
            except Exception as exc:
                log.warning(
                    "recovery worker waits",
                    error_class=type(exc).__name__,
                    error=str(exc),
                    retry_in=backoff.delay,
                )
                await backoff.wait()
                continue
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._requested.wait(), self._idle_seconds)

    async def step(self) -> bool:
        """Queue one page of one running recovery; False when none is waiting.

        An outage or a conflict (a deadlock with a concurrent writer) rolls the page back and is
        raised, to be tried again; any other error parks the recovery as `failed`, so one that
        can never be queued does not hold up the others.
        """
        async with self._pool.acquire() as conn:
            recovery = None
            try:
                async with conn.transaction():
                    recovery = await conn.fetchrow(_CLAIM_SQL)
                    if recovery is None:
                        return False
                    await self._queue_page(conn, recovery)
            except _RETRYABLE:
                raise
            except Exception:
                if recovery is None:
                    raise
                log.exception("recovery failed; parked", **_ids(recovery))
                await conn.execute(_FINISH_SQL, recovery["id"], "failed")
        return True

    async def _queue_page(self, conn: asyncpg.Connection, recovery: asyncpg.Record) -> None:
        bound = log.bind(**_ids(recovery))
        if recovery["webhook_gone"]:
            await conn.execute(_FINISH_SQL, recovery["id"], "cancelled")
            bound.info("recovery cancelled: the webhook was deleted")
            return
        keys = await conn.fetch(
            _PAGE_SQL,
            recovery["tenant_id"],
            recovery["webhook_id"],
            recovery["since"],
            recovery["until"],
            recovery["cursor_triggered_at"],
            recovery["cursor_id"],
            self._page_size,
        )
        jobs = await take_page(conn, recovery, keys) if keys else []
        await self._publish(str(recovery["webhook_id"]), jobs)
        done = len(keys) < self._page_size
        last = keys[-1] if keys else {"triggered_at": None, "id": None}
        await conn.execute(
            _ADVANCE_SQL, recovery["id"], last["triggered_at"], last["id"], len(jobs), done
        )
        bound.info("recovery page queued", examined=len(keys), queued=len(jobs), done=done)

    async def _publish(self, webhook_id: str, jobs: list[DeliveryJob]) -> None:
        """Send every job and wait for every ack; a timeout rolls the page back."""

        async def send_all() -> None:
            queue = JobQueue(self._kafka, self._topics, self._shards)
            for job in jobs:
                await queue.send(webhook_id, job.dumps())
            await queue.wake()

        await asyncio.wait_for(send_all(), self._ack_timeout)


def _ids(recovery: asyncpg.Record) -> dict[str, Any]:
    return {
        "tenant_id": recovery["tenant_id"],
        "webhook_id": str(recovery["webhook_id"]),
        "recovery_id": str(recovery["id"]),
    }


def start_recovery_worker(app: FastAPI) -> asyncio.Task[None]:
    """Run a worker for the app's lifetime (after its pool and producer exist)."""
    settings = app.state.settings
    worker = RecoveryWorker(
        app.state.pool, app.state.kafka, settings.topics, settings.dispatch_shards
    )
    app.state.recovery_worker = worker
    return asyncio.create_task(worker.run(), name="recovery-worker")
