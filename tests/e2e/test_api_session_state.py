"""The API's pool skips asyncpg's reset query on release (`open_pool`), so nothing the API runs may
leave session state on a pooled connection: the outbox relay LISTENs, and the outbox gauge holds
its session advisory lock, on connections of their own. Both carry on when every backend is
terminated, as after a Postgres restart. Real Postgres (a database of the test's own) and Kafka.
"""

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from history_rows import own_database

from hookstream_api.main import open_pool
from hookstream_api.metrics import _GAUGE_LOCK, OutboxGauges, watch_outbox
from hookstream_api.relay import OutboxRelay
from hookstream_common.kafka import client_options, core_topics, ensure_topics, producer
from hookstream_common.settings import CommonSettings
from hookstream_common.webhook_store import record_change
from hookstream_dev.stack import delete_topics_under
from support import wait_until

GAUGE_INTERVAL = 0.1
RELAY_INTERVAL = 3600.0
"""The relay's poll, far beyond the test: what it publishes, a notification woke it for."""
_SESSION_STATE = """
    SELECT array(SELECT pg_listening_channels()) AS channels,
        (SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory')
        AS advisory_locks
"""


async def _listeners(db: asyncpg.Connection) -> set[int]:
    """The backends of the database that LISTEN (asyncpg's last statement there), done."""
    rows = await db.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND query LIKE 'LISTEN %' AND state = 'idle'"
    )
    return {row["pid"] for row in rows}


async def _gauge_holder(db: asyncpg.Connection) -> int | None:
    """The backend holding the outbox gauge's session lock."""
    return await db.fetchval(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND classid::bigint = ($1::bigint >> 32) & 4294967295"
        " AND objid::bigint = $1::bigint & 4294967295",
        _GAUGE_LOCK,
    )


@pytest.fixture
async def settings(servers: dict[str, str]) -> AsyncIterator[CommonSettings]:
    """A database and topics of the test's own, with the topics the relay publishes to."""
    async with own_database(servers["database"]) as dsn:
        settings = CommonSettings(
            database_url=dsn,
            kafka_bootstrap_servers=servers["kafka"],
            topic_prefix=f"hst-sessions-{secrets.token_hex(4)}",
        )
        admin = AIOKafkaAdminClient(**client_options(servers["kafka"]))
        await admin.start()
        try:
            await ensure_topics(admin, core_topics(settings))
        finally:
            await admin.close()
        try:
            yield settings
        finally:
            await delete_topics_under(servers["kafka"], settings.topic_prefix)


async def _pooled_sessions(pool: asyncpg.Pool) -> list[tuple[list[str], int]]:
    """The LISTEN channels and advisory locks of every idle connection of the pool."""
    taken = [await pool.acquire() for _ in range(pool.get_idle_size())]
    try:
        return [tuple(await conn.fetchrow(_SESSION_STATE)) for conn in taken]
    finally:
        for conn in taken:
            await pool.release(conn)


async def _published(db: asyncpg.Connection, tenant: str) -> bool:
    """The tenant's webhook set was relayed to Kafka (its outbox row is marked published)."""
    return await db.fetchval(
        "SELECT published_at IS NOT NULL FROM outbox WHERE tenant_id = $1", tenant
    )


async def _change(db: asyncpg.Connection, tenant: str) -> None:
    """An outbox row and its notification, written as the API's webhook writes do."""
    async with db.transaction():
        await record_change(db, tenant, uuid.uuid4(), "updated")


async def test_the_relay_and_the_gauge_leave_no_session_state_in_the_pool(
    settings: CommonSettings,
) -> None:
    dsn = settings.database_url
    db = await asyncpg.connect(dsn)
    pool = await open_pool(dsn)
    kafka = producer(settings.kafka_bootstrap_servers)
    admin = AIOKafkaAdminClient(**client_options(settings.kafka_bootstrap_servers))
    await kafka.start()
    await admin.start()
    gauges = OutboxGauges()
    relay = OutboxRelay(pool, kafka, admin, settings, RELAY_INTERVAL)
    tasks = [
        asyncio.create_task(relay.run()),
        asyncio.create_task(watch_outbox(dsn, GAUGE_INTERVAL, gauges)),
    ]
    try:
        listener = (await wait_until(lambda: _listeners(db))).pop()
        await _change(db, "before")
        await wait_until(lambda: _published(db, "before"))
        await wait_until(lambda: gauges.reading == (0, 0.0))
        holder = await _gauge_holder(db)
        assert holder not in {listener, None}
        sessions = await _pooled_sessions(pool)
        assert sessions and sessions == [([], 0)] * len(sessions)

        # Every backend but this test's ends, as in a Postgres restart.
        await db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )

        async def gauge_moved() -> bool:
            return await _gauge_holder(db) not in {holder, None}

        async def listening_again() -> bool:
            return bool(await _listeners(db) - {listener})

        await wait_until(gauge_moved)
        await wait_until(lambda: gauges.reading == (0, 0.0))
        await wait_until(listening_again)
        await _change(db, "after")
        await wait_until(lambda: _published(db, "after"))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await kafka.stop()
        await admin.close()
    try:
        # What went back to the pool holds no LISTEN and no lock, the relay's and the gauge's
        # connections ended with their tasks, and the gauge's lock with them.
        sessions = await _pooled_sessions(pool)
        assert sessions and sessions == [([], 0)] * len(sessions)

        async def all_ended() -> bool:
            return not await _listeners(db) and await _gauge_holder(db) is None

        await wait_until(all_ended)
    finally:
        await pool.close()
        await db.close()
