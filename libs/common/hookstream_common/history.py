"""Delivery history in Postgres: event bodies (once per event), deliveries and their attempts.

Every attempt, whatever caused it (dispatch, retry, resend, recover), is recorded by one step,
`record_outcomes` (decision 5): the history rows and the webhook's health (its run of failures,
its last attempt and status), in the caller's transaction. Written in batches, never one
autocommit per row. Every table is partitioned by day on the delivery's trigger time; see
migration 0003.
"""

import contextlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import orjson

from hookstream_common.delivery import Attempt
from hookstream_common.events import Event

PENDING_ATTEMPT_SQL = "next_attempt_at > now() - interval '15 minutes'"
"""A delivery's next attempt is still to come: a retry is scheduled, or a recovery queued it.

Recover skips such deliveries (a second retry chain would start) and the janitor keeps their
day. An attempt due more than 15 minutes ago that stored nothing is taken as lost (its job was
dropped, e.g. while the webhook was disabled), so the delivery can be recovered again and its
day dropped.
"""

_PARTITION_TRIES = 3


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


# One statement for every webhook of a batch: a reset run replaces the count, others add to it;
# the last attempt is the latest one started (a late write never replaces a newer outcome).
_HEALTH_SQL = """
WITH batch AS (
    SELECT * FROM unnest(
        $1::uuid[], $2::int[], $3::timestamptz[], $4::bool[], $5::timestamptz[], $6::text[]
    ) AS b(webhook_id, failures, failing_since, reset, last_at, last_status)
)
INSERT INTO webhook_health AS h
    (webhook_id, consecutive_failures, failing_since, last_delivery_at, last_status)
SELECT webhook_id, failures, failing_since, last_at, last_status FROM batch
ON CONFLICT (webhook_id) DO UPDATE SET
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
RETURNING h.webhook_id, h.consecutive_failures, h.failing_since
"""

# Monotonic: an earlier attempt (late, or delivered again) never replaces a later attempt's
# outcome, and a success is final.
_DELIVERY_UPSERT = (
    "INSERT INTO deliveries (id, tenant_id, webhook_id, event_id, event_type, status,"
    " status_message, triggered_at, cloud_event, request, response, attempts, next_attempt_at,"
    " changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, now())"
    " ON CONFLICT (id, triggered_at) DO UPDATE SET status = EXCLUDED.status,"
    " status_message = EXCLUDED.status_message, request = EXCLUDED.request,"
    " response = EXCLUDED.response, attempts = EXCLUDED.attempts,"
    " next_attempt_at = EXCLUDED.next_attempt_at, changed_at = EXCLUDED.changed_at"
    " WHERE deliveries.status <> 'success' AND EXCLUDED.attempts >= deliveries.attempts"
)

# The response body is stored once, in the delivery's `response`; an attempt notes only
# whether it was cut.
_ATTEMPT_UPSERT = (
    "INSERT INTO delivery_attempts (delivery_id, attempt, triggered_at, tenant_id,"
    " webhook_id, started_at, duration_ms, status_code, error_class, error,"
    " body_truncated) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    " ON CONFLICT (delivery_id, attempt, triggered_at) DO UPDATE SET"
    " started_at = EXCLUDED.started_at, duration_ms = EXCLUDED.duration_ms,"
    " status_code = EXCLUDED.status_code, error_class = EXCLUDED.error_class,"
    " error = EXCLUDED.error, body_truncated = EXCLUDED.body_truncated"
)


async def record_outcomes(conn: asyncpg.Connection, outcomes: list[Outcome]) -> list[FailureRun]:
    """The one store-outcome step: history rows, then each webhook's run of failed attempts.

    Call inside a transaction. Returns the runs as they stand after the batch; whether one
    disables its webhook is the dispatcher's decision (it owns auto-disable), so a failed
    resend counts towards it without the API deciding anything.
    """
    await store(conn, outcomes)
    runs = summarise(outcomes)
    rows = await conn.fetch(
        _HEALTH_SQL,
        list(runs),
        [run.failures for run in runs.values()],
        [run.failing_since for run in runs.values()],
        [run.reset for run in runs.values()],
        [run.last_at for run in runs.values()],
        [run.last_status for run in runs.values()],
    )
    return [
        FailureRun(str(row["webhook_id"]), row["consecutive_failures"], row["failing_since"])
        for row in rows
    ]


