"""The busy-topic book: one record per delivery topic being read, the dispatcher's only view.

A topic enters the book when work is found there (a wake-up or a scan), and goes through
phases: **found** (where reading starts is not known yet) → **placed** (its committed offset
is known, so it can be assigned) → **reading** (fetched at least once). It leaves when it is
idle (no job for `idle_seconds`, every job taken stored and committed), when its shard moves
away, or when the dispatcher stops. The consumer's assignment is derived from the book: the
placed and reading topics with jobs not fetched yet. A wake-up names the offset its topic has
jobs up to, and a topic read that far leaves the assignment when it next changes (its lane
sends and stores them, and its offsets are still committed) until a wake-up names a later one.
So the assignment holds the topics with work to read, not every topic whose last jobs are still
being sent and stored: at 10,000 webhooks those were thousands, every change of the assignment
and every fetch of them took longer, and so more piled up. Pure logic with an injected clock,
tested without Kafka.
"""

import enum
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from aiokafka import TopicPartition

NEVER_FETCHED_SECONDS = 30.0
"""A topic whose awaited jobs have not been fetched for this long is gone (a deleted
webhook's, or its jobs removed by retention); a scan finds any work left there."""


class Phase(enum.Enum):
    FOUND = "found"
    PLACED = "placed"
    READING = "reading"


class LaneState(Protocol):
    """What the book needs to know of a topic's lane (`hookstream_dispatcher.lanes.Lane`)."""

    @property
    def held(self) -> int: ...

    @property
    def committable(self) -> int | None: ...


@dataclass
class BusyTopic:
    """One delivery topic being read, and everything the dispatcher knows about it."""

    partition: TopicPartition
    seen: float
    """When work was last found or fetched here (the book's clock)."""
    phase: Phase = Phase.FOUND
    position: int | None = None
    """Where reading goes on: after the last job handed to the lane (None: not placed yet)."""
    lane: LaneState | None = None
    jobs_end: float = 0
    """Jobs are known to exist up to this offset (a wake-up's or a scan's); `math.inf` when a
    wake-up did not say, so the topic is read until it is idle."""
    full: bool = False
    """Its lane holds as many jobs as it may: paused until the lane drains."""
    paused: bool = False
    """Paused in the consumer (the opposite of what `fetching` was when last applied)."""
    committed: int | None = None
    """The offset last committed for it by this dispatcher."""

    @property
    def caught_up(self) -> bool:
        """Every job known to be there has been fetched."""
        return self.position is not None and self.position >= self.jobs_end

    @property
    def assigned(self) -> bool:
        """Whether the consumer should be assigned it: placed, with jobs left to fetch."""
        return self.phase is not Phase.FOUND and not self.caught_up

    @property
    def fetching(self) -> bool:
        """Whether the consumer should fetch it: assigned, with room in its lane."""
        return self.assigned and not self.full

    @property
    def awaited(self) -> bool:
        """Jobs are known to be waiting here, not fetched yet: a topic not fetched at all, or
        one fetched short of the offset a wake-up named (a fetch answered without the jobs, or
        one whose records a change of the assignment threw away)."""
        if self.caught_up:
            return False
        return self.phase is not Phase.READING or math.isfinite(self.jobs_end)

    def idle(self, now: float, idle_seconds: float) -> bool:
        """No job for `idle_seconds` and every job taken stored and committed; a topic with
        jobs awaited is kept, unless they never come (`NEVER_FETCHED_SECONDS`)."""
        if now - self.seen < idle_seconds:
            return False
        if self.awaited:
            return now - self.seen > NEVER_FETCHED_SECONDS
        if self.lane is None:
            return True
        return self.lane.held == 0 and self.committed == self.lane.committable


class TopicBook:
    """The busy topics, by partition."""

    def __init__(self, idle_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._idle_seconds = idle_seconds
        self._clock = clock
        self._topics: dict[TopicPartition, BusyTopic] = {}

    def __contains__(self, partition: TopicPartition) -> bool:
        return partition in self._topics

    def __len__(self) -> int:
        return len(self._topics)

    def get(self, partition: TopicPartition) -> BusyTopic | None:
        return self._topics.get(partition)

    def topics(self) -> list[BusyTopic]:
        return list(self._topics.values())

    def found(self, partition: TopicPartition, jobs_end: int | None) -> bool:
        """Work is waiting in this topic, up to `jobs_end` (None: not said); True if the book
        did not hold it yet."""
        end = math.inf if jobs_end is None else jobs_end
        topic = self._topics.get(partition)
        if topic is not None:
            topic.seen = self._clock()
            topic.jobs_end = max(topic.jobs_end, end)
            return False
        self._topics[partition] = BusyTopic(partition, self._clock(), jobs_end=end)
        return True

    def unplaced(self) -> list[TopicPartition]:
        """Topics whose starting offset must be looked up before they are assigned."""
        return [p for p, t in self._topics.items() if t.phase is Phase.FOUND]

    def place(self, partition: TopicPartition, offset: int) -> None:
        """Reading this topic starts at `offset` (its committed offset, or 0)."""
        topic = self._topics.get(partition)
        if topic is not None and topic.phase is Phase.FOUND:
            topic.position = offset
            topic.phase = Phase.PLACED

    def assignment(self) -> set[TopicPartition]:
        """What the consumer should read: every placed topic with jobs left to fetch."""
        return {p for p, t in self._topics.items() if t.assigned}

    def placed(self) -> list[TopicPartition]:
        """Topics assigned and not fetched yet."""
        return [p for p, t in self._topics.items() if t.phase is Phase.PLACED and t.assigned]

    def reached(self, partition: TopicPartition) -> None:
        """A fetch of this topic completed with no record: it is being read all the same."""
        topic = self._topics.get(partition)
        if topic is not None and topic.phase is Phase.PLACED:
            topic.phase = Phase.READING

    def fetched(self, partition: TopicPartition, next_offset: int) -> BusyTopic | None:
        """Records up to `next_offset` were fetched from this topic (None if it left the book)."""
        topic = self._topics.get(partition)
        if topic is None or topic.phase is Phase.FOUND:
            return None
        topic.seen = self._clock()
        topic.position = next_offset
        topic.phase = Phase.READING
        return topic

    def idle(self) -> list[BusyTopic]:
        """Take out and return the topics that are idle."""
        now = self._clock()
        gone = [t for t in self._topics.values() if t.idle(now, self._idle_seconds)]
        for topic in gone:
            del self._topics[topic.partition]
        return gone

    def remove(self, partitions: Iterable[TopicPartition]) -> list[BusyTopic]:
        """Take these topics out (their shard moved, or the dispatcher stops)."""
        return [t for p in partitions if (t := self._topics.pop(p, None)) is not None]

    def to_commit(self) -> dict[TopicPartition, int]:
        """The offsets stored since the last commit, per topic, assigned or not."""
        return {
            p: t.lane.committable
            for p, t in self._topics.items()
            if t.lane is not None
            and t.lane.committable is not None
            and t.lane.committable != t.committed
        }

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        """These offsets were committed."""
        for partition, offset in offsets.items():
            if (topic := self._topics.get(partition)) is not None:
                topic.committed = offset
