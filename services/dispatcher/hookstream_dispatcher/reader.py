"""The thin Kafka side of reading delivery topics: assign, seek, pause, fetch, commit.

Manual assignment, no group membership (decision 4); offsets are committed under the dispatcher
group id, which the janitor reads to know a topic is drained. Everything it decides comes from
the busy-topic book; this module only talks to the broker.

The consumer has no group: aiokafka's consumer commits only partitions it is assigned, and
fetches the committed offsets of its whole assignment again at every change of it. A topic
whose jobs are all read leaves the assignment while they are still being sent and stored, so
its offsets are committed by a client of its own (`GroupCommits`), the way a consumer outside
any group generation commits: generation -1, no member id.
"""

from collections import defaultdict
from collections.abc import Iterable

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import ConnectionGroup, CoordinationType
from aiokafka.errors import (
    CoordinatorNotAvailableError,
    KafkaError,
    NotCoordinatorError,
    for_code,
)
from aiokafka.protocol.commit import OffsetCommitRequest
from aiokafka.structs import ConsumerRecord

from hookstream_common.kafka_failover import FailoverClient, with_failover
from hookstream_dispatcher.book import BusyTopic

log = structlog.get_logger(__name__)

_NO_ERROR = 0
_COORDINATOR_MOVED = (NotCoordinatorError, CoordinatorNotAvailableError)


class GroupCommits:
    """Commits offsets of any partitions under a group that no member joins."""

    def __init__(self, connection: dict[str, object], group_id: str) -> None:
        """`connection`: `hookstream_common.kafka.client_options`."""
        self._client = FailoverClient(**connection)
        self._group_id = group_id
        self._coordinator: int | None = None

    async def start(self) -> None:
        await self._client.bootstrap()

    async def close(self) -> None:
        await self._client.close()

    async def commit(self, offsets: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Commit `offsets`; returns those the coordinator took (a partition it refused, e.g.
        of a topic just deleted, is logged and left out). Raises if it could not be asked."""
        if self._coordinator is None:
            self._coordinator = await self._client.coordinator_lookup(
                CoordinationType.GROUP, self._group_id
            )
        by_topic: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
        for tp, offset in offsets.items():
            by_topic[tp.topic].append((tp.partition, offset, ""))
        request = OffsetCommitRequest(
            self._group_id,
            OffsetCommitRequest.DEFAULT_GENERATION_ID,
            "",
            OffsetCommitRequest.DEFAULT_RETENTION_TIME,
            list(by_topic.items()),
        )
        try:
            response = await self._client.send(
                self._coordinator, request, group=ConnectionGroup.COORDINATION
            )
        except KafkaError:
            self._coordinator = None
            raise
        taken: dict[TopicPartition, int] = {}
        for topic, partitions in response.topics:
            for partition, code in partitions:
                tp = TopicPartition(topic, partition)
                if code == _NO_ERROR:
                    taken[tp] = offsets[tp]
                    continue
                error = for_code(code)
                if error in _COORDINATOR_MOVED:
                    self._coordinator = None
                log.warning("commit refused", topic=topic, error=error.__name__)
        return taken


class TopicReader:
    """Reads the assigned delivery topics and commits what the lanes stored.

    The consumer is always assigned one more partition, `anchor`, paused and never read: an
    aiokafka client with no topic asks for the metadata of every topic in the cluster, and the
    consumer does so every `metadata_max_age_ms`. With nothing to read, that was the metadata
    of 10,000 delivery topics every 5 seconds, most of an idle dispatcher's CPU.
    """

    def __init__(
        self, connection: dict[str, object], group_id: str, anchor: TopicPartition
    ) -> None:
        """`connection`: `hookstream_common.kafka.client_options`; `anchor`: a partition of a
        small topic that always exists."""
        self._group_id = group_id
        self._anchor = anchor
        self.consumer = with_failover(
            AIOKafkaConsumer(
                **connection,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                metadata_max_age_ms=5000,
                fetch_max_wait_ms=100,  # a topic taken up waits for the fetch in flight to end
            )
        )
        self.commits = GroupCommits(connection, group_id)
        self.admin = with_failover(AIOKafkaAdminClient(**connection))
        self.assigned: frozenset[TopicPartition] = frozenset()

    async def start(self) -> None:
        await self.consumer.start()
        self.assign([])
        await self.commits.start()
        await self.admin.start()

    async def close(self) -> None:
        await self.consumer.stop()
        await self.commits.close()
        await self.admin.close()

    async def committed(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The committed offsets of those that have one. Asked of the group coordinator
        directly: the consumer would ask again for the whole assignment at each change, and
        with a change every tenth of a second a new topic could wait for ever."""
        offsets = await self.admin.list_consumer_group_offsets(
            self._group_id, partitions=partitions
        )
        return {
            tp: meta.offset for tp, meta in offsets.items() if meta is not None and meta.offset >= 0
        }

    def assign(self, topics: Iterable[BusyTopic]) -> None:
        """Read exactly these topics, each from its position; those marked `paused` are paused
        (a new assignment resets the consumer's pause flags)."""
        topics = list(topics)
        self.assigned = frozenset(t.partition for t in topics)
        self.consumer.assign(sorted(self.assigned | {self._anchor}))
        self.consumer.seek(self._anchor, 0)  # a position, so that no offset lookup is made
        self.consumer.pause(self._anchor)
        for topic in topics:
            if topic.position is not None:
                self.consumer.seek(topic.partition, topic.position)
            if topic.paused:
                self.consumer.pause(topic.partition)

    async def fetch(self) -> dict[TopicPartition, list[ConsumerRecord]]:
        """What the assigned topics have, waiting at most 50 ms."""
        if not self.assigned:
            return {}
        return await self.consumer.getmany(timeout_ms=50, max_records=2000)

    def has_fetched(self, partition: TopicPartition) -> bool:
        """A fetch of this topic, assigned now, completed (perhaps with no record). A topic
        placed past its last announced job is never assigned, so never fetched."""
        return partition in self.assigned and self.consumer.highwater(partition) is not None

    def pause(self, partition: TopicPartition) -> None:
        self.consumer.pause(partition)

    def resume(self, partition: TopicPartition) -> None:
        if partition in self.assigned:
            self.consumer.resume(partition)

    async def commit(self, offsets: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Commit these offsets; those the broker took (none, and a warning, on an outage)."""
        if not offsets:
            return {}
        try:
            return await self.commits.commit(offsets)
        except KafkaError as exc:
            log.warning("commit failed; will retry", error=str(exc))
            return {}
