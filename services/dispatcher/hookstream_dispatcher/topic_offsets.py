"""End and first offsets of many one-partition topics, in one request per broker.

aiokafka's consumer learns the leaders of unknown topics one at a time, each time asking for
the metadata of every topic it already knows: O(N^2) requests for N topics. At 10,000 delivery
topics a scan with `end_offsets` never finished. This client follows no topic in particular, so
each metadata refresh covers every topic in one request, and offsets are asked per leader.
"""

import time
from collections import defaultdict

from aiokafka import TopicPartition
from aiokafka.cluster import ClusterMetadata
from aiokafka.protocol.offset import OffsetRequest

from hookstream_common.kafka_failover import FailoverClient

_LATEST = -1
_EARLIEST = -2


class TopicOffsets:
    """A metadata and ListOffsets client of its own (not a consumer: it fetches no record)."""

    def __init__(self, connection: dict[str, object]) -> None:
        """`connection`: `hookstream_common.kafka.client_options`."""
        self._client = FailoverClient(**connection)
        self._refreshed_at = float("-inf")
        self._added: dict[TopicPartition, int] = {}
        """Leaders of the topics learnt one by one since the last full refresh (`_add`)."""

    async def start(self) -> None:
        await self._client.bootstrap()

    async def close(self) -> None:
        await self._client.close()

    async def topics(self, max_age: float, expected: set[str]) -> set[str]:
        """Every topic the cluster has, as known at most `max_age` seconds ago, and `expected`
        (decoding the metadata of 10,000 topics is the dearest part of a scan, so it is not done
        on every one; topics expected since are asked about alone)."""
        if time.monotonic() - self._refreshed_at > max_age:
            await self._client.force_metadata_update()
            self._refreshed_at = time.monotonic()
            self._added = {}
        known = self._client.cluster.topics() | {tp.topic for tp in self._added}
        if missing := expected - known:
            await self._add(missing)
            known |= {tp.topic for tp in self._added}
        return known

    async def _add(self, topics: set[str]) -> None:
        """Learn the leaders of these topics with a metadata request for them alone. Refreshing
        the client's metadata for them (as this did before) decoded every topic's: at 200 new
        webhooks a second, every scan took seconds of the dispatcher's loop."""
        cluster = ClusterMetadata()
        if not await self._client._metadata_update(cluster, list(topics)):
            return
        for topic in cluster.topics():
            for partition in cluster.partitions_for_topic(topic) or ():
                tp = TopicPartition(topic, partition)
                if (leader := cluster.leader_for_partition(tp)) is not None:
                    self._added[tp] = leader

    async def ends(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The offset after the last record of each partition whose leader is known."""
        return await self._list(partitions, _LATEST)

    async def firsts(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The first offset still kept (retention deletes older records)."""
        return await self._list(partitions, _EARLIEST)

    async def _list(
        self, partitions: list[TopicPartition], timestamp: int
    ) -> dict[TopicPartition, int]:
        by_leader: dict[int, dict[str, list[tuple[int, int]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for tp in partitions:
            leader = self._client.cluster.leader_for_partition(tp)
            if leader is None:
                leader = self._added.get(tp)
            if leader is not None and leader >= 0:  # else unknown for now: the next scan
                by_leader[leader][tp.topic].append((tp.partition, timestamp))
        offsets: dict[TopicPartition, int] = {}
        for leader, topics in by_leader.items():
            response = await self._client.send(leader, OffsetRequest(-1, 0, list(topics.items())))
            for topic, answers in response.topics:
                for partition, error_code, _timestamp, offset in answers:
                    if error_code == 0:
                        offsets[TopicPartition(topic, partition)] = offset
        return offsets
