"""Delivery history in Postgres: event bodies (once per event), deliveries and their attempts.

Every attempt, whatever caused it (dispatch, retry, resend, recover), is recorded by one step,
`record_outcomes` (decision 5): the history rows and the webhook's health (its run of failures,
its last attempt and status, and the counts behind its rates: `health_counts`), in the caller's
transaction. Written in batches, never one autocommit per row. Every table is partitioned by
day on the delivery's trigger time; see migration 0003.
"""

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from opentelemetry.trace import SpanContext

from hookstream_common.db import write_with_partitions
from hookstream_common.delivery import Attempt, OutboundRequest
from hookstream_common.events import Event
from hookstream_common.health_counts import Change, add_counts, attempt_changes, due_changes
from hookstream_common.jobs import DeliveryJob
from hookstream_common.operational import (
    DEFAULT_RECOVERED_AFTER,
    outcome_notices,
    raise_notices,
)
from hookstream_common.tracing import trace_id_of

PENDING_GRACE = "15 minutes"
PENDING_ATTEMPT_SQL = f"next_attempt_at > now() - interval '{PENDING_GRACE}'"
"""A delivery's next attempt is still to come: a retry is scheduled, or a recovery queued it.

Recover skips such deliveries (a second retry chain would start) and the janitor keeps their
day. An attempt due more than 15 minutes ago that stored nothing is taken as lost (its job was
dropped, e.g. while the webhook was disabled), so the delivery can be recovered again and its
day dropped.
"""


@dataclass(frozen=True)
class Outcome:
    """The result of one attempt of a delivery, and the delivery's state after it."""

    delivery_id: str
    tenant_id: str
    webhook_id: str
    event: Event
    cloud_event: bool
    status: str
    status_message: str
    triggered_at: datetime
    request: dict[str, Any]
    attempt_number: int
    attempt: Attempt
    next_attempt_at: datetime | None = None
    """When the retry this attempt scheduled is due; None when it scheduled none."""
    exhausted: bool = False
    """The attempt failed, would have been retried, and no retry is left: failed for good."""
    trace: SpanContext | None = None
    """The attempt's span, when traced: the row stores its trace id, the write links to it."""

    @classmethod
    def of_attempt(
        cls,
        job: DeliveryJob,
        cloud_event: bool,
        request: OutboundRequest,
        attempt: Attempt,
        *,
        succeeded: bool,
        status_message: str,
        next_attempt_at: datetime | None = None,
        exhausted: bool = False,
        trace: SpanContext | None = None,
    ) -> "Outcome":
        """The one step from a job's attempt to what the history stores (decision 11), for the
        dispatcher's attempts and the API's resend and test event alike; the caller judges."""
        return cls(
            delivery_id=job.delivery_id,
            tenant_id=job.tenant_id,
            webhook_id=job.webhook_id,
            event=job.event,
            cloud_event=cloud_event,
            status="success" if succeeded else "fail",
            status_message=status_message,
            triggered_at=job.triggered_at,
            request=request.as_history(),
            attempt_number=job.attempt_number,
            attempt=attempt,
            next_attempt_at=next_attempt_at,
            exhausted=exhausted,
            trace=trace,
        )


@dataclass(frozen=True)
class FailureRun:
    """A webhook's run of failed attempts after a batch: what auto-disable decides on."""

    webhook_id: str
    failures: int
    failing_since: datetime | None


@dataclass(frozen=True)
class _Run:
    """What a batch says about one webhook: its run of failed attempts and its last attempt."""

    reset: bool
    failures: int
    failing_since: datetime | None
    last_at: datetime | None = None
    last_status: str | None = None
    failures_before_success: int = 0
    """Of a reset run: the failed attempts of the batch before its first success."""


