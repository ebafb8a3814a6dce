"""Garbage on a webhook's delivery topic, on a retry tier, and outcomes Postgres rejects.

A delivery job or retry that can never be processed is parked on `<prefix>.dispatch.dlq` with
the reason and counted (`hookstream_dead_letters_total{stage="delivery"|"retry"}`); the lane or
tier goes on with the record behind it. A job that is readable but whose outcome Postgres
rejects is sent, then its outcome is parked by the history writer (stage `history`; the dead
letter is a JSON summary with `reason`, keyed by webhook id) and the rest of its batch is
stored. A NUL in the event's data is no longer such a job: the body is stored as sent.
tests/e2e/test_history_poison.py covers the writer alone.
"""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from poison_harness import DEAD_LETTERS, Poison, headers_of, legacy_event

from hookstream_common.events import Event
from hookstream_common.jobs import DeliveryJob, delivery_id_for

RETRY_TIER = "1s"
"""The first tier of the e2e schedule (1s,2s,4s)."""


def job_doc(webhook_id: str, tenant: str, **changes: Any) -> dict[str, Any]:
    """A good job of the webhook as the matcher writes it, with fields replaced (None removes)."""
    event = Event.parse(orjson.dumps(legacy_event(tenant, eventId=str(uuid.uuid4()))))
    doc = orjson.loads(DeliveryJob.for_event(webhook_id, event, datetime.now(UTC)).dumps())
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


GARBAGE: list[tuple[str, Any]] = [
    ("not JSON", b"garbage job"),
    ("empty bytes", b""),
    ("null value", None),
    ("JSON array", b"[]"),
    ("JSON number", b"7"),
    ("empty object", b"{}"),
    ("no event", {"event": None}),
    ("event a string", {"event": "an event"}),
    ("event without tenant", {"event": {"eventId": "x", "eventType": "y", "extensions": {}}}),
    ("event with a time without offset", {"eventTime": "2024-05-01T10:00:00"}),
    ("event with a numeric time", {"eventTime": 5}),
    ("no deliveryId", {"deliveryId": None}),
    ("triggeredAt not a time", {"triggeredAt": "yesterday"}),
    ("triggeredAt a number", {"triggeredAt": 1714557600}),
    ("dueAt not a time", {"dueAt": "soon"}),
    ("dueAt without offset", {"dueAt": "2024-05-01T10:00:00"}),  # retries only
    ("webhookId a number", {"webhookId": 12}),
    ("webhookId not a UUID", {"webhookId": "not-a-uuid"}),
    ("nested 5000 deep", b'{"event":' + b"[" * 5000 + b"]" * 5000 + b"}"),
]

RETRY_ONLY = {"dueAt without offset"}
"""A first attempt never reads `dueAt`: on a delivery topic this job is good."""
JOB_GARBAGE = [g for g in GARBAGE if g[0] not in RETRY_ONLY]


def _value(poison: Poison, garbage: Any) -> bytes | None:
    if garbage is None or isinstance(garbage, bytes):
        return garbage
    if "eventTime" in garbage:
        doc = job_doc(poison.webhook_id, poison.tenant)
        doc["event"]["eventTime"] = garbage["eventTime"]
        return orjson.dumps(doc)
    return orjson.dumps(job_doc(poison.webhook_id, poison.tenant, **garbage))


@pytest.mark.parametrize(("name", "garbage"), JOB_GARBAGE, ids=[g[0] for g in JOB_GARBAGE])
async def test_a_garbage_job_is_parked_and_the_lane_goes_on(
    poison: Poison, name: str, garbage: Any
) -> None:
    async with poison.case("deliveries", name) as case:
        before = await poison.scrape("dispatcher")
        topic = poison.topics.deliveries(poison.webhook_id)
        where = await poison.produce(
            topic, _value(poison, garbage), poison.webhook_id.encode(), partition=0
        )
        # The good event's job lands behind the garbage on the same (single) partition.
        await poison.next_good_event_delivered(case)

        parked, reason = await poison.parked_from(where)
        assert reason, "a dead letter carries its reason"
        assert headers_of(parked)["hookstream-stage"] == b"delivery"
        case.parked = True
        await poison.counted("dispatcher", before, DEAD_LETTERS, stage="delivery")
        case.counted = True
        poison.services_alive()


@pytest.mark.parametrize(("name", "garbage"), GARBAGE, ids=[g[0] for g in GARBAGE])
async def test_a_garbage_retry_is_parked_and_the_tier_goes_on(
    poison: Poison, name: str, garbage: Any
) -> None:
    async with poison.case("retries", name) as case:
        before = await poison.scrape("dispatcher")
        topic = poison.topics.retry(RETRY_TIER)
        key = poison.webhook_id.encode()
        where = await poison.produce(topic, _value(poison, garbage), key)
        # A good retry behind it, on the same partition (same key), due now.
        good = job_doc(poison.webhook_id, poison.tenant, attemptNumber=2)
        good["dueAt"] = datetime.now(UTC).isoformat()
        await poison.produce(topic, orjson.dumps(good), key, partition=where.partition)
        await poison.delivered(good["event"]["eventId"])
        await poison.next_good_event_delivered(case)

        parked, reason = await poison.parked_from(where)
        assert reason
        assert headers_of(parked)["hookstream-stage"] == b"retry"
        case.parked = True
        await poison.counted("dispatcher", before, DEAD_LETTERS, stage="retry")
        case.counted = True
        poison.services_alive()


