"""Delivery jobs held back until the producer's metadata knows their topic.

The API creates a webhook's delivery topic at the controller and then publishes the webhook, but
a broker applies topic creations at its own pace (on a 2-core box about 50 partitions a second),
so an event can match a webhook whose topic the producer's metadata still lacks. Sending then
blocks the whole batch for the producer's request timeout and fails it, and every tenant waits.
Such a job is held here instead, and sent by a later batch once the topic is known.

A held job is not on the broker, so its event must not be committed: a partition's commit point
is the end of what was routed, but never past the earliest held event (`commit_point`). A crash
or rebalance then routes the held event again, with the events after it (duplicates, never loss).
This class is the bookkeeping only, without I/O: the matcher decides what is held and sends what
is released.
"""

from collections.abc import Callable, Collection
from dataclasses import dataclass

from aiokafka.structs import ConsumerRecord, TopicPartition


@dataclass(frozen=True)
class Held:
    """One delivery job held back, with the event it came from (to commit, dead-letter, trace)."""

    record: ConsumerRecord
    tenant_id: str
    event_id: str
    webhook_id: str
    topic: str
    job: bytes
    since: float
    """When it was first held (monotonic seconds)."""

    @property
    def source(self) -> TopicPartition:
        """The events partition of its event."""
        return TopicPartition(self.record.topic, self.record.partition)

    @property
    def offset(self) -> int:
        """Its event's offset."""
        return int(self.record.offset)


class Holds:
    """The held jobs, in the order they were held, and how far each partition was routed."""

    def __init__(self) -> None:
        self._held: list[Held] = []
        self._topics: set[str] = set()
        self._routed: dict[TopicPartition, int] = {}

    def __len__(self) -> int:
        return len(self._held)

    def topics(self) -> set[str]:
        """The delivery topics of the held jobs (a later job for one of them is held too, so a
        webhook's jobs keep their order)."""
        return self._topics

    def partitions(self) -> set[TopicPartition]:
        """The events partitions with jobs held."""
        return {held.source for held in self._held}

    def hold(self, held: Held) -> None:
        """Keep a job until its topic is ready."""
        self._held.append(held)
        self._topics.add(held.topic)

    def routed(self, partition: TopicPartition, end: int) -> None:
        """Every event of `partition` before `end` was routed (its jobs sent or held)."""
        self._routed[partition] = end

    def release(self, ready: Callable[[str], bool]) -> list[Held]:
        """Take out the jobs whose topic is `ready`, in the order they were held (so a webhook's
        jobs keep their order)."""
        released: list[Held] = []
        kept: list[Held] = []
        for held in self._held:
            (released if ready(held.topic) else kept).append(held)
        self._keep(kept)
        return released

    def restore(self, released: list[Held]) -> None:
        """Hold again jobs released by a batch that failed before it was handed on."""
        self._keep([*released, *self._held])

    def commit_point(self, partition: TopicPartition) -> int:
        """The offset `partition` may be committed up to: the end of what was routed, but never
        past an event with a job held."""
        offsets = [held.offset for held in self._held if held.source == partition]
        return min([self._routed[partition], *offsets])

    def rewind(self, partition: TopicPartition, offset: int) -> None:
        """`partition` is read again from `offset`: the jobs of those events will be routed
        (and held) again, so their holds go; holds of earlier events stay."""
        self._keep(
            [held for held in self._held if held.source != partition or held.offset < offset]
        )
        if partition in self._routed:
            self._routed[partition] = min(self._routed[partition], offset)

    def forget(self, partitions: Collection[TopicPartition]) -> None:
        """The partitions were given up: their next owner routes from the committed offset,
        which is never past a held event."""
        self._keep([held for held in self._held if held.source not in partitions])
        for partition in partitions:
            self._routed.pop(partition, None)

    def _keep(self, held: list[Held]) -> None:
        self._held = held
        self._topics = {one.topic for one in held}
