"""The matcher's batches in flight (`Pipeline`): committed in order, only once settled, none
after a failure, and a rewind to the earliest batch that did not commit."""

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiokafka.errors import KafkaTimeoutError
from aiokafka.structs import TopicPartition

from hookstream_matcher.pipeline import Pipeline

P0, P1 = TopicPartition("events", 0), TopicPartition("events", 1)


class Batches:
    """Batches whose acknowledgements the test gives (`ack`, `fail`), recording the commits."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.acks: list[asyncio.Future[None]] = []
        self.committed: list[int] = []

    def add(self, starts: dict[TopicPartition, int]) -> int:
        number = len(self.acks)
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)

        async def commit() -> None:
            self.committed.append(number)

        self.pipeline.add(self._waiting(ack), commit, starts)
        return number

    def ack(self, number: int) -> None:
        self.acks[number].set_result(None)

    def fail(self, number: int) -> None:
        self.acks[number].set_exception(KafkaTimeoutError())

    @staticmethod
    def _waiting(ack: asyncio.Future[None]) -> Callable[[], Awaitable[None]]:
        async def settle() -> None:
            await ack

        return settle


async def _settle_down() -> None:
    """Let every task that can run, run."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_commits_go_in_batch_order_and_only_once_settled() -> None:
    batches = Batches(Pipeline(depth=4, limit=5.0))
    for offset in (0, 10, 20):
        batches.add({P0: offset})
    batches.ack(2)
    batches.ack(1)
    await _settle_down()
    assert batches.committed == [], "the first batch is not acknowledged yet"
    batches.ack(0)
    await batches.pipeline.drain()
    assert batches.committed == [0, 1, 2]
    assert len(batches.pipeline) == 0


async def test_nothing_after_a_failed_batch_commits_and_the_rewind_goes_to_its_start() -> None:
    batches = Batches(Pipeline(depth=4, limit=5.0))
    batches.add({P0: 0})
    batches.add({P0: 10, P1: 5})
    batches.add({P1: 7})
    batches.ack(0)
    batches.fail(1)
    batches.ack(2)
    await _settle_down()
    with pytest.raises(KafkaTimeoutError):
        batches.pipeline.check()
    assert batches.committed == [0]
    assert batches.pipeline.abandon() == {P0: 10, P1: 5}
    assert len(batches.pipeline) == 0
    await _settle_down()
    assert batches.committed == [0], "the batch after the failed one never commits"


async def test_a_later_failure_is_seen_before_the_earlier_batches_settle() -> None:
    batches = Batches(Pipeline(depth=4, limit=5.0))
    batches.add({P0: 0})
    batches.add({P0: 10})
    batches.fail(1)
    await _settle_down()
    with pytest.raises(KafkaTimeoutError):
        batches.pipeline.check()
    assert batches.pipeline.abandon() == {P0: 0}, "the unacknowledged first batch goes too"


async def test_room_waits_while_depth_batches_are_in_flight() -> None:
    batches = Batches(Pipeline(depth=2, limit=5.0))
    batches.add({P0: 0})
    await batches.pipeline.room()  # one in flight: room for another
    batches.add({P0: 10})
    waiting = asyncio.create_task(batches.pipeline.room())
    await _settle_down()
    assert not waiting.done()
    batches.ack(0)
    await waiting
    assert batches.committed == [0]
    assert len(batches.pipeline) == 1
    batches.ack(1)
    await batches.pipeline.drain()


async def test_depth_one_commits_each_batch_before_the_next_is_routed() -> None:
    batches = Batches(Pipeline(depth=1, limit=5.0))
    batches.add({P0: 0})
    waiting = asyncio.create_task(batches.pipeline.room())
    await _settle_down()
    assert not waiting.done()
    batches.ack(0)
    await waiting
    assert batches.committed == [0]
    assert len(batches.pipeline) == 0


async def test_a_batch_that_outlasts_the_limit_fails_and_holds_back_the_next() -> None:
    batches = Batches(Pipeline(depth=4, limit=0.05))
    batches.add({P0: 0})
    batches.add({P0: 10})
    batches.ack(1)
    with pytest.raises(TimeoutError):
        await batches.pipeline.drain()
    assert batches.committed == []
    assert batches.pipeline.abandon() == {P0: 0}


async def test_a_waiter_cut_short_leaves_the_batch_settling() -> None:
    batches = Batches(Pipeline(depth=1, limit=5.0))
    batches.add({P0: 0})
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await batches.pipeline.room()
    batches.ack(0)
    await batches.pipeline.drain()
    assert batches.committed == [0]
