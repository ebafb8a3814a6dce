"""The janitor's chores: history partitions, topics of deleted webhooks, the outbox, the audit
trail.

Retention costs the same whatever a day held: a day's partition is dropped whole once all of it
is past the retention, unless work on it is still in flight (an attempt pending, a recovery
running), which keeps it until a later pass. The API hides rows past the retention itself, so
a late janitor only costs disk, never shows stale history.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from hookstream_common.db import HISTORY_TABLES, ensure_partitions
from hookstream_common.history import PENDING_ATTEMPT_SQL
from hookstream_common.kafka import delete_topics
from hookstream_common.kafka_failover import with_failover
from hookstream_common.topics import Topics

log = structlog.get_logger(__name__)

_PARTITION_NAME = re.compile(r"^(?P<parent>[a-z_]+)_p(?P<day>\d{8})$")
_LOCK_TIMEOUT = "5s"
_IN_FLIGHT_SQL = f"""
SELECT EXISTS (
    SELECT 1 FROM deliveries
    WHERE triggered_at >= $1 AND triggered_at < $2 AND {PENDING_ATTEMPT_SQL}
) OR EXISTS (
    SELECT 1 FROM recoveries WHERE state = 'running' AND since < $2 AND until > $1
)
"""


def partition_day(name: str) -> date | None:
    """The UTC day a partition like `deliveries_p20261128` holds, or None for other tables."""
    match = _PARTITION_NAME.match(name)
    if match is None or match["parent"] not in HISTORY_TABLES:
        return None
    return datetime.strptime(match["day"], "%Y%m%d").date()


def expired(days: list[date], now: datetime, retention: timedelta) -> list[date]:
    """The days whose every moment is older than `now - retention`: safe to drop whole."""
    cutoff = now - retention
    return sorted(d for d in days if datetime.combine(d + timedelta(days=1), time(), UTC) <= cutoff)


@dataclass
class PassReport:
    """What one pass did, for logs and metrics."""

    partitions_created: int = 0
    partitions_dropped: list[str] = field(default_factory=list)
    days_kept: list[date] = field(default_factory=list)
    topics_deleted: list[str] = field(default_factory=list)
    outbox_trimmed: int = 0
    recoveries_purged: int = 0
    rate_buckets_purged: int = 0
    certificates_noticed: int = 0
    certificates_expiring: int = 0
    audit_events_pruned: int = 0


async def history_partitions(conn: asyncpg.Connection) -> list[str]:
    """The names of every partition of the history tables."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ANY($1::text[])",
        list(HISTORY_TABLES),
    )
    return [row["relname"] for row in rows]


async def rotate_partitions(
    conn: asyncpg.Connection, now: datetime, retention: timedelta, ahead: int, report: PassReport
) -> None:
    """Create the partitions of the coming days, drop each day wholly past the retention."""
    report.partitions_created = await ensure_partitions(conn, ahead, today=now.date())
    by_day: dict[date, list[str]] = {}
    for name in await history_partitions(conn):
        day = partition_day(name)
        if day is not None:
            by_day.setdefault(day, []).append(name)
    for day in expired(list(by_day), now, retention):
        names = sorted(by_day[day])
        if await drop_day(conn, day, names):
            report.partitions_dropped.extend(names)
        else:
            report.days_kept.append(day)


async def drop_day(conn: asyncpg.Connection, day: date, names: list[str]) -> bool:
    """Drop a day's partitions, unless an attempt of it is pending or a recovery covers it.

    The history tables are locked before the check, so nothing is written to the day between
    the check and the drop (dropping a partition locks its parent anyway). A lock not granted
    within `_LOCK_TIMEOUT` (a long transaction on the history) keeps the day for the next pass.
    """
    start = datetime.combine(day, time(), UTC)
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'")
            await conn.execute(f"LOCK TABLE {', '.join(HISTORY_TABLES)} IN ACCESS EXCLUSIVE MODE")
            if await conn.fetchval(_IN_FLIGHT_SQL, start, start + timedelta(days=1)):
                log.info("day kept: work on it is in flight", day=day.isoformat())
                return False
            for name in names:
                await conn.execute(f'DROP TABLE IF EXISTS "{name}"')
    except (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError) as exc:
        log.info("day kept: its tables are busy", day=day.isoformat(), error=str(exc))
        return False
    return True


async def delete_drained_topics(
    conn: asyncpg.Connection,
    admin: AIOKafkaAdminClient,
    connection: dict[str, object],
    topics: Topics,
    group: str,
    report: PassReport,
) -> None:
    """Delete the delivery topics of deleted webhooks once the dispatchers have read them all
    (`connection`: `hookstream_common.kafka.client_options`, for the offset probe)."""
    rows = await conn.fetch("SELECT webhook_id FROM deleted_webhooks ORDER BY deleted_at")
    if not rows:
        return
    existing = set(await admin.list_topics())
    committed = await admin.list_consumer_group_offsets(group)
    probe = with_failover(AIOKafkaConsumer(**connection))
    await probe.start()
    try:
        for row in rows:
            topic = topics.deliveries(str(row["webhook_id"]))
            if topic in existing:
                partition = TopicPartition(topic, 0)
                end = (await probe.end_offsets([partition]))[partition]
                done = committed[partition].offset if partition in committed else 0
                if done < end:
                    log.info("topic not drained yet", topic=topic, behind=end - done)
                    continue
                try:
                    await delete_topics(admin, [topic])
                except KafkaError as exc:
                    log.warning("deleting a topic failed; will retry", topic=topic, error=str(exc))
                    continue
                report.topics_deleted.append(topic)
            await conn.execute(
                "DELETE FROM deleted_webhooks WHERE webhook_id = $1", row["webhook_id"]
            )
    finally:
        await probe.stop()


async def trim_outbox(conn: asyncpg.Connection, now: datetime, report: PassReport) -> None:
    """Published outbox rows are only history; keep a day of them for debugging."""
    status = await conn.execute(
        "DELETE FROM outbox WHERE published_at < $1", now - timedelta(days=1)
    )
    report.outbox_trimmed = int(status.split()[-1])


async def purge_records(
    conn: asyncpg.Connection, now: datetime, retention: timedelta, report: PassReport
) -> None:
    """Recoveries that finished before the retention (their deliveries are gone with it), and
    rate buckets that are full again (a full bucket acts as no bucket): nothing stored grows
    without end."""
    status = await conn.execute("DELETE FROM recoveries WHERE finished_at < $1", now - retention)
    report.recoveries_purged = int(status.split()[-1])
    status = await conn.execute("DELETE FROM rate_buckets WHERE tat < $1", now)
    report.rate_buckets_purged = int(status.split()[-1])


AUDIT_BATCH = 5000
"""Audit rows deleted per statement: each commits on its own, so no lock is held for long."""


async def prune_audit(
    conn: asyncpg.Connection,
    now: datetime,
    retention: timedelta,
    report: PassReport,
    batch: int = AUDIT_BATCH,
) -> None:
    """Delete the audit rows older than `retention`, a batch per statement, oldest first.

    Batched deletes over the index on `created_at`, not the history's partition drops: audit
    rows come from management actions, which the write and action rate limits bound, not from
    deliveries, so a pass deletes little, and an unpartitioned table needs no partition made
    ahead for the API's writes (a missing one would fail a webhook change with its audit row,
    and a default partition would defeat the drops) nor any partition key in its lookups.
    """
    cutoff = now - retention
    while True:
        status = await conn.execute(
            "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events"
            " WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
            cutoff,
            batch,
        )
        deleted = int(status.split()[-1])
        report.audit_events_pruned += deleted
        if deleted < batch:
            return