# One statement for every webhook of a batch: a reset run replaces the count, others add to it;
# the last attempt is the latest one started (a late write never replaces a newer outcome). A
# reset run also notes the run its first success ended: the stored count (read under the row's
# lock, as SET sees the row before the update) plus the batch's failures before that success.
_HEALTH_SQL = """
WITH batch AS (
    SELECT * FROM unnest(
        $1::uuid[], $2::int[], $3::timestamptz[], $4::bool[], $5::timestamptz[], $6::text[],
        $7::int[]
    ) AS b(webhook_id, failures, failing_since, reset, last_at, last_status, ended)
)
INSERT INTO webhook_health AS h
    (webhook_id, consecutive_failures, failing_since, last_delivery_at, last_status, run_ended)
SELECT webhook_id, failures, failing_since, last_at, last_status,
    CASE WHEN reset THEN ended ELSE 0 END FROM batch
ON CONFLICT (webhook_id) DO UPDATE SET
    run_ended = CASE
        WHEN (SELECT reset FROM batch WHERE batch.webhook_id = h.webhook_id)
        THEN h.consecutive_failures + EXCLUDED.run_ended ELSE 0 END,
    last_status = CASE
        WHEN h.last_delivery_at IS NULL OR EXCLUDED.last_delivery_at >= h.last_delivery_at
        THEN EXCLUDED.last_status ELSE h.last_status END,
    last_delivery_at = GREATEST(h.last_delivery_at, EXCLUDED.last_delivery_at),
    consecutive_failures = CASE
        WHEN (SELECT reset FROM batch WHERE batch.webhook_id = h.webhook_id)
        THEN EXCLUDED.consecutive_failures
        ELSE h.consecutive_failures + EXCLUDED.consecutive_failures END,
    failing_since = CASE
        WHEN (SELECT reset FROM batch WHERE batch.webhook_id = h.webhook_id)
        THEN EXCLUDED.failing_since
        ELSE COALESCE(h.failing_since, EXCLUDED.failing_since) END
RETURNING h.webhook_id, h.consecutive_failures, h.failing_since, h.run_ended
"""

# Monotonic: an earlier attempt (late, or delivered again) never replaces a later attempt's
# outcome, and a success is final. Returns the rows it wrote, with what they held before, for
# the pending-retry counts. What they held is read by a CTE of the same statement, which sees
# the rows as they were when it began (RETURNING OLD would need PostgreSQL 18).
_DELIVERY_UPSERT = """
WITH given AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[],
        $6::text[], $7::text[], $8::timestamptz[], $9::bool[], $10::jsonb[], $11::jsonb[],
        $12::int[], $13::timestamptz[], $14::text[])
        AS g(id, tenant_id, webhook_id, event_id, event_type, status, status_message,
             triggered_at, cloud_event, request, response, attempts, next_attempt_at, trace_id)
), before AS (
    SELECT d.id, d.triggered_at, d.status, d.next_attempt_at FROM deliveries d
    WHERE (d.id, d.triggered_at) IN (SELECT id, triggered_at FROM given)
), written AS (
    INSERT INTO deliveries AS d (id, tenant_id, webhook_id, event_id, event_type, status,
        status_message, triggered_at, cloud_event, request, response, attempts,
        next_attempt_at, trace_id, changed_at)
    SELECT *, now() FROM given
    ON CONFLICT (id, triggered_at) DO UPDATE SET status = EXCLUDED.status,
        status_message = EXCLUDED.status_message, request = EXCLUDED.request,
        response = EXCLUDED.response, attempts = EXCLUDED.attempts,
        next_attempt_at = EXCLUDED.next_attempt_at, changed_at = EXCLUDED.changed_at,
        trace_id = COALESCE(EXCLUDED.trace_id, d.trace_id)
    WHERE d.status <> 'success' AND EXCLUDED.attempts >= d.attempts
    RETURNING d.id, d.triggered_at, d.webhook_id, d.status, d.next_attempt_at
)
SELECT w.webhook_id, w.status, w.next_attempt_at,
    b.status AS old_status, b.next_attempt_at AS old_next_attempt_at
FROM written w LEFT JOIN before b ON b.id = w.id AND b.triggered_at = w.triggered_at
"""

