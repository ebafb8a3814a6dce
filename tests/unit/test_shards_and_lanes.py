"""Shard ownership, offsets finished out of order, and a lane's concurrency and order."""

import asyncio
import random

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from hookstream_common.shards import shard_of, wake_up_end
from hookstream_dispatcher.lanes import Lane
from hookstream_dispatcher.offsets import OffsetTracker


def test_shard_of_is_stable_and_spread() -> None:
    # Pinned: a changed hash would move every webhook of a running cluster to another shard.
    assert shard_of("0b4b8f57-5a4c-4a8e-9a39-5b0d8e1f2a3c", 64) == 6
    counts = [0] * 8
    for i in range(8000):
        counts[shard_of(f"webhook-{i}", 8)] += 1
    assert min(counts) > 800


def test_a_wake_up_names_the_offset_after_its_jobs_or_nothing() -> None:
    assert wake_up_end(b"42") == 42
    assert wake_up_end(b"0") == 0
    for unsaid in (b"", None, b"-1", b"4x", b"9" * 30, "٣".encode()):
        assert wake_up_end(unsaid) is None, unsaid


def test_committable_stops_at_the_first_gap() -> None:
    tracker = OffsetTracker()
    for offset in range(10, 15):
        tracker.begin(offset)
    tracker.finish(12)
    tracker.finish(11)
    assert tracker.committable is None
    tracker.finish(10)
    assert tracker.committable == 13
    tracker.finish(14)
    assert tracker.committable == 13
    tracker.finish(13)
    assert tracker.committable == 15
    assert len(tracker) == 0


def test_any_finishing_order_ends_at_the_last_offset() -> None:
    for seed in range(50):
        tracker = OffsetTracker()
        offsets = list(range(100, 140))
        for offset in offsets:
            tracker.begin(offset)
        order = offsets[:]
        random.Random(seed).shuffle(order)
        seen_max = None
        for offset in order:
            tracker.finish(offset)
            if tracker.committable is not None:
                finished = set(order[: order.index(offset) + 1])
                assert all(o in finished for o in range(100, tracker.committable))
                assert seen_max is None or tracker.committable >= seen_max
                seen_max = tracker.committable
        assert tracker.committable == 140


def _record(offset: int) -> ConsumerRecord:
    return ConsumerRecord("t", 0, offset, 0, 0, None, b"", 0, 0, 0, [])


async def _run_lane(concurrency: int, count: int) -> tuple[list[int], int, Lane]:
    started: list[int] = []
    running = 0
    peak = 0

    async def deliver(record: ConsumerRecord) -> None:
        nonlocal running, peak
        started.append(record.offset)
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(random.uniform(0.001, 0.01))
        running -= 1

    done = asyncio.Event()

    def on_progress(lane: Lane) -> None:
        if lane.tracker.committable == count:
            done.set()

    lane = Lane(TopicPartition("t", 0), deliver, on_progress, concurrency, capacity=1000).start()
    lane.add([_record(o) for o in range(count)])
    await asyncio.wait_for(done.wait(), 10)
    lane.close()
    await lane.task
    return started, peak, lane


async def test_concurrency_one_sends_in_order_one_at_a_time() -> None:
    started, peak, _ = await _run_lane(1, 30)
    assert started == list(range(30))
    assert peak == 1


async def test_concurrency_runs_that_many_at_once_and_commits_everything() -> None:
    started, peak, lane = await _run_lane(8, 200)
    assert sorted(started) == list(range(200))
    assert peak == 8
    assert lane.tracker.committable == 200


async def test_an_unstored_outcome_holds_the_commit() -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def deliver(record: ConsumerRecord) -> asyncio.Future[None] | None:
        return never if record.offset == 2 else None

    ended = 0
    progress = asyncio.Event()

    def on_progress(_: Lane) -> None:
        nonlocal ended
        ended += 1
        progress.set()

    async def jobs_ended(count: int) -> None:
        while ended < count:
            progress.clear()
            await progress.wait()

    lane = Lane(TopicPartition("t", 0), deliver, on_progress, 4, capacity=100).start()
    lane.add([_record(o) for o in range(6)])
    await asyncio.wait_for(jobs_ended(5), 5)  # every job but offset 2 is stored
    assert lane.tracker.committable == 2
    never.cancel()
    await asyncio.wait_for(jobs_ended(6), 5)  # offset 2's write ended without being stored
    assert lane.tracker.committable == 2
    lane.close()
    await lane.task


async def test_a_lane_takes_no_job_until_started() -> None:
    delivered: list[int] = []

    async def deliver(record: ConsumerRecord) -> asyncio.Future[None] | None:
        delivered.append(record.offset)
        return None

    lane = Lane(TopicPartition("t", 0), deliver, lambda _: None, 1, capacity=10)
    lane.add([_record(0)])
    await asyncio.sleep(0.01)
    assert delivered == []
    with pytest.raises(RuntimeError):
        _ = lane.task
    lane.start()
    lane.close()
    await lane.task
