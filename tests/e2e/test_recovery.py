"""Recover: stored, paged, resumable, shared by replicas, never sent twice; on the real servers."""

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from history_rows import CREATED, insert_delivery, insert_webhook, outcome, own_database

from hookstream_api.recoveries import RecoveryWorker, create_recovery
from hookstream_client import AsyncClient, Delivery, Recovery, Webhook
from hookstream_common import audit
from hookstream_common.db import create_pool
from hookstream_common.events import Event
from hookstream_common.history import record_outcomes
from hookstream_common.kafka import client_options, producer
from hookstream_common.sdk import EventPublisher
from hookstream_common.shards import shard_of
from hookstream_common.topics import Topics
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from support import bearer, carrying, new_tenant, receiver_url, wait_routed, wait_until

SHARDS = 4

V1 = "/api/v1/webhooks"


async def failed_deliveries(
    client: AsyncClient,
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    tenant: str,
    count: int,
) -> tuple[Webhook, str, list[Delivery]]:
    """A webhook whose receiver answers 400 (no retries), and its `count` failed deliveries."""
    path = f"/hooks/recover-{uuid.uuid4().hex}"
    receiver.respond(path, status=400)
    body = {"name": "r", "url": receiver_url(receiver, path), "eventTypes": [CREATED]}
    webhook = await client.create_webhook(body)
    await wait_routed(stack, tenant, {webhook.id})
    for _ in range(count):
        await publisher.publish(sample_event(CREATED, tenant, "u1"))

    async def failed() -> list[Delivery]:
        rows = (await client.list_deliveries(webhook.id, status="fail")).data
        return rows if len(rows) == count else []

    return webhook, path, await wait_until(failed, timeout=30)


async def finished(client: AsyncClient, webhook_id: str, recovery_id: str) -> Recovery:
    """The recovery, once it has queued everything."""

    async def done() -> Recovery | None:
        recovery = await client.get_recovery(webhook_id, recovery_id)
        return recovery if recovery.state == "done" else None

    return await wait_until(done, timeout=20)


async def test_recover_requeues_exactly_the_failed_deliveries_of_the_window(
    api: httpx.AsyncClient,
    token: Any,
    client_for: Callable[..., AsyncClient],
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
) -> None:
    tenant = new_tenant()
    auth = bearer(token(tenant, "u1"))
    client = client_for(tenant, "u1")
    webhook, path, [early] = await failed_deliveries(client, stack, receiver, publisher, tenant, 1)
    window_start = datetime.now(UTC)
    await asyncio.sleep(0.01)  # events carry their time in milliseconds
    late = [sample_event(CREATED, tenant, "u1") for _ in range(3)]
    for event in late:
        await publisher.publish(event)

    async def failed_count() -> bool:
        return len((await client.list_deliveries(webhook.id, status="fail")).data) == 4

    await wait_until(failed_count, timeout=30)

    receiver.respond(path, status=200)
    before = len(receiver.received(path))
    # The raw request: its 202 and Location are what this test checks.
    response = await api.post(
        f"{V1}/{webhook.id}/actions/recover",
        json={"since": window_start.isoformat()},
        headers=auth,
    )
    assert response.status_code == 202, response.text
    recovery = response.json()
    assert recovery["total"] == 3 and recovery["webhookId"] == webhook.id
    location = response.headers["location"]
    assert location == f"{V1}/{webhook.id}/actions/recover/{recovery['id']}"
    status = await finished(client, webhook.id, recovery["id"])
    assert status.queued == 3 and status.finished_at
    # Published after the recovered jobs were queued, so it is sent after them: once it is in,
    # anything the recovery sent is in.
    marker = sample_event(CREATED, tenant, "u1")
    await publisher.publish(marker)
    await wait_until(lambda: carrying(receiver, path, marker), timeout=30)
    resent = receiver.received(path)[before:]
    assert sorted(orjson.loads(r.body)["eventId"] for r in resent) == sorted(
        e["eventId"] for e in [*late, marker]
    )

    async def succeeded() -> bool:
        # The three recovered and the marker.
        return len((await client.list_deliveries(webhook.id, status="success")).data) == 4

    await wait_until(succeeded, timeout=15)
    still_failed = (await client.list_deliveries(webhook.id, status="fail")).data
    assert [d.id for d in still_failed] == [early.id]

    bad = await api.post(
        f"{V1}/{webhook.id}/actions/recover", json={"since": "yesterday"}, headers=auth
    )
    assert bad.status_code == 400
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    early_bird = await api.post(
        f"{V1}/{webhook.id}/actions/recover", json={"since": future}, headers=auth
    )
    assert early_bird.status_code == 400
    assert (await api.get(f"{location[:-36]}{uuid.uuid4()}", headers=auth)).status_code == 404
    stranger = bearer(token(new_tenant(), "u1", admin=True))
    assert (await api.get(location, headers=stranger)).status_code == 404