# An attempt stored again (its job was sent twice) replaces the earlier row; what it held is
# returned, so the counts move rather than grow. The response body is stored once, in the
# delivery's `response`; an attempt notes only whether it was cut.
_ATTEMPT_UPSERT = """
WITH given AS (
    SELECT * FROM unnest($1::uuid[], $2::int[], $3::timestamptz[], $4::text[], $5::uuid[],
        $6::timestamptz[], $7::float8[], $8::int[], $9::text[], $10::text[], $11::bool[])
        AS g(delivery_id, attempt, triggered_at, tenant_id, webhook_id, started_at, duration_ms,
             status_code, error_class, error, body_truncated)
), before AS (
    SELECT a.delivery_id, a.attempt, a.triggered_at, a.started_at, a.status_code
    FROM delivery_attempts a
    WHERE (a.delivery_id, a.attempt, a.triggered_at)
        IN (SELECT delivery_id, attempt, triggered_at FROM given)
), written AS (
    INSERT INTO delivery_attempts AS a (delivery_id, attempt, triggered_at, tenant_id,
        webhook_id, started_at, duration_ms, status_code, error_class, error, body_truncated)
    SELECT * FROM given
    ON CONFLICT (delivery_id, attempt, triggered_at) DO UPDATE SET
        started_at = EXCLUDED.started_at, duration_ms = EXCLUDED.duration_ms,
        status_code = EXCLUDED.status_code, error_class = EXCLUDED.error_class,
        error = EXCLUDED.error, body_truncated = EXCLUDED.body_truncated
    RETURNING a.delivery_id, a.attempt, a.triggered_at, a.webhook_id, a.started_at,
        a.status_code
)
SELECT w.webhook_id, w.started_at, w.status_code,
    b.started_at AS old_started_at, b.status_code AS old_status_code
FROM written w LEFT JOIN before b ON b.delivery_id = w.delivery_id AND b.attempt = w.attempt
    AND b.triggered_at = w.triggered_at
"""


async def record_outcomes(
    conn: asyncpg.Connection,
    outcomes: list[Outcome],
    recovered_after: int = DEFAULT_RECOVERED_AFTER,
) -> list[FailureRun]:
    """The one store-outcome step: history rows, the health counts, each webhook's run of
    failed attempts, then the operational events the batch raises (`delivery.exhausted`, and
    `webhook.recovered` for a success that ended a run of at least `recovered_after` failures).

    Call inside a transaction. Returns the runs as they stand after the batch; whether one
    disables its webhook is the dispatcher's decision (it owns auto-disable), so a failed
    resend counts towards it without the API deciding anything.
    """
    await add_counts(conn, await store(conn, outcomes))
    runs = summarise(outcomes)
    ordered = [runs[webhook_id] for webhook_id in sorted(runs)]  # one lock order for all writers
    rows = await conn.fetch(
        _HEALTH_SQL,
        sorted(runs),
        [run.failures for run in ordered],
        [run.failing_since for run in ordered],
        [run.reset for run in ordered],
        [run.last_at for run in ordered],
        [run.last_status for run in ordered],
        [run.failures_before_success for run in ordered],
    )
    ended = {str(row["webhook_id"]): row["run_ended"] for row in rows if row["run_ended"]}
    await raise_notices(conn, outcome_notices(outcomes, ended, recovered_after))
    return [
        FailureRun(str(row["webhook_id"]), row["consecutive_failures"], row["failing_since"])
        for row in rows
    ]


