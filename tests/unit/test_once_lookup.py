"""One delivery per event (hookstream_dispatcher.once): which jobs are checked, how lookups are
batched, and that a job is skipped only when its delivery is known to have succeeded."""

import asyncio
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka.structs import ConsumerRecord

from hookstream_common.events import Event
from hookstream_common.jobs import DeliveryJob
from hookstream_dev.events import sample_event
from hookstream_dispatcher.once import BatchedLookup, OncePerEvent, delivery_to_check

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
WEBHOOK = "9b2f7c1e-3d4a-4e5f-8a6b-7c8d9e0f1a2b"


def job(number: int = 0) -> DeliveryJob:
    event = Event.parse(orjson.dumps(sample_event("com.qlik.v1.app.created", f"t-{number}")))
    return DeliveryJob.for_event(WEBHOOK, event, NOW)


def record(value: bytes) -> ConsumerRecord:
    return ConsumerRecord("topic", 0, 0, 0, 0, None, value, None, 0, len(value), [])


def test_event_jobs_and_retries_are_checked_recoveries_and_non_jobs_are_not() -> None:
    first = job()
    assert delivery_to_check(first.dumps()) == first.delivery_id
    assert delivery_to_check(DeliveryJob.for_retry(first, NOW).dumps()) == first.delivery_id
    recovery = DeliveryJob.for_recovery(first.delivery_id, WEBHOOK, "t", first.event, NOW, 3)
    assert delivery_to_check(recovery.dumps()) is None
    for raw in (b"not json", b"[]", b'{"deliveryId": 7}', b'{"deliveryId": "d-1"}', b"{}"):
        assert delivery_to_check(raw) is None


class Lookups:
    """A lookup that records each batch it is asked and knows some ids as delivered."""

    def __init__(self, delivered: set[str], fail: Exception | None = None) -> None:
        self.delivered = delivered
        self.fail = fail
        self.batches: list[list[str]] = []

    async def __call__(self, ids: list[str]) -> set[str]:
        self.batches.append(ids)
        await asyncio.sleep(0)
        if self.fail:
            raise self.fail
        return self.delivered & set(ids)


async def test_concurrent_questions_share_one_lookup_and_later_ones_the_next() -> None:
    lookups = Lookups({"a", "c"})
    batched = BatchedLookup(lookups, max_batch=3)
    answers = await asyncio.gather(*(batched.succeeded(i) for i in "abcdb"))
    assert answers == [True, False, True, False, False]
    assert lookups.batches == [["a", "b", "c"], ["d", "b"]]
    assert await batched.succeeded("a") is True
    assert len(lookups.batches) == 3


async def test_a_failed_lookup_fails_its_batch_only() -> None:
    lookups = Lookups(set(), fail=OSError("down"))
    batched = BatchedLookup(lookups)
    with pytest.raises(OSError):
        await batched.succeeded("a")
    lookups.fail = None
    lookups.delivered = {"a"}
    assert await batched.succeeded("a") is True


class Runs:
    def __init__(self) -> None:
        self.records: list[ConsumerRecord] = []

    async def __call__(self, rec: ConsumerRecord) -> None:
        self.records.append(rec)


@pytest.mark.parametrize(
    ("delivered", "fail", "sent"),
    [
        (False, None, True),
        (True, None, False),
        (True, OSError("Postgres down"), True),  # unanswered: sent, at least once
    ],
)
async def test_a_job_is_skipped_only_when_its_delivery_succeeded(
    delivered: bool, fail: Exception | None, sent: bool
) -> None:
    one = job()
    runs = Runs()
    once = OncePerEvent(
        runs, BatchedLookup(Lookups({one.delivery_id} if delivered else set(), fail))
    )
    await once.run(record(one.dumps()))
    assert [r.value for r in runs.records] == ([one.dumps()] if sent else [])


async def test_recoveries_and_unparsable_records_go_straight_to_run() -> None:
    one = job()
    recovery = DeliveryJob.for_recovery(one.delivery_id, WEBHOOK, "t", one.event, NOW, 2)
    runs = Runs()
    lookups = Lookups({one.delivery_id})
    once = OncePerEvent(runs, BatchedLookup(lookups))
    for raw in (recovery.dumps(), b"garbage"):
        await once.run(record(raw))
    assert len(runs.records) == 2 and lookups.batches == []