async def test_recovering_a_window_twice_sends_once_and_leaves_pending_retries_alone(
    client_for: Callable[..., AsyncClient],
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    db: asyncpg.Connection,
) -> None:
    tenant = new_tenant()
    client = client_for(tenant, "u1")
    since = datetime.now(UTC)
    webhook, path, failed = await failed_deliveries(client, stack, receiver, publisher, tenant, 3)
    retrying = failed[0]
    # What the dispatcher stores when it schedules a retry: the attempt is due in a minute.
    await db.execute(
        "UPDATE deliveries SET next_attempt_at = now() + interval '1 minute' WHERE id = $1",
        uuid.UUID(retrying.id),
    )
    receiver.respond(path, status=200)
    before = len(receiver.received(path))
    first, second = await asyncio.gather(
        client.recover_deliveries(webhook.id, since), client.recover_deliveries(webhook.id, since)
    )
    assert first.total == 2
    statuses = [await finished(client, webhook.id, r.id) for r in (first, second)]
    assert sum(s.queued for s in statuses) == 2

    marker = sample_event(CREATED, tenant, "u1")  # sent after whatever the recoveries queued
    await publisher.publish(marker)
    await wait_until(lambda: carrying(receiver, path, marker), timeout=30)
    resent = [
        r for r in receiver.received(path)[before:] if r not in carrying(receiver, path, marker)
    ]
    assert sorted(r.headers["webhook-id"] for r in resent) == sorted(d.id for d in failed[1:])
    again = await client.recover_deliveries(webhook.id, since)
    assert again.total == 0  # two succeeded, one still has its retry pending


