"""A row Postgres rejects is parked, and the rest of its batch is stored (issue 9, item 1)."""

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from history_rows import insert_webhook, new_event, outcome, own_database

from hookstream_common.db import create_pool
from hookstream_common.kafka import client_options, ensure_topics, producer
from hookstream_common.parking import PARKED
from hookstream_dispatcher.writer import HistoryWriter


async def test_a_rejected_row_is_parked_and_its_batch_stored(servers: dict[str, str]) -> None:
    topic = f"hst-poison-{uuid.uuid4().hex[:8]}.dispatch.dlq"
    async with own_database(servers["database"]) as dsn:
        db = await asyncpg.connect(dsn)
        pool = await create_pool(dsn)
        admin = AIOKafkaAdminClient(**client_options(servers["kafka"]))
        await admin.start()
        await ensure_topics(admin, [NewTopic(topic, 1, 1)])
        await admin.close()
        kafka = producer(servers["kafka"])
        await kafka.start()
        try:
            webhook_id = await insert_webhook(db, "t-poison")
            now = datetime.now(UTC)
            good = [
                outcome(str(uuid.uuid4()), webhook_id, new_event("t-poison"), now, 1, 200)
                for _ in range(9)
            ]
            bad_event = dataclasses.replace(new_event("t-poison"), id="nul\x00inside")
            bad = outcome(str(uuid.uuid4()), webhook_id, bad_event, now, 1, 200)
            writer = HistoryWriter(pool, timedelta(hours=1), 10, (kafka, topic))
            parked_before = PARKED.labels("history")._value.get()
            running = asyncio.create_task(writer.run())
            futures = [writer.submit(o) for o in [*good[:4], bad, *good[4:]]]
            await asyncio.wait_for(asyncio.gather(*futures), 30)
            running.cancel()

            stored = {str(r["id"]) for r in await db.fetch("SELECT id FROM deliveries")}
            assert stored == {o.delivery_id for o in good}
            assert PARKED.labels("history")._value.get() == parked_before + 1
            consumer = AIOKafkaConsumer(
                topic, **client_options(servers["kafka"]), auto_offset_reset="earliest"
            )
            await consumer.start()
            try:
                record = await asyncio.wait_for(consumer.getone(), 15)
            finally:
                await consumer.stop()
            parked = orjson.loads(record.value)
            assert parked["deliveryId"] == bad.delivery_id
            headers = {name: value.decode() for name, value in record.headers}
            assert headers["hookstream-stage"] == "history"
            assert headers["hookstream-source"] == f"history/{bad.delivery_id}/1"
            reason = headers["hookstream-dlq-reason"]
            assert "CharacterNotInRepertoire" in reason or "0x00" in reason
        finally:
            await kafka.stop()
            await pool.close()
            await db.close()