def summarise(outcomes: list[Outcome]) -> dict[str, _Run]:
    """Per webhook: failures since its last success in the batch (or all, if none succeeded),
    and the status of its latest attempt."""
    runs: dict[str, _Run] = {}
    for outcome in outcomes:
        previous = runs.get(outcome.webhook_id, _Run(False, 0, None))
        started = outcome.attempt.started_at
        if previous.last_at is None or started >= previous.last_at:
            last_at, last_status = started, outcome.status
        else:
            last_at, last_status = previous.last_at, previous.last_status
        if outcome.attempt.succeeded:
            runs[outcome.webhook_id] = _Run(True, 0, None, last_at, last_status)
        else:
            runs[outcome.webhook_id] = _Run(
                previous.reset,
                previous.failures + 1,
                previous.failing_since or started,
                last_at,
                last_status,
            )
    return runs


async def store(conn: asyncpg.Connection, outcomes: list[Outcome]) -> None:
    """Insert bodies and attempts, upsert deliveries (monotonically); call inside a transaction.

    A late write always finds its partition: when its day has none (the janitor dropped it, or
    it is older than the partitions made ahead), the day's partitions are created here and the
    batch is written again. A default partition would instead keep such rows out of day-wise
    retention and block re-creating that day; refusing the write would stall the dispatcher,
    whose writer retries a batch until it is stored, behind one late retry.
    """
    days = sorted({o.triggered_at.astimezone(UTC).date() for o in outcomes})
    for tries_left in reversed(range(_PARTITION_TRIES)):
        try:
            async with conn.transaction():  # a savepoint: the batch is written whole or not
                await _write(conn, outcomes)
            return
        except asyncpg.CheckViolationError as exc:
            if "no partition" not in str(exc) or not tries_left:
                raise
        await _create_partitions(conn, days)


async def _create_partitions(conn: asyncpg.Connection, days: list[date]) -> None:
    """Each day's partitions; losing a race to another creator is as good as winning it."""
    for day in days:
        with contextlib.suppress(asyncpg.DuplicateTableError, asyncpg.UniqueViolationError):
            async with conn.transaction():
                await conn.execute("SELECT hookstream_ensure_partitions($1, $1)", day)


async def _write(conn: asyncpg.Connection, outcomes: list[Outcome]) -> None:
    bodies = {(o.tenant_id, o.event.id, o.triggered_at): o.event for o in outcomes}
    await conn.executemany(
        "INSERT INTO event_bodies (tenant_id, event_id, triggered_at, body)"
        " VALUES ($1, $2, $3, $4::text::json) ON CONFLICT DO NOTHING",
        [(t, e, at, event.legacy_json.decode()) for (t, e, at), event in bodies.items()],
    )
    await conn.executemany(
        _DELIVERY_UPSERT,
        [
            (
                o.delivery_id,
                o.tenant_id,
                o.webhook_id,
                o.event.id,
                o.event.type,
                o.status,
                o.status_message,
                o.triggered_at,
                o.cloud_event,
                o.request,
                o.attempt.as_history(),
                o.attempt_number,
                o.next_attempt_at,
            )
            for o in outcomes
        ],
    )
    await conn.executemany(
        _ATTEMPT_UPSERT,
        [
            (
                o.delivery_id,
                o.attempt_number,
                o.triggered_at,
                o.tenant_id,
                o.webhook_id,
                o.attempt.started_at,
                o.attempt.duration_ms,
                o.attempt.status_code,
                o.attempt.error_class,
                o.attempt.error,
                o.attempt.body_truncated,
            )
            for o in outcomes
        ],
    )


def delivery_body(body: Any, cloud_event: bool) -> Any:
    """The `request.body` of a stored delivery: the event in the shape the webhook received."""
    if body is None:
        return None
    return orjson.loads(Event.from_legacy(body).render(cloud_event)) if cloud_event else body