async def test_a_retry_due_in_a_century_does_not_hold_its_tier(poison: Poison) -> None:
    """Readable, but due long after everything behind it on its partition."""
    async with poison.case("retries", "due in a century") as case:
        topic = poison.topics.retry(RETRY_TIER)
        key = poison.webhook_id.encode()
        late = job_doc(poison.webhook_id, poison.tenant, attemptNumber=2)
        late["dueAt"] = (datetime.now(UTC) + timedelta(days=36500)).isoformat()
        where = await poison.produce(topic, orjson.dumps(late), key)
        good = job_doc(poison.webhook_id, poison.tenant, attemptNumber=2)
        good["dueAt"] = datetime.now(UTC).isoformat()
        await poison.produce(topic, orjson.dumps(good), key, partition=where.partition)
        await poison.delivered(good["event"]["eventId"])
        case.delivered_after = True
        _, reason = await poison.parked_from(where)
        assert "beyond any tier of the schedule" in reason
        case.parked = True


# Readable jobs whose outcome Postgres rejects: each is sent, then its outcome is parked.
UNSTORABLE: list[tuple[str, dict[str, Any]]] = [
    ("NUL in the event type", {"eventType": "com.qlik.v1.app.created\x00"}),
    ("deliveryId not a UUID", {"deliveryId": "not-a-uuid"}),
    ("attempt number beyond int4", {"attemptNumber": 2**40}),
    ("attempt number a string", {"attemptNumber": "second"}),
]


@pytest.mark.parametrize(("name", "change"), UNSTORABLE, ids=[u[0] for u in UNSTORABLE])
async def test_an_outcome_postgres_rejects_is_parked_and_history_goes_on(
    poison: Poison, database_url: str, name: str, change: dict[str, Any]
) -> None:
    async with poison.case("history", name) as case:
        before = await poison.scrape("dispatcher")
        doc = job_doc(poison.webhook_id, poison.tenant)
        for key, value in change.items():
            if key in ("data", "eventType"):
                doc["event"][key] = value
            else:
                doc[key] = value
        marker = doc["deliveryId"]
        topic = poison.topics.deliveries(poison.webhook_id)
        await poison.produce(topic, orjson.dumps(doc), poison.webhook_id.encode(), partition=0)
        good_id = await poison.next_good_event_delivered(case)

        def is_ours(record: Any) -> bool:
            return headers_of(record).get("hookstream-stage") == b"history" and (
                orjson.loads(record.value).get("deliveryId") == marker
            )

        parked = await poison.parked(is_ours)
        assert headers_of(parked)["hookstream-dlq-reason"], "a dead letter carries its reason"
        assert headers_of(parked)["hookstream-source"].startswith(f"history/{marker}/".encode())
        case.parked = True
        await poison.counted("dispatcher", before, DEAD_LETTERS, stage="history")
        case.counted = True
        # The good event's outcome, in a batch after (or with) the rejected one, is stored.
        good_delivery = uuid.UUID(delivery_id_for(poison.webhook_id, good_id))
        db = await asyncpg.connect(database_url)
        try:
            for _ in range(100):
                if await db.fetchval("SELECT 1 FROM deliveries WHERE id = $1", good_delivery):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the good event's outcome was not stored within 5 s")
        finally:
            await db.close()
        poison.services_alive()


async def test_a_nul_in_the_event_data_is_stored_as_it_was_sent(
    poison: Poison, database_url: str
) -> None:
    """`jsonb` refused the `\\u0000` escape, so this outcome used to be parked; the body column
    is `json` now (migration 0007), which keeps the text as sent, NUL escape and all."""
    async with poison.case("history", "NUL in the event's data") as case:
        doc = job_doc(poison.webhook_id, poison.tenant)
        doc["event"]["data"] = {"name": "a\x00b"}
        topic = poison.topics.deliveries(poison.webhook_id)
        await poison.produce(topic, orjson.dumps(doc), poison.webhook_id.encode(), partition=0)
        await poison.next_good_event_delivered(case)
        db = await asyncpg.connect(database_url)
        try:
            for _ in range(100):
                body = await db.fetchval(
                    "SELECT b.body::text FROM deliveries d JOIN event_bodies b"
                    " ON b.tenant_id = d.tenant_id AND b.event_id = d.event_id"
                    " AND b.triggered_at = d.triggered_at WHERE d.id = $1",
                    uuid.UUID(doc["deliveryId"]),
                )
                if body is not None:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the outcome was not stored within 5 s")
        finally:
            await db.close()
        assert orjson.loads(body)["data"] == {"name": "a\x00b"}
        case.other_evidence = True
        poison.services_alive()
