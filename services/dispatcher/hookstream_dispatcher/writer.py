"""Writes outcomes in batches and disables webhooks that keep failing.

Workers hand an outcome to `submit()` and go on with their next job; the future it returns
resolves once the outcome is committed, and only then may the job's offset be committed.
Outcomes that arrive together share one transaction, which also keeps each webhook's run of
failures for auto-disable.
"""

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import prometheus_client
import structlog

from hookstream_common.history import Outcome, store
from hookstream_common.webhook_store import disable
from hookstream_dispatcher.policy import utcnow

log = structlog.get_logger(__name__)

DISABLED = prometheus_client.Counter(
    "hookstream_dispatcher_webhooks_disabled_total", "Webhooks disabled, by reason code.", ["code"]
)
_MAX_BATCH = 500
# One statement for every webhook of a batch: a reset run replaces the count, others add to it;
# returns the webhooks whose run now qualifies for auto-disable.
_HEALTH_SQL = """
WITH batch AS (
    SELECT * FROM unnest($1::uuid[], $2::int[], $3::timestamptz[], $4::bool[])
        AS b(webhook_id, failures, failing_since, reset)
), updated AS (
    INSERT INTO webhook_health AS h (webhook_id, consecutive_failures, failing_since)
    SELECT webhook_id, failures, failing_since FROM batch
    ON CONFLICT (webhook_id) DO UPDATE SET
        consecutive_failures = CASE
            WHEN (SELECT reset FROM batch WHERE batch.webhook_id = h.webhook_id)
            THEN EXCLUDED.consecutive_failures
            ELSE h.consecutive_failures + EXCLUDED.consecutive_failures END,
        failing_since = CASE
            WHEN (SELECT reset FROM batch WHERE batch.webhook_id = h.webhook_id)
            THEN EXCLUDED.failing_since
            ELSE COALESCE(h.failing_since, EXCLUDED.failing_since) END
    RETURNING h.webhook_id, h.consecutive_failures, h.failing_since
)
SELECT webhook_id, consecutive_failures FROM updated
WHERE consecutive_failures >= $5 AND failing_since <= $6
"""
_LINGER_SECONDS = 0.02


@dataclass(frozen=True)
class _Run:
    """What a batch says about one webhook's run of failed attempts."""

    reset: bool
    failures: int
    failing_since: datetime | None


def summarise(outcomes: list[Outcome]) -> dict[str, _Run]:
    """Per webhook: failures since its last success in the batch (or all, if none succeeded)."""
    runs: dict[str, _Run] = {}
    for outcome in outcomes:
        previous = runs.get(outcome.webhook_id, _Run(False, 0, None))
        if outcome.attempt.succeeded:
            runs[outcome.webhook_id] = _Run(True, 0, None)
        else:
            runs[outcome.webhook_id] = _Run(
                previous.reset,
                previous.failures + 1,
                previous.failing_since or outcome.attempt.started_at,
            )
    return runs


class HistoryWriter:
    """Batches outcomes into transactions; run `run()` as a task."""

    def __init__(self, pool: asyncpg.Pool, disable_after: timedelta, min_failures: int) -> None:
        self._pool = pool
        self._disable_after = disable_after
        self._min_failures = min_failures
        self._queue: asyncio.Queue[tuple[Outcome, asyncio.Future[None]]] = asyncio.Queue()

    def submit(self, outcome: Outcome) -> asyncio.Future[None]:
        """Queue the outcome; the future resolves once it is committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((outcome, done))
        return done

    async def run(self) -> None:
        """Flush forever: whatever has queued up, at most `_MAX_BATCH` at a time."""
        while True:
            batch = [await self._queue.get()]
            await asyncio.sleep(_LINGER_SECONDS)
            while not self._queue.empty() and len(batch) < _MAX_BATCH:
                batch.append(self._queue.get_nowait())
            await self._flush_until_stored([outcome for outcome, _ in batch])
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def _flush_until_stored(self, outcomes: list[Outcome]) -> None:
        """Retry until Postgres takes the batch: the offsets wait for it, nothing is dropped."""
        delay = 0.5
        while True:
            try:
                failing = await self._flush(outcomes)
                break
            except (asyncpg.PostgresError, OSError) as exc:
                log.error("storing outcomes failed; retrying", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        for webhook_id, failures in failing:
            await self._disable(webhook_id, failures)

    async def _flush(self, outcomes: list[Outcome]) -> list[tuple[str, int]]:
        cutoff = utcnow() - self._disable_after
        runs = summarise(outcomes)
        async with self._pool.acquire() as conn, conn.transaction():
            await store(conn, outcomes)
            rows = await conn.fetch(
                _HEALTH_SQL,
                list(runs),
                [run.failures for run in runs.values()],
                [run.failing_since for run in runs.values()],
                [run.reset for run in runs.values()],
                self._min_failures,
                cutoff,
            )
        return [(str(row["webhook_id"]), row["consecutive_failures"]) for row in rows]

    async def _disable(self, webhook_id: str, failures: int) -> None:
        hours = self._disable_after.total_seconds() / 3600
        reason = (
            f"Every delivery failed for more than {hours:g} hours ({failures} attempts in a row)."
            " Fix the endpoint, then enable the webhook again."
        )
        if await disable(self._pool, webhook_id, "DELIVERY_FAILURES", reason):
            DISABLED.labels("DELIVERY_FAILURES").inc()
            log.warning("webhook disabled", webhook_id=webhook_id, code="DELIVERY_FAILURES")
