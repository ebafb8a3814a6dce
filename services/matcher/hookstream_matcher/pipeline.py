"""Batches in flight: the matcher routes the next batch while earlier ones wait for the broker.

Settling a batch (its jobs acknowledged with acks=all after the producer's linger, then its
wake-ups written and acknowledged, then its offsets committed) takes a few broker round trips.
Done one batch at a time, an event arriving meanwhile waited for all of them: at 100 events/s the
matcher alone took 34 ms per event (docs/benchmarks.md (c)). So each routed batch is handed to a
`Pipeline`, which settles it in a task of its own while the matcher fetches and routes the next,
up to `depth` batches at once (depth 1 is the serial cycle).

The guarantees of the serial cycle stay:
- a batch is committed only after its own work is acknowledged and every earlier batch is
  committed, so commits go in batch order and never pass an unacknowledged job;
- once a batch fails, no batch after it commits: `abandon` cancels them all and says where each
  partition must be read again from, so every one of them is routed again (duplicates, never
  loss);
- a batch settles within `limit` seconds or fails with `TimeoutError`, so a hang in the broker
  shows as a failure here as it did inside the loop's turn.
"""

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiokafka.structs import TopicPartition


@dataclass(frozen=True)
class _Flight:
    task: asyncio.Task[None]
    starts: Mapping[TopicPartition, int]
    """The first offset of the batch in each of its partitions: where a rewind goes back to."""


class Pipeline:
    """Up to `depth` routed batches settling at once, committed in the order they were added."""

    def __init__(self, depth: int, limit: float) -> None:
        self._depth = depth
        self._limit = limit
        self._flights: deque[_Flight] = deque()

    def __len__(self) -> int:
        return len(self._flights)

    def add(
        self,
        settle: Callable[[], Awaitable[None]],
        commit: Callable[[], Awaitable[None]],
        starts: Mapping[TopicPartition, int],
    ) -> None:
        """Settle a routed batch in the background: `settle()` (wait for its acknowledgements),
        then wait for the batch before it, then `commit()`."""
        previous = self._flights[-1].task if self._flights else None
        task = asyncio.create_task(self._fly(settle, commit, previous), name="matcher batch")
        self._flights.append(_Flight(task, starts))

    async def room(self) -> None:
        """Wait until fewer than `depth` batches are in flight; raise what failed."""
        while len(self._flights) >= self._depth:
            await self._settle_oldest()

    async def drain(self) -> None:
        """Wait until every batch in flight is committed; raise what failed."""
        while self._flights:
            await self._settle_oldest()

    def check(self) -> None:
        """Forget the batches committed; raise the error of one that failed, if any."""
        while self._flights and self._flights[0].task.done():
            self._flights[0].task.result()
            self._flights.popleft()
        for flight in self._flights:
            if flight.task.done():
                flight.task.result()

    def abandon(self) -> dict[TopicPartition, int]:
        """Cancel every batch in flight (none of them commits any more) and return, for each of
        their partitions, the offset to read again from: the earliest batch's first."""
        starts: dict[TopicPartition, int] = {}
        for flight in self._flights:
            if not flight.task.cancel() and not flight.task.cancelled():
                flight.task.exception()  # finished already: its failure is being handled
            for tp, offset in flight.starts.items():
                starts[tp] = min(offset, starts.get(tp, offset))
        self._flights.clear()
        return starts

    async def _settle_oldest(self) -> None:
        # asyncio.wait, not await: a caller cut short (its turn's time limit) must not cancel
        # the batch; whoever handles the error abandons it.
        oldest = self._flights[0].task
        await asyncio.wait([oldest])
        oldest.result()
        self._flights.popleft()

    async def _fly(
        self,
        settle: Callable[[], Awaitable[None]],
        commit: Callable[[], Awaitable[None]],
        previous: asyncio.Task[None] | None,
    ) -> None:
        async with asyncio.timeout(self._limit):
            await settle()
            if previous is not None:
                # Its failure is this batch's too: nothing after it commits. Shielded: this
                # batch running out of time must not cancel the one before it.
                await asyncio.shield(previous)
            await commit()
