"""The counts behind a webhook's health fields, kept as rollups (decision 13; migration 0008).

Every stored change that moves a count (an attempt stored or stored again, a delivery's next
attempt scheduled, cleared or queued by a recovery) becomes a `Change` at the moment it counts
for: an attempt when it started, a pending retry when it is due. Changes are summed into one
minute row and one hour row per webhook, written in the caller's transaction, so a window is
read as its whole hours plus the minutes before the first of them, whatever the volume.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from hookstream_common.db import write_with_partitions

HORIZON = timedelta(days=2)
"""How far back a count can still be read: the longest window (24 h), with a day to spare.

A change to an older bucket is dropped (it would only undo a count no window reads any more),
so a late write never re-creates a day of counts the janitor dropped."""

SPANS = ("minute", "hour")

_UPSERT_SQL = """
INSERT INTO webhook_health_counts AS c
    (webhook_id, span, bucket, attempts, succeeded, retries_due)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::int[], $5::int[], $6::int[])
ON CONFLICT (webhook_id, span, bucket) DO UPDATE SET
    attempts = c.attempts + EXCLUDED.attempts,
    succeeded = c.succeeded + EXCLUDED.succeeded,
    retries_due = c.retries_due + EXCLUDED.retries_due
"""


@dataclass(frozen=True)
class Counts:
    """Attempts started, of them succeeded, and failed deliveries whose next attempt is due."""

    attempts: int = 0
    succeeded: int = 0
    retries_due: int = 0

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(
            self.attempts + other.attempts,
            self.succeeded + other.succeeded,
            self.retries_due + other.retries_due,
        )

    def __neg__(self) -> "Counts":
        return Counts(-self.attempts, -self.succeeded, -self.retries_due)

    def __bool__(self) -> bool:
        return bool(self.attempts or self.succeeded or self.retries_due)


@dataclass(frozen=True)
class Change:
    """A webhook's counts moved by `counts` at moment `at`."""

    webhook_id: str
    at: datetime
    counts: Counts


Key = tuple[str, str, datetime]
"""(webhook id, span, start of the bucket in UTC)."""


def _succeeded(status_code: int | None) -> bool:
    return status_code is not None and 200 <= status_code < 300


def attempt_changes(rows: Iterable[Mapping[str, Any]]) -> list[Change]:
    """The changes of attempt rows as upserted: `webhook_id`, `started_at` and `status_code`
    as stored now, `old_started_at` and `old_status_code` as they were (None when inserted).
    An attempt stored again (a job sent twice) moves its count rather than adding one."""
    changes = []
    for row in rows:
        webhook_id = str(row["webhook_id"])
        changes.append(Change(webhook_id, row["started_at"], _attempt(row["status_code"])))
        if row["old_started_at"] is not None:
            undone = -_attempt(row["old_status_code"])
            changes.append(Change(webhook_id, row["old_started_at"], undone))
    return changes


def _attempt(status_code: int | None) -> Counts:
    return Counts(attempts=1, succeeded=int(_succeeded(status_code)))


def due_changes(rows: Iterable[Mapping[str, Any]]) -> list[Change]:
    """The changes of delivery rows as written: `webhook_id`, `status` and `next_attempt_at` as
    stored now, `old_status` and `old_next_attempt_at` as they were (None when inserted). A
    failed delivery counts as a pending retry at the moment its next attempt is due."""
    changes = []
    for row in rows:
        webhook_id = str(row["webhook_id"])
        if row["status"] == "fail" and row["next_attempt_at"] is not None:
            changes.append(Change(webhook_id, row["next_attempt_at"], Counts(retries_due=1)))
        if row["old_status"] == "fail" and row["old_next_attempt_at"] is not None:
            changes.append(Change(webhook_id, row["old_next_attempt_at"], Counts(retries_due=-1)))
    return changes


def bucket_start(at: datetime, span: str) -> datetime:
    """The start (UTC) of the minute or hour holding `at`."""
    at = at.astimezone(UTC)
    if span == "minute":
        return at.replace(second=0, microsecond=0)
    return at.replace(minute=0, second=0, microsecond=0)


def buckets(changes: Iterable[Change], now: datetime) -> dict[Key, Counts]:
    """The changes summed per webhook, span and bucket, in key order (rows are locked in one
    order by every writer, so two never deadlock); changes older than `HORIZON` and sums of
    zero are left out."""
    sums: dict[Key, Counts] = {}
    oldest = now - HORIZON
    for change in changes:
        if change.at < oldest:
            continue
        for span in SPANS:
            key = (change.webhook_id, span, bucket_start(change.at, span))
            sums[key] = sums.get(key, Counts()) + change.counts
    return {key: sums[key] for key in sorted(sums) if sums[key]}


async def add_counts(conn: asyncpg.Connection, changes: Iterable[Change]) -> None:
    """Add the changes to the rollups in one statement; call inside the transaction that
    stores what they count."""
    rows = buckets(changes, datetime.now(UTC))
    if not rows:
        return
    keys, counts = list(rows), list(rows.values())
    await write_with_partitions(
        conn,
        lambda: conn.execute(
            _UPSERT_SQL,
            [webhook_id for webhook_id, _, _ in keys],
            [span for _, span, _ in keys],
            [bucket for _, _, bucket in keys],
            [c.attempts for c in counts],
            [c.succeeded for c in counts],
            [c.retries_due for c in counts],
        ),
        sorted({bucket.date() for _, _, bucket in keys}),
    )