@dataclass
class Bench:
    """A database of its own with five failed deliveries, a real producer, and a topic."""

    db: asyncpg.Connection
    pool: asyncpg.Pool
    kafka: AIOKafkaProducer
    topics: Topics
    webhook_id: str
    failed: list[str]
    since: datetime
    until: datetime
    bootstrap: str

    def worker(self, **options: Any) -> RecoveryWorker:
        return RecoveryWorker(self.pool, self.kafka, self.topics, SHARDS, page_size=2, **options)

    async def recover(self) -> asyncpg.Record:
        webhook = uuid.UUID(self.webhook_id)
        return await create_recovery(
            self.pool, "t", webhook, self.since, self.until, 10, audit.Actor("u1")
        )

    async def run_until_done(self, *workers: RecoveryWorker) -> None:
        for _ in range(30):
            await asyncio.gather(*(worker.step() for worker in workers))
        assert not await self.db.fetchval("SELECT count(*) FROM recoveries WHERE state <> 'done'")

    async def jobs(self, at_least: int) -> list[dict[str, Any]]:
        return await read_all(self.bootstrap, self.topics.deliveries(self.webhook_id), at_least)

    async def woken(self) -> set[tuple[int, bytes]]:
        """The (shard, webhook id) of every wake-up written for the shards' owners."""
        consumer = AIOKafkaConsumer(
            self.topics.dispatch_shards,
            **client_options(self.bootstrap),
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            batch = await consumer.getmany(timeout_ms=2000)
        finally:
            await consumer.stop()
        return {(r.partition, r.key) for records in batch.values() for r in records}


@contextlib.asynccontextmanager
async def bench(servers: dict[str, str]) -> AsyncIterator[Bench]:
    """Five failed deliveries a second apart, one with a retry pending, one delivered."""
    topics = Topics(f"hst-recover-{secrets.token_hex(4)}")
    async with own_database(servers["database"]) as dsn:
        db = await asyncpg.connect(dsn)
        pool = await create_pool(dsn, max_size=4)
        kafka = producer(servers["kafka"])
        admin = AIOKafkaAdminClient(**client_options(servers["kafka"]))
        await kafka.start()
        await admin.start()
        try:
            webhook_id = await insert_webhook(db, "t")
            await admin.create_topics(
                [
                    NewTopic(topics.deliveries(webhook_id), 1, 1),
                    NewTopic(topics.dispatch_shards, SHARDS, 1),
                ]
            )
            at = datetime.now(UTC) - timedelta(hours=1)
            failed = [
                await insert_delivery(db, "t", webhook_id, at + timedelta(seconds=n), "fail")
                for n in range(5)
            ]
            later = at + timedelta(seconds=10)
            await insert_delivery(db, "t", webhook_id, later, "fail", datetime.now(UTC))
            await insert_delivery(db, "t", webhook_id, later, "success")
            yield Bench(
                db, pool, kafka, topics, webhook_id, failed, at, datetime.now(UTC), servers["kafka"]
            )
        finally:
            await kafka.stop()
            await admin.close()
            await pool.close()
            await db.close()


async def test_the_worker_pages_resumes_and_shares_no_work_with_other_replicas(
    servers: dict[str, str],
) -> None:
    async with bench(servers) as b:
        first, second = await b.recover(), await b.recover()
        assert first["total"] == second["total"] == 5

        # No acks in time: the page is rolled back, nothing is marked, the cursor stays.
        marks = "SELECT id, changed_at, next_attempt_at FROM deliveries ORDER BY id"
        before = [tuple(row) for row in await b.db.fetch(marks)]
        with pytest.raises(TimeoutError):
            await b.worker(ack_timeout=0).step()
        assert [tuple(row) for row in await b.db.fetch(marks)] == before

        # One page, by a worker that then goes away: the cursor is in the row.
        assert await b.worker().step()
        row = await b.db.fetchrow("SELECT * FROM recoveries WHERE id = $1", first["id"])
        assert (row["state"], row["queued"], str(row["cursor_id"])) == ("running", 2, b.failed[1])

        # Two replicas finish both recoveries of the same window: each delivery is sent once.
        await b.run_until_done(b.worker(), b.worker())
        queued = await b.db.fetchval("SELECT sum(queued) FROM recoveries")
        assert queued == 5
        jobs = await b.jobs(5)
        assert sorted(job["deliveryId"] for job in jobs) == sorted(b.failed)
        assert {(job["attemptNumber"], job["retryBase"]) for job in jobs} == {(2, 1)}
        # The webhook's shard owner was told (it reads only topics it is told of, or finds).
        assert await b.woken() == {(shard_of(b.webhook_id, SHARDS), b.webhook_id.encode())}


async def test_a_window_is_sent_again_only_when_asked_after_its_attempts_finished(
    servers: dict[str, str],
) -> None:
    async with bench(servers) as b:
        await b.recover()
        await b.run_until_done(b.worker())
        while_in_flight = await b.recover()
        assert while_in_flight["total"] == 0  # all five have an attempt pending

        # The dispatcher stores the recovered attempts: they fail for good.
        events = await b.db.fetch(
            "SELECT d.id, d.triggered_at, b.body FROM deliveries d JOIN event_bodies b"
            " USING (tenant_id, event_id, triggered_at) WHERE d.id = ANY($1::uuid[])",
            b.failed,
        )
        stored = [
            outcome(
                str(e["id"]),
                b.webhook_id,
                Event.from_legacy(orjson.loads(e["body"])),
                e["triggered_at"],
                2,
                400,
            )
            for e in events
        ]
        async with b.pool.acquire() as conn, conn.transaction():
            await record_outcomes(conn, stored)

        # Asked while they were in flight: nothing; asked now: all five once more.
        await b.run_until_done(b.worker())
        status = await b.db.fetchrow(
            "SELECT state, queued FROM recoveries WHERE id = $1", while_in_flight["id"]
        )
        assert (status["state"], status["queued"]) == ("done", 0)
        again = await b.recover()
        assert again["total"] == 5
        await b.run_until_done(b.worker())
        jobs = await b.jobs(10)
        assert len(jobs) == 10
        assert {(job["attemptNumber"], job["retryBase"]) for job in jobs[5:]} == {(3, 2)}


async def read_all(bootstrap: str, topic: str, at_least: int) -> list[dict[str, Any]]:
    """Every record of a topic, once at least `at_least` have arrived, and one second more."""
    consumer = AIOKafkaConsumer(topic, **client_options(bootstrap), auto_offset_reset="earliest")
    await consumer.start()
    records: list[dict[str, Any]] = []
    try:
        deadline = asyncio.get_running_loop().time() + 20
        settle = None
        while asyncio.get_running_loop().time() < (settle or deadline):
            batch = await consumer.getmany(timeout_ms=200)
            records += [orjson.loads(r.value) for rs in batch.values() for r in rs]
            if settle is None and len(records) >= at_least:
                settle = asyncio.get_running_loop().time() + 1
    finally:
        await consumer.stop()
    return records
