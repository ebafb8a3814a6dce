"""Partitioned history, monotonic outcomes, the janitor and retention, on the real servers."""

import asyncio
import os
import secrets
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta

import asyncpg
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from history_rows import insert_delivery, insert_webhook, new_event, outcome, own_database

from hookstream_client import ApiError, AsyncClient
from hookstream_common.db import HISTORY_TABLES, create_pool, ensure_partitions, migrate
from hookstream_common.history import Outcome, record_outcomes
from hookstream_common.kafka import client_options
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from hookstream_janitor.housekeeping import PassReport, partition_day, rotate_partitions
from support import fresh_database, new_tenant, receiver_url, wait_routed, wait_until

CREATED = "com.qlik.v1.app.created"


async def run_janitor(settings_env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hookstream_janitor.main",
        "--once",
        env={**os.environ, **settings_env, "HOOKSTREAM_LOG_FORMAT": "json"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def partitions(db: asyncpg.Connection, parent: str) -> list[str]:
    rows = await db.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1 ORDER BY 1",
        parent,
    )
    return [row["relname"] for row in rows]


async def test_partitions_across_month_and_year_boundaries(db: asyncpg.Connection) -> None:
    partitioned = await db.fetch(
        "SELECT c.relname FROM pg_partitioned_table t JOIN pg_class c ON c.oid = t.partrelid"
    )
    assert {row["relname"] for row in partitioned} == set(HISTORY_TABLES)
    await ensure_partitions(db, 3, today=date(2026, 12, 30))
    for parent in HISTORY_TABLES:
        names = await partitions(db, parent)
        for day in ("20261230", "20261231", "20270101", "20270102"):
            assert f"{parent}_p{day}" in names
    await ensure_partitions(db, 1, today=date(2027, 2, 28))
    assert "deliveries_p20270301" in await partitions(db, "deliveries")
    table = await db.fetchval(
        "INSERT INTO event_bodies VALUES ('t', $1, '2027-01-01T00:00:00Z', '{}')"
        " RETURNING tableoid::regclass::text",
        uuid.uuid4().hex,
    )
    assert table == "event_bodies_p20270101"
    table = await db.fetchval(
        "INSERT INTO event_bodies VALUES ('t', $1, '2026-12-31T23:59:59.999999Z', '{}')"
        " RETURNING tableoid::regclass::text",
        uuid.uuid4().hex,
    )
    assert table == "event_bodies_p20261231"


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12"])
async def test_migrations_make_utc_days_in_any_server_time_zone(
    servers: dict[str, str], zone: str
) -> None:
    # UTC+14 and UTC-12: at any hour one of them is on another date than UTC.
    name = f"hookstream_tz_{secrets.token_hex(4)}"
    first = datetime.now(UTC).date()
    async with fresh_database(servers["database"], name) as dsn:
        db = await asyncpg.connect(dsn)
        try:
            await db.execute(f"ALTER DATABASE \"{name}\" SET timezone = '{zone}'")
            await migrate(dsn, upto="0003_partitioned_history")
            days = sorted(filter(None, map(partition_day, await partitions(db, "deliveries"))))
        finally:
            await db.close()
    last = datetime.now(UTC).date()
    assert days[0] in {first, last}
    assert days == [days[0] + timedelta(days=n) for n in range(4)]


async def test_api_never_shows_deliveries_past_retention(
    client_for: Callable[..., AsyncClient], db: asyncpg.Connection
) -> None:
    tenant = new_tenant()
    client = client_for(tenant, "u1")
    body = {"name": "old", "url": "https://x.example.com/h", "eventTypes": [CREATED]}
    webhook = await client.create_webhook(body)
    now = datetime.now(UTC)
    await ensure_partitions(db, 2, today=(now - timedelta(days=8)).date())
    inside = await insert_delivery(
        db, tenant, webhook.id, now - timedelta(days=7) + timedelta(minutes=2), "fail"
    )
    outside = await insert_delivery(
        db, tenant, webhook.id, now - timedelta(days=7) - timedelta(minutes=2), "fail"
    )
    listed = (await client.list_deliveries(webhook.id)).data
    assert [d.id for d in listed] == [inside]
    assert listed[0].request.body["eventType"] == CREATED
    with pytest.raises(ApiError) as gone:
        await client.get_delivery(webhook.id, outside)
    assert gone.value.status == 404


async def test_janitor_drops_whole_days_past_retention_and_two_can_run_at_once(
    settings_env: dict[str, str], db: asyncpg.Connection
) -> None:
    today = datetime.now(UTC).date()
    await ensure_partitions(db, 2, today=today - timedelta(days=10))
    old_day = (today - timedelta(days=10)).strftime("%Y%m%d")
    kept_day = (today - timedelta(days=6)).strftime("%Y%m%d")
    await ensure_partitions(db, 0, today=today - timedelta(days=6))
    await insert_delivery(
        db, "t", str(uuid.uuid4()), datetime.now(UTC) - timedelta(days=10), "fail"
    )

    (code_a, out_a), (code_b, out_b) = await asyncio.gather(
        run_janitor(settings_env), run_janitor(settings_env)
    )
    assert code_a == code_b == 0, out_a + out_b
    assert "Traceback" not in out_a + out_b
    for parent in HISTORY_TABLES:
        names = await partitions(db, parent)
        assert f"{parent}_p{old_day}" not in names
        assert f"{parent}_p{kept_day}" in names
        ahead = (today + timedelta(days=3)).strftime("%Y%m%d")
        assert f"{parent}_p{ahead}" in names


async def test_janitor_deletes_topics_of_deleted_webhooks_only(
    client_for: Callable[..., AsyncClient],
    stack: ServiceSet,
    settings_env: dict[str, str],
    servers: dict[str, str],
    db: asyncpg.Connection,
) -> None:
    tenant = new_tenant()
    client = client_for(tenant, "u1")
    body = {"name": "t", "url": "https://x.example.com/h", "eventTypes": [CREATED]}
    doomed = await client.create_webhook(body)
    kept = await client.create_webhook(body)
    await wait_routed(stack, tenant, {doomed.id, kept.id})
    await client.delete_webhook(doomed.id)
    prefix = settings_env["HOOKSTREAM_TOPIC_PREFIX"]
    admin = AIOKafkaAdminClient(**client_options(servers["kafka"]))
    await admin.start()
    try:
        before = set(await admin.list_topics())
        assert f"{prefix}.deliveries.{doomed.id}" in before
        code, output = await run_janitor(settings_env)
        assert code == 0, output

        async def deleted() -> bool:
            return f"{prefix}.deliveries.{doomed.id}" not in set(await admin.list_topics())

        await wait_until(deleted, timeout=15)
        assert f"{prefix}.deliveries.{kept.id}" in set(await admin.list_topics())
    finally:
        await admin.close()
    remaining = await db.fetchval(
        "SELECT count(*) FROM deleted_webhooks WHERE webhook_id = $1", uuid.UUID(doomed.id)
    )
    assert remaining == 0


async def test_upgrade_from_the_unpartitioned_schema_keeps_rows(servers: dict[str, str]) -> None:
    async with own_database(servers["database"], upto="0002_attempts_and_health") as dsn:
        old = await asyncpg.connect(dsn)
        event = sample_event(CREATED, "t-old")
        delivery_id = uuid.uuid4()
        triggered = datetime.now(UTC) - timedelta(days=2)
        request = {"url": "https://x.example.com", "headers": {"A": "1"}, "body": event}
        await old.execute(
            "INSERT INTO deliveries (id, tenant_id, webhook_id, event_id, event_type, status,"
            " status_message, triggered_at, request, response, attempts)"
            " VALUES ($1, 't-old', $2, $3, $4, 'fail', 'x', $5, $6::text::jsonb, NULL, 2)",
            delivery_id,
            uuid.uuid4(),
            event["eventId"],
            CREATED,
            triggered,
            orjson.dumps(request).decode(),
        )
        await old.execute(
            "INSERT INTO delivery_attempts (delivery_id, attempt, tenant_id, webhook_id,"
            " started_at, duration_ms, status_code) SELECT id, n, tenant_id, webhook_id,"
            " triggered_at, 5, 500 FROM deliveries, generate_series(1, 2) n"
        )
        await old.close()

        assert await migrate(dsn) == [
            "0003_partitioned_history",
            "0004_recoveries_and_pending_attempts",
            "0005_outbox_failures_and_write_rate",
            "0006_rate_limits_rotation_health",
            "0007_event_bodies_as_sent",
            "0008_health_counts",
            "0009_rate_buckets_and_bounded_history",
            "0010_audit_trail",
            "0011_client_certificates",
            "0012_operational_events",
            "0013_delivery_trace_id",
        ]
        new = await asyncpg.connect(dsn)
        row = await new.fetchrow("SELECT *, tableoid::regclass::text AS part FROM deliveries")
        assert row["id"] == delivery_id and row["attempts"] == 2
        assert row["part"] == f"deliveries_p{triggered:%Y%m%d}"
        assert orjson.loads(row["request"]) == {
            "url": "https://x.example.com",
            "headers": {"A": "1"},
        }
        body = await new.fetchval(
            "SELECT body FROM event_bodies WHERE event_id = $1", event["eventId"]
        )
        assert orjson.loads(body) == event
        assert await new.fetchval("SELECT count(*) FROM delivery_attempts") == 2
        await new.close()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """Connections with the services' codecs, for writing outcomes as they do."""
    await migrate(database_url)
    connections = await create_pool(database_url, max_size=2)
    yield connections
    await connections.close()


async def test_an_earlier_attempt_never_overwrites_a_later_one_and_success_is_final(
    pool: asyncpg.Pool,
) -> None:
    webhook_id, delivery_id = str(uuid.uuid4()), str(uuid.uuid4())
    event = new_event(new_tenant())
    at, due = datetime.now(UTC), datetime.now(UTC) + timedelta(seconds=30)

    async def write(*outcomes: Outcome) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await record_outcomes(conn, list(outcomes))

    async def stored() -> asyncpg.Record:
        return await pool.fetchrow(
            "SELECT status, attempts, status_message, next_attempt_at FROM deliveries"
            " WHERE id = $1",
            uuid.UUID(delivery_id),
        )

    await write(outcome(delivery_id, webhook_id, event, at, 2, 503, next_attempt_at=due))
    await write(outcome(delivery_id, webhook_id, event, at, 1, 500, next_attempt_at=due))
    row = await stored()
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("fail", 2, due)
    assert "503" in row["status_message"]

    await write(outcome(delivery_id, webhook_id, event, at, 3, 200))
    row = await stored()
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("success", 3, None)

    # A later attempt (a duplicate chain) and the same attempt delivered again, both failing.
    await write(
        outcome(delivery_id, webhook_id, event, at, 4, 500),
        outcome(delivery_id, webhook_id, event, at, 3, 502),
    )
    row = await stored()
    assert (row["status"], row["attempts"]) == ("success", 3)
    assert "200" in row["status_message"]
    attempts = await pool.fetchval(
        "SELECT count(*) FROM delivery_attempts WHERE delivery_id = $1", uuid.UUID(delivery_id)
    )
    assert attempts == 4


async def test_a_late_write_finds_a_partition_for_its_day(servers: dict[str, str]) -> None:
    day = datetime.now(UTC) - timedelta(days=30)
    async with own_database(servers["database"]) as dsn:
        writers = await create_pool(dsn, min_size=2, max_size=2)
        try:
            assert await writers.fetchval(
                "SELECT to_regclass($1) IS NULL", f"deliveries_p{day:%Y%m%d}"
            )
            webhook_id = str(uuid.uuid4())

            async def write() -> None:
                late = outcome(str(uuid.uuid4()), webhook_id, new_event("t"), day, 2, 500)
                async with writers.acquire() as conn, conn.transaction():
                    await record_outcomes(conn, [late])

            # Two writers find the day missing at once: both create it, or wait for the other.
            await asyncio.gather(write(), write())
            rows = await writers.fetch("SELECT tableoid::regclass::text AS part FROM deliveries")
            assert [r["part"] for r in rows] == [f"deliveries_p{day:%Y%m%d}"] * 2
        finally:
            await writers.close()


async def test_janitor_keeps_a_day_while_work_on_it_is_in_flight(servers: dict[str, str]) -> None:
    now = datetime.now(UTC)
    pending_day, recovering_day, idle_day = (now - timedelta(days=n) for n in (20, 19, 18))
    async with own_database(servers["database"]) as dsn:
        db = await asyncpg.connect(dsn)
        try:
            for day in (pending_day, recovering_day, idle_day):
                await ensure_partitions(db, 0, today=day.date())
            webhook_id = await insert_webhook(db, "t")
            pending = await insert_delivery(db, "t", webhook_id, pending_day, "fail", now)
            # A retry due an hour ago that never stored its outcome is lost, not in flight.
            await insert_delivery(db, "t", webhook_id, idle_day, "fail", now - timedelta(hours=1))
            recovery_id = await db.fetchval(
                "INSERT INTO recoveries (id, tenant_id, webhook_id, since, until, total)"
                " VALUES (gen_random_uuid(), 't', $1, $2, $3, 0) RETURNING id",
                uuid.UUID(webhook_id),
                recovering_day,
                recovering_day + timedelta(minutes=5),
            )

            report = PassReport()
            await rotate_partitions(db, now, timedelta(days=7), 0, report)
            assert report.days_kept == [pending_day.date(), recovering_day.date()]
            assert set(await days_of(db)) == {pending_day.date(), recovering_day.date()}

            await db.execute(
                "UPDATE deliveries SET next_attempt_at = NULL WHERE id = $1", uuid.UUID(pending)
            )
            await db.execute("UPDATE recoveries SET state = 'done' WHERE id = $1", recovery_id)
            # A transaction holding rows of the history keeps the day (lock timeout), no wait.
            busy = await asyncpg.connect(dsn)
            try:
                async with busy.transaction():
                    await busy.execute("SELECT 1 FROM deliveries FOR UPDATE")
                    report = PassReport()
                    await rotate_partitions(db, now, timedelta(days=7), 0, report)
                    assert report.partitions_dropped == []
            finally:
                await busy.close()
            report = PassReport()
            await rotate_partitions(db, now, timedelta(days=7), 0, report)
            assert report.days_kept == [] and await days_of(db) == []
        finally:
            await db.close()


async def days_of(db: asyncpg.Connection) -> list[date]:
    """The days past the 7-day retention that still have a deliveries partition.

    Recent days are left out: a row dated an hour ago, just after midnight, makes yesterday's.
    """
    names = await partitions(db, "deliveries")
    cutoff = datetime.now(UTC).date() - timedelta(days=7)
    return [d for d in map(partition_day, names) if d is not None and d < cutoff]


async def test_a_recovered_delivery_of_a_day_about_to_be_dropped_is_stored(
    client_for: Callable[..., AsyncClient],
    stack: ServiceSet,
    receiver: Receiver,
    db: asyncpg.Connection,
) -> None:
    tenant = new_tenant()
    client = client_for(tenant, "u1")
    path = f"/hooks/last-day-{uuid.uuid4().hex}"
    receiver.respond(path, status=200, delay=2.0)  # the recovered attempt is in flight for 2 s
    body = {"name": "d", "url": receiver_url(receiver, path), "eventTypes": [CREATED]}
    webhook = await client.create_webhook(body)
    triggered = datetime.now(UTC) - timedelta(days=7) + timedelta(minutes=10)
    await ensure_partitions(db, 0, today=triggered.date())
    delivery_id = await insert_delivery(db, tenant, webhook.id, triggered, "fail")
    # The moment the whole of that day is past the retention.
    doomed_at = datetime.combine(triggered.date(), datetime.min.time(), UTC) + timedelta(days=8)

    recovery = await client.recover_deliveries(webhook.id, triggered - timedelta(minutes=1))
    assert recovery.total == 1

    async def queued() -> bool:
        return (await client.get_recovery(webhook.id, recovery.id)).state == "done"

    await wait_until(queued, timeout=15)
    report = PassReport()
    await rotate_partitions(db, doomed_at, timedelta(days=7), 0, report)
    assert triggered.date() in report.days_kept
    assert f"deliveries_p{triggered:%Y%m%d}" not in report.partitions_dropped

    async def delivered() -> bool:
        return (await client.get_delivery(webhook.id, delivery_id)).status == "success"

    await wait_until(delivered, timeout=20)
    part = await db.fetchval(
        "SELECT tableoid::regclass::text FROM deliveries WHERE id = $1", uuid.UUID(delivery_id)
    )
    assert part == f"deliveries_p{triggered:%Y%m%d}"
    report = PassReport()
    await rotate_partitions(db, doomed_at, timedelta(days=7), 0, report)
    assert f"deliveries_p{triggered:%Y%m%d}" in report.partitions_dropped
