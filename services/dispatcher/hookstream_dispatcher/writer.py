"""Writes outcomes in batches and disables webhooks that keep failing.

Workers hand an outcome to `write()` and wait for it: it returns once the outcome is committed,
so the worker may then let its offset be committed. Outcomes that arrive together share one
transaction, which also keeps each webhook's run of failures for auto-disable.
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

    async def write(self, outcome: Outcome) -> None:
        """Return once the outcome is committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((outcome, done))
        await done

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
        failing = []
        async with self._pool.acquire() as conn, conn.transaction():
            await store(conn, outcomes)
            for webhook_id, run in summarise(outcomes).items():
                row = await conn.fetchrow(
                    "INSERT INTO webhook_health (webhook_id, consecutive_failures, failing_since)"
                    " VALUES ($1, $2, $3) ON CONFLICT (webhook_id) DO UPDATE SET"
                    " consecutive_failures = CASE WHEN $4 THEN $2"
                    "  ELSE webhook_health.consecutive_failures + $2 END,"
                    " failing_since = CASE WHEN $4 THEN $3"
                    "  ELSE COALESCE(webhook_health.failing_since, $3) END"
                    " RETURNING consecutive_failures, failing_since",
                    webhook_id,
                    run.failures,
                    run.failing_since,
                    run.reset,
                )
                since = row["failing_since"]
                if row["consecutive_failures"] >= self._min_failures and since <= cutoff:
                    failing.append((webhook_id, row["consecutive_failures"]))
        return failing

    async def _disable(self, webhook_id: str, failures: int) -> None:
        hours = self._disable_after.total_seconds() / 3600
        reason = (
            f"Every delivery failed for more than {hours:g} hours ({failures} attempts in a row)."
            " Fix the endpoint, then enable the webhook again."
        )
        if await disable(self._pool, webhook_id, "DELIVERY_FAILURES", reason):
            DISABLED.labels("DELIVERY_FAILURES").inc()
            log.warning("webhook disabled", webhook_id=webhook_id, code="DELIVERY_FAILURES")
