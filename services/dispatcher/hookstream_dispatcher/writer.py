"""Writes outcomes in batches and disables webhooks that keep failing.

Workers hand an outcome to `submit()` and go on with their next job; the future it returns
resolves once the outcome is committed, and only then may the job's offset be committed.
Outcomes that arrive together share one transaction of the store-outcome step every path uses
(`record_outcomes`), which also keeps each webhook's run of failures; deciding auto-disable on
that run is the dispatcher's part.
"""

import asyncio
from datetime import timedelta

import asyncpg
import prometheus_client
import structlog

from hookstream_common.history import FailureRun, Outcome, record_outcomes
from hookstream_common.webhook_store import disable
from hookstream_dispatcher.policy import utcnow

log = structlog.get_logger(__name__)

DISABLED = prometheus_client.Counter(
    "hookstream_dispatcher_webhooks_disabled_total", "Webhooks disabled, by reason code.", ["code"]
)
_MAX_BATCH = 500
_LINGER_SECONDS = 0.02


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
        async with self._pool.acquire() as conn, conn.transaction():
            runs = await record_outcomes(conn, outcomes)
        return [(run.webhook_id, run.failures) for run in runs if self._should_disable(run)]

    def _should_disable(self, run: FailureRun) -> bool:
        """Every attempt failed for `disable_after`, and at least `min_failures` in a row."""
        cutoff = utcnow() - self._disable_after
        return (
            run.failures >= self._min_failures
            and run.failing_since is not None
            and run.failing_since <= cutoff
        )

    async def _disable(self, webhook_id: str, failures: int) -> None:
        hours = self._disable_after.total_seconds() / 3600
        reason = (
            f"Every delivery failed for more than {hours:g} hours ({failures} attempts in a row)."
            " Fix the endpoint, then enable the webhook again."
        )
        if await disable(self._pool, webhook_id, "DELIVERY_FAILURES", reason):
            DISABLED.labels("DELIVERY_FAILURES").inc()
            log.warning("webhook disabled", webhook_id=webhook_id, code="DELIVERY_FAILURES")
