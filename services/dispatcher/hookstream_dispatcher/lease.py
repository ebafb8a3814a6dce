"""The shard lease: which shards this dispatcher owns, and what a scan of them finds.

Decision 4: owning partition k of `hookstream.dispatch.shards` means owning shard k, and every
webhook of shard k. Taking shards starts a scan (jobs queued before their wake-ups were read);
releasing them names the topics to hand back. A scan's arithmetic lives here, its Kafka calls
in the worker, so the rules are tested without a broker.
"""

from aiokafka import TopicPartition

from hookstream_common.shards import shard_of
from hookstream_common.topics import Topics


class ShardLease:
    """The shards owned, and the webhooks and topics they hold."""

    def __init__(self, topics: Topics, shards: int) -> None:
        self._topics = topics
        self._shards = shards
        self.owned: frozenset[int] = frozenset()

    def take(self, shards: set[int]) -> None:
        """The group's whole assignment to this dispatcher."""
        self.owned = frozenset(shards)

    def release(self, shards: set[int]) -> None:
        """These shards are moving away."""
        self.owned = self.owned - shards

    def shard(self, partition: TopicPartition) -> int:
        """The shard of a delivery topic (shard 0 for a topic that names no webhook)."""
        webhook_id = self._topics.webhook_id_of(partition.topic) or ""
        return shard_of(webhook_id, self._shards)

    def owns(self, webhook_id: str) -> bool:
        return shard_of(webhook_id, self._shards) in self.owned

    def in_shards(self, partitions: set[TopicPartition], shards: set[int]) -> set[TopicPartition]:
        """Those of `partitions` that belong to one of `shards`."""
        return {tp for tp in partitions if self.shard(tp) in shards}

    def owned_topics(self, topics: set[str]) -> list[TopicPartition]:
        """The delivery topics, of all the cluster's `topics`, of the shards owned."""
        return [
            TopicPartition(topic, 0)
            for topic in topics
            if (webhook_id := self._topics.webhook_id_of(topic)) is not None
            and self.owns(webhook_id)
        ]

    def lag(self, waiting: dict[TopicPartition, int]) -> dict[int, int]:
        """Jobs waiting per owned shard (zero for an owned shard with none)."""
        lag = dict.fromkeys(self.owned, 0)
        for partition, jobs in waiting.items():
            shard = self.shard(partition)
            if shard in lag:
                lag[shard] += jobs
        return lag


class SettledTopics:
    """The offset up to which each topic's jobs are known to be done: its end when a scan last
    found no job waiting there, or what this dispatcher committed since.

    A topic whose end has not moved from there still has none waiting (its committed offset
    only grows), so a scan asks for the committed offsets of the others only: at 10,000 mostly
    idle topics, asking for all of them on every scan was most of an idle dispatcher's CPU. And
    a topic woken up starts reading there without asking the coordinator first (`start`): at
    200 new topics a second, that lookup was a round trip of 50-400 ms in every placement."""

    def __init__(self) -> None:
        self._ends: dict[TopicPartition, int] = {}

    def to_check(self, ends: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        """The topics whose jobs must be counted: some records, and an end that moved."""
        return {tp: end for tp, end in ends.items() if end > 0 and self._ends.get(tp) != end}

    def update(self, ends: dict[TopicPartition, int], waiting: dict[TopicPartition, int]) -> None:
        """After a scan: every topic of `ends` not `waiting` is settled at its end (or later,
        if this dispatcher committed past it while the scan ran)."""
        self._ends = {
            tp: max(end, self._ends.get(tp, end)) for tp, end in ends.items() if tp not in waiting
        }

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        """This dispatcher committed these offsets: every job before them is done."""
        for tp, offset in offsets.items():
            self._ends[tp] = max(offset, self._ends.get(tp, offset))

    def start(self, partition: TopicPartition) -> int | None:
        """Where reading this topic starts, if known without asking the coordinator."""
        return self._ends.get(partition)

    def forget(self) -> None:
        """Check every topic again (shards were taken: another owner may have reset offsets)."""
        self._ends = {}


def waiting(
    ends: dict[TopicPartition, int],
    committed: dict[TopicPartition, int],
    firsts: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """Jobs past the committed offset of each topic (or past the first offset kept, for a topic
    never committed), where there are any."""
    done = {**firsts, **committed}
    return {tp: end - done.get(tp, 0) for tp, end in ends.items() if end > done.get(tp, 0)}


def never_committed(
    ends: dict[TopicPartition, int], committed: dict[TopicPartition, int]
) -> list[TopicPartition]:
    """Topics with records but no committed offset: their first kept offset is asked for."""
    return [tp for tp, end in ends.items() if tp not in committed and end > 0]
