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
import orjson
import prometheus_client
import structlog
from aiokafka import AIOKafkaProducer

from hookstream_common import tracing
from hookstream_common.history import FailureRun, Outcome, record_outcomes
from hookstream_common.operational import DEFAULT_RECOVERED_AFTER
from hookstream_common.parking import PARKED, park_value, reason_of
from hookstream_common.resilience import TRANSIENT, Backoff, keep_trying
from hookstream_common.webhook_store import disable
from hookstream_dispatcher.metrics import (
    HISTORY_BATCH_SECONDS,
    HISTORY_WRITE_FAILURES,
)
from hookstream_dispatcher.policy import utcnow

log = structlog.get_logger(__name__)

DISABLED = prometheus_client.Counter(
    "hookstream_dispatcher_webhooks_disabled_total", "Webhooks disabled, by reason code.", ["code"]
)
_MAX_BATCH = 500
_DATA_ERROR_CLASSES = ("22", "23", "54")
"""SQLSTATE classes that blame the row: data exception, integrity, program limit."""


def _rejects_the_data(error: asyncpg.PostgresError) -> bool:
    return str(getattr(error, "sqlstate", "") or "")[:2] in _DATA_ERROR_CLASSES


_LINGER_SECONDS = 0.02


class HistoryWriter:
    """Batches outcomes into transactions; run `run()` as a task."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        disable_after: timedelta,
        min_failures: int,
        dead_letters: tuple[AIOKafkaProducer, str] | None = None,
        recovered_after: int = DEFAULT_RECOVERED_AFTER,
    ) -> None:
        self._pool = pool
        self._recovered_after = recovered_after
        self._dead_letters = dead_letters
        self._disable_after = disable_after
        self._min_failures = min_failures
        self._queue: asyncio.Queue[tuple[Outcome, asyncio.Future[None]]] = asyncio.Queue()

    @property
    def waiting(self) -> int:
        """Outcomes submitted and not yet being stored."""
        return self._queue.qsize()

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
            with HISTORY_BATCH_SECONDS.time():
                await self._flush_until_stored([outcome for outcome, _ in batch])
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def _flush_until_stored(self, outcomes: list[Outcome]) -> None:
        """Store the batch whatever happens: outages are waited out, bad rows parked."""
        for webhook_id, failures in await self._store(outcomes):
            await keep_trying(
                lambda w=webhook_id, f=failures: self._disable(w, f), "Postgres (auto-disable)"
            )

    async def _store(self, outcomes: list[Outcome]) -> list[tuple[str, int]]:
        """Store; if Postgres rejects the data, halve the batch until the culprit is alone,
        and park it, so one bad row never holds up every other webhook's commits."""
        try:
            return await self._flush_through_outages(outcomes)
        except asyncpg.PostgresError as exc:
            if len(outcomes) == 1:
                await self._park(outcomes[0], exc)
                return []
            half = len(outcomes) // 2
            return await self._store(outcomes[:half]) + await self._store(outcomes[half:])

    async def _flush_through_outages(self, outcomes: list[Outcome]) -> list[tuple[str, int]]:
        """Retry while Postgres is unreachable or fails for reasons not in the data (a bad
        deploy must not park history); raise a data error (SQLSTATE 22, 23, 54) for `_store`."""
        backoff = Backoff()
        while True:
            try:
                return await self._flush(outcomes)
            except TRANSIENT as exc:
                HISTORY_WRITE_FAILURES.labels("outage").inc()
                log.warning(
                    "storing outcomes waits for Postgres",
                    error_class=type(exc).__name__,
                    retry_in=backoff.delay,
                )
            except asyncpg.PostgresError as exc:
                rejected = _rejects_the_data(exc)
                HISTORY_WRITE_FAILURES.labels("rejected" if rejected else "error").inc()
                if rejected:
                    raise
                log.error(
                    "storing outcomes failed; retrying", error=str(exc), retry_in=backoff.delay
                )
            await backoff.wait()

    async def _park(self, outcome: Outcome, error: asyncpg.PostgresError) -> None:
        """What could not be stored goes to the dead-letter topic, with the reason: a dead
        letter like any other, whose value is the outcome's summary as JSON."""
        summary = {
            "deliveryId": outcome.delivery_id,
            "webhookId": outcome.webhook_id,
            "tenantId": outcome.tenant_id,
            "eventId": outcome.event.id,
            "attempt": outcome.attempt_number,
            "status": outcome.status,
            "statusMessage": outcome.status_message,
            "triggeredAt": outcome.triggered_at,
        }
        source = f"history/{outcome.delivery_id}/{outcome.attempt_number}"
        if self._dead_letters is None:
            PARKED.labels("history").inc()
            log.error(
                "outcome dropped: Postgres rejects it", source=source, reason=reason_of(error)
            )
            return
        producer, topic = self._dead_letters
        await park_value(
            producer,
            topic,
            orjson.dumps(summary),
            outcome.webhook_id.encode(),
            source,
            error,
            "history",
        )

    async def _flush(self, outcomes: list[Outcome]) -> list[tuple[str, int]]:
        """One transaction, in a span linked to the attempts it stores."""
        attributes = {"db.system.name": "postgresql", "hookstream.outcomes": len(outcomes)}
        linked = [outcome.trace for outcome in outcomes]
        with tracing.span("history write", attributes=attributes, linked=linked):
            async with self._pool.acquire() as conn, conn.transaction():
                runs = await record_outcomes(conn, outcomes, self._recovered_after)
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
