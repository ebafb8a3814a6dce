"""A lane per webhook: its jobs, up to C at a time, committed only up to the first gap.

A slow or dead receiver holds up only its own lane. Within the lane up to `concurrency` requests
run at once (C = 1 sends first attempts strictly in order); jobs finish out of order, and the
lane's `committable` offset is the end of the contiguous run of jobs whose outcomes are stored.
A lane holds a bounded number of jobs: the dispatcher pauses its partition beyond that.
A webhook's rate limit is a token bucket each job waits for before it starts (rate_limits).
"""

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

import structlog
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from hookstream_dispatcher.offsets import OffsetTracker
from hookstream_dispatcher.rate_limits import Throttle

log = structlog.get_logger(__name__)

RunJob = Callable[[ConsumerRecord], Awaitable[asyncio.Future[None] | None]]
"""Runs one job's attempt; the future it returns resolves when the outcome is stored."""


def stored(future: asyncio.Future[None] | None) -> bool:
    """The outcome is committed; a cancelled or failed write never counts as stored."""
    if future is None:
        return True
    return future.done() and not future.cancelled() and future.exception() is None


class Lane:
    """One webhook's partition and the jobs fetched from it."""

    def __init__(
        self,
        partition: TopicPartition,
        run_job: RunJob,
        on_progress: Callable[["Lane"], None],
        concurrency: int,
        capacity: int,
        throttle: Throttle | None = None,
    ) -> None:
        self.partition = partition
        self.backlog: deque[ConsumerRecord] = deque()
        self.tracker = OffsetTracker()
        self._run_job = run_job
        self._on_progress = on_progress
        self._capacity = capacity
        self._sending = asyncio.Semaphore(concurrency)
        self._jobs: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self._closing = False
        self._closed = asyncio.Event()
        self._throttle = throttle
        self._task: asyncio.Task[None] | None = None

    def start(self) -> "Lane":
        """Start taking jobs (apart from construction, so making a lane starts nothing)."""
        if self._task is None:
            self._task = asyncio.create_task(self._work(), name=f"lane {self.partition.topic}")
        return self

    @property
    def task(self) -> asyncio.Task[None]:
        """The lane's work, which ends once it is closed and its jobs in flight are done."""
        if self._task is None:
            raise RuntimeError("the lane was never started")
        return self._task

    @property
    def held(self) -> int:
        """Jobs in this lane: waiting, being sent, or waiting for their outcome to be stored."""
        return len(self.backlog) + len(self.tracker)

    @property
    def committable(self) -> int | None:
        """The offset after the last of the contiguous run of jobs whose outcomes are stored."""
        return self.tracker.committable

    @property
    def full(self) -> bool:
        """Fetching more for this lane would exceed its capacity."""
        return self.held >= self._capacity

    def add(self, records: list[ConsumerRecord]) -> None:
        """Queue records fetched for this partition."""
        self.backlog.extend(records)
        self._changed.set()

    def close(self) -> None:
        """Take no new job; the ones in flight finish. The rest is left for the next owner."""
        self._closing = True
        self._closed.set()
        self._changed.set()

    async def _work(self) -> None:
        while not self._closing:
            if not self.backlog or len(self.tracker) >= self._capacity:
                self._changed.clear()
                await self._changed.wait()
                continue
            await self._sending.acquire()
            if not self._closing and self._throttle is not None:
                await self._throttle.wait(self._closed)
            if self._closing:
                self._sending.release()
                break
            record = self.backlog.popleft()
            self.tracker.begin(record.offset)
            job = asyncio.create_task(self._one(record))
            self._jobs.add(job)
            job.add_done_callback(self._jobs.discard)
        if self._jobs:
            await asyncio.wait(set(self._jobs))

    async def _one(self, record: ConsumerRecord) -> None:
        """Send (holding a slot), then wait for the outcome to be stored (not holding it)."""
        try:
            outcome = await self._run_job(record)
        finally:
            self._sending.release()
        if outcome is not None:
            # `wait`, not `await`: cancelling the lane must not cancel the writer's future.
            await asyncio.wait([outcome])
        if stored(outcome):
            self.tracker.finish(record.offset)
        self._changed.set()
        self._on_progress(self)