def summarise(outcomes: list[Outcome]) -> dict[str, _Run]:
    """Per webhook: failures since its last success in the batch (or all, if none succeeded),
    those before its first success, and the status of its latest attempt."""
    runs: dict[str, _Run] = {}
    for outcome in outcomes:
        previous = runs.get(outcome.webhook_id, _Run(False, 0, None))
        started = outcome.attempt.started_at
        if previous.last_at is None or started >= previous.last_at:
            last_at, last_status = started, outcome.status
        else:
            last_at, last_status = previous.last_at, previous.last_status
        if outcome.attempt.succeeded:
            before = previous.failures_before_success if previous.reset else previous.failures
            runs[outcome.webhook_id] = _Run(True, 0, None, last_at, last_status, before)
        else:
            runs[outcome.webhook_id] = _Run(
                previous.reset,
                previous.failures + 1,
                previous.failing_since or started,
                last_at,
                last_status,
                previous.failures_before_success,
            )
    return runs


def rounds(outcomes: list[Outcome], key: Callable[[Outcome], Hashable]) -> list[list[Outcome]]:
    """The outcomes in rounds holding each key at most once, in order: one statement cannot
    write a row twice, and a row written twice in a batch (an attempt and its immediate retry)
    must take its writes in the order they came."""
    seen: dict[Hashable, int] = {}
    split: list[list[Outcome]] = []
    for outcome in outcomes:
        index = seen[key(outcome)] = seen.get(key(outcome), -1) + 1
        if index == len(split):
            split.append([])
        split[index].append(outcome)
    return split


async def store(conn: asyncpg.Connection, outcomes: list[Outcome]) -> list[Change]:
    """Insert bodies and attempts, upsert deliveries (monotonically); call inside a transaction.

    Returns how the rows written move the health counts. A late write always finds its
    partition (`write_with_partitions`).
    """
    days = sorted({o.triggered_at.astimezone(UTC).date() for o in outcomes})
    return await write_with_partitions(conn, lambda: _write(conn, outcomes), days)


async def _write(conn: asyncpg.Connection, outcomes: list[Outcome]) -> list[Change]:
    bodies = {(o.tenant_id, o.event.id, o.triggered_at): o.event for o in outcomes}
    await conn.executemany(
        "INSERT INTO event_bodies (tenant_id, event_id, triggered_at, body)"
        " VALUES ($1, $2, $3, $4::text::json) ON CONFLICT DO NOTHING",
        [(t, e, at, event.legacy_json.decode()) for (t, e, at), event in bodies.items()],
    )
    changes: list[Change] = []
    for batch in rounds(outcomes, lambda o: (o.delivery_id, o.triggered_at)):
        rows = await conn.fetch(
            _DELIVERY_UPSERT,
            [o.delivery_id for o in batch],
            [o.tenant_id for o in batch],
            [o.webhook_id for o in batch],
            [o.event.id for o in batch],
            [o.event.type for o in batch],
            [o.status for o in batch],
            [o.status_message for o in batch],
            [o.triggered_at for o in batch],
            [o.cloud_event for o in batch],
            [o.request for o in batch],
            [o.attempt.as_history() for o in batch],
            [o.attempt_number for o in batch],
            [o.next_attempt_at for o in batch],
            [trace_id_of(o.trace) for o in batch],
        )
        changes += due_changes(rows)
    for batch in rounds(outcomes, lambda o: (o.delivery_id, o.attempt_number, o.triggered_at)):
        rows = await conn.fetch(
            _ATTEMPT_UPSERT,
            [o.delivery_id for o in batch],
            [o.attempt_number for o in batch],
            [o.triggered_at for o in batch],
            [o.tenant_id for o in batch],
            [o.webhook_id for o in batch],
            [o.attempt.started_at for o in batch],
            [o.attempt.duration_ms for o in batch],
            [o.attempt.status_code for o in batch],
            [o.attempt.error_class for o in batch],
            [o.attempt.error for o in batch],
            [o.attempt.body_truncated for o in batch],
        )
        changes += attempt_changes(rows)
    return changes


def delivery_body(body: Any, cloud_event: bool) -> Any:
    """The `request.body` of a stored delivery: the event in the shape the webhook received."""
    if body is None:
        return None
    return orjson.loads(Event.from_legacy(body).render(cloud_event)) if cloud_event else body
