"""The outbox gauges come from one API replica: the one holding the gauge lock, which another
replica takes over when the holder's connection ends. Real Postgres, a database of its own (the
session's API would hold the lock on the session's)."""

import asyncio
import uuid

import asyncpg
from history_rows import own_database
from prometheus_client import CollectorRegistry, generate_latest

from hookstream_api.metrics import OutboxGauges, watch_outbox
from support import wait_until

INTERVAL = 0.1


def test_a_replica_without_a_reading_exports_no_outbox_series() -> None:
    gauges, registry = OutboxGauges(), CollectorRegistry()
    registry.register(gauges)
    assert b"hookstream_outbox" not in generate_latest(registry)
    gauges.reading = (3, 12.5)
    exported = generate_latest(registry).decode()
    assert "hookstream_outbox_backlog 3.0" in exported
    assert "hookstream_outbox_oldest_age_seconds 12.5" in exported


async def test_one_replica_reports_the_backlog_and_another_takes_over(
    servers: dict[str, str],
) -> None:
    async with own_database(servers["database"]) as dsn:
        db = await asyncpg.connect(dsn)
        gauges = [OutboxGauges(), OutboxGauges()]
        watchers = [asyncio.create_task(watch_outbox(dsn, INTERVAL, g)) for g in gauges]
        try:
            await wait_until(lambda: any(g.reading for g in gauges))
            holder = next(i for i, g in enumerate(gauges) if g.reading)
            other = 1 - holder
            await db.execute(
                "INSERT INTO outbox (tenant_id, webhook_id, kind) VALUES ('t', $1, 'updated')",
                uuid.uuid4(),
            )
            # The holder reads again (the other has tried for the lock meanwhile): still one.
            await wait_until(lambda: gauges[holder].reading[0] == 1)
            assert gauges[other].reading is None

            watchers[holder].cancel()
            await asyncio.gather(watchers[holder], return_exceptions=True)
            assert gauges[holder].reading is None
            await wait_until(lambda: gauges[other].reading and gauges[other].reading[0] == 1)
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            await db.close()
