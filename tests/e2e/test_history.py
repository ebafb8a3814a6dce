"""Partitioned history, the janitor, retention and recovery, on the real servers."""

import asyncio
import os
import secrets
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from hookstream_common.db import ensure_partitions, migrate
from hookstream_common.sdk import EventPublisher, sample_event
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from support import bearer, new_tenant, receiver_url, wait_routed, wait_until

V1 = "/api/v1/webhooks"
CREATED = "com.qlik.v1.app.created"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    await migrate(database_url)
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()


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
    await ensure_partitions(db, 3, today=date(2026, 12, 30))
    for parent in ("deliveries", "delivery_attempts", "event_bodies"):
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


async def insert_delivery(
    db: asyncpg.Connection, tenant: str, webhook_id: str, triggered_at: datetime, status: str
) -> str:
    delivery_id, event_id = str(uuid.uuid4()), str(uuid.uuid4())
    event = sample_event(CREATED, tenant)
    event["eventId"] = event_id
    await db.execute(
        "INSERT INTO event_bodies VALUES ($1, $2, $3, $4::text::jsonb)",
        tenant,
        event_id,
        triggered_at,
        orjson.dumps(event).decode(),
    )
    await db.execute(
        "INSERT INTO deliveries (id, tenant_id, webhook_id, event_id, event_type, status,"
        " triggered_at, request) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb)",
        uuid.UUID(delivery_id),
        tenant,
        uuid.UUID(webhook_id),
        event_id,
        CREATED,
        status,
        triggered_at,
        '{"url": "https://x.example.com", "headers": {}}',
    )
    return delivery_id


async def test_api_never_shows_deliveries_past_retention(
    api: httpx.AsyncClient, token: Any, db: asyncpg.Connection
) -> None:
    tenant = new_tenant()
    auth = bearer(token(tenant, "u1"))
    body = {"name": "old", "url": "https://x.example.com/h", "eventTypes": [CREATED]}
    webhook = (await api.post(V1, json=body, headers=auth)).json()
    now = datetime.now(UTC)
    await ensure_partitions(db, 2, today=(now - timedelta(days=8)).date())
    inside = await insert_delivery(
        db, tenant, webhook["id"], now - timedelta(days=7) + timedelta(minutes=2), "fail"
    )
    outside = await insert_delivery(
        db, tenant, webhook["id"], now - timedelta(days=7) - timedelta(minutes=2), "fail"
    )
    listed = (await api.get(f"{V1}/{webhook['id']}/deliveries", headers=auth)).json()["data"]
    assert [d["id"] for d in listed] == [inside]
    assert listed[0]["request"]["body"]["eventType"] == CREATED
    gone = await api.get(f"{V1}/{webhook['id']}/deliveries/{outside}", headers=auth)
    assert gone.status_code == 404


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
    for parent in ("deliveries", "delivery_attempts", "event_bodies"):
        names = await partitions(db, parent)
        assert f"{parent}_p{old_day}" not in names
        assert f"{parent}_p{kept_day}" in names
        ahead = (today + timedelta(days=3)).strftime("%Y%m%d")
        assert f"{parent}_p{ahead}" in names


async def test_janitor_deletes_topics_of_deleted_webhooks_only(
    api: httpx.AsyncClient,
    token: Any,
    stack: ServiceSet,
    settings_env: dict[str, str],
    servers: dict[str, str],
    db: asyncpg.Connection,
) -> None:
    tenant = new_tenant()
    auth = bearer(token(tenant, "u1"))
    body = {"name": "t", "url": "https://x.example.com/h", "eventTypes": [CREATED]}
    doomed = (await api.post(V1, json=body, headers=auth)).json()
    kept = (await api.post(V1, json=body, headers=auth)).json()
    await wait_routed(stack, tenant, {doomed["id"], kept["id"]})
    assert (await api.delete(f"{V1}/{doomed['id']}", headers=auth)).status_code == 204
    prefix = settings_env["HOOKSTREAM_TOPIC_PREFIX"]
    admin = AIOKafkaAdminClient(bootstrap_servers=servers["kafka"])
    await admin.start()
    try:
        before = set(await admin.list_topics())
        assert f"{prefix}.deliveries.{doomed['id']}" in before
        code, output = await run_janitor(settings_env)
        assert code == 0, output

        async def deleted() -> bool:
            return f"{prefix}.deliveries.{doomed['id']}" not in set(await admin.list_topics())

        await wait_until(deleted, timeout=15)
        assert f"{prefix}.deliveries.{kept['id']}" in set(await admin.list_topics())
    finally:
        await admin.close()
    remaining = await db.fetchval(
        "SELECT count(*) FROM deleted_webhooks WHERE webhook_id = $1", uuid.UUID(doomed["id"])
    )
    assert remaining == 0


async def test_recover_requeues_exactly_the_failed_deliveries_of_the_window(
    api: httpx.AsyncClient,
    token: Any,
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
) -> None:
    tenant = new_tenant()
    auth = bearer(token(tenant, "u1"))
    path = f"/hooks/recover-{uuid.uuid4().hex}"
    receiver.respond(path, status=400)  # fails for good at once: no retries
    body = {"name": "r", "url": receiver_url(receiver, path), "eventTypes": [CREATED]}
    webhook = (await api.post(V1, json=body, headers=auth)).json()
    await wait_routed(stack, tenant, {webhook["id"]})
    base = f"{V1}/{webhook['id']}/deliveries"

    async def count(status: str) -> int:
        listed = await api.get(base, params={"status": status, "limit": 100}, headers=auth)
        return len(listed.json()["data"])

    early = sample_event(CREATED, tenant, "u1")
    await publisher.publish(early)
    await wait_until(lambda: _at_least(count("fail"), 1), timeout=30)
    window_start = datetime.now(UTC)
    late = [sample_event(CREATED, tenant, "u1") for _ in range(3)]
    for event in late:
        await publisher.publish(event)
    await wait_until(lambda: _at_least(count("fail"), 4), timeout=30)
    failed = (
        await api.get(
            base, params={"status": "fail", "since": window_start.isoformat()}, headers=auth
        )
    ).json()["data"]
    assert len(failed) == 3

    receiver.respond(path, status=200)
    before = len(receiver.received(path))
    response = await api.post(
        f"{V1}/{webhook['id']}/actions/recover",
        json={"since": window_start.isoformat()},
        headers=auth,
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"count": 3}
    resent = (await receiver.wait_for(before + 3, timeout=30, path=path))[before:]
    await asyncio.sleep(1.5)
    assert len(receiver.received(path)) == before + 3
    assert {orjson.loads(r.body)["eventId"] for r in resent} == {e["eventId"] for e in late}
    await wait_until(lambda: _at_least(count("success"), 3), timeout=15)
    assert await count("fail") == 1
    bad = await api.post(
        f"{V1}/{webhook['id']}/actions/recover", json={"since": "yesterday"}, headers=auth
    )
    assert bad.status_code == 400


async def _at_least(value: Any, minimum: int) -> bool:
    return await value >= minimum


async def test_upgrade_from_the_unpartitioned_schema_keeps_rows(servers: dict[str, str]) -> None:
    name = f"hookstream_upgrade_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(servers["database"])
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{servers['database'].rpartition('/')[0]}/{name}"
    try:
        await migrate(dsn, upto="0002_attempts_and_health")
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

        assert await migrate(dsn) == ["0003_partitioned_history"]
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
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
