"""The matcher's batches in flight (`hookstream_matcher.pipeline`) on the real broker.

The matcher runs in this process, on topics of the test's own, with a producer that lingers
2 s: each batch then waits about 4 s for the broker (its jobs' acknowledgements, then its
wake-ups'), long enough to see the next batch routed meanwhile, a rebalance wait for both to be
committed, and a stop cut short leave them to the next owner, who routes them again.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import prometheus_client
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from private_matcher import PrivateTopics, private_topics, running

from hookstream_common.jobs import DeliveryJob
from hookstream_common.kafka import client_options
from hookstream_matcher.settings import MatcherSettings
from support import wait_until

LINGER_SECONDS = 2.0
TENANT = "pipeline-tenant"


@dataclass(frozen=True)
class Installation:
    """One tenant with one webhook, on topics of the test's own."""

    topics: PrivateTopics
    webhook_id: str

    @property
    def settings(self) -> MatcherSettings:
        return self.topics.settings

    async def publish(self, count: int) -> list[str]:
        """Publish `count` events of the tenant, one at a time; their ids."""
        return await self.topics.publish(TENANT, count)

    async def routed_events(self) -> list[str]:
        """The event ids of every job on the webhook's topic, in order."""
        records = await self.topics.read(self.settings.topics.deliveries(self.webhook_id))
        return [DeliveryJob.loads(record.value).event.id for record in records]

    async def committed(self) -> int:
        return await self.topics.committed()


@pytest.fixture
async def installation(servers: dict[str, str]) -> AsyncIterator[Installation]:
    webhook_id = str(uuid.uuid4())
    async with private_topics(
        servers["kafka"],
        "pipeline",
        {webhook_id: TENANT},
        [webhook_id],
        matcher_linger_seconds=LINGER_SECONDS,
        matcher_pipeline_depth=4,
    ) as topics:
        yield Installation(topics, webhook_id)


def in_flight() -> float:
    return prometheus_client.REGISTRY.get_sample_value("hookstream_matcher_batches_in_flight")


async def _two_batches_in_flight(installation: Installation) -> list[str]:
    """Publish an event, and another once the first is routed: the second is routed while the
    first still waits for the broker. Their ids."""
    first = await installation.publish(1)
    await wait_until(lambda: in_flight() == 1, timeout=10, interval=0.01)
    second = await installation.publish(1)
    # The first stays in flight for two lingers: its jobs', then its wake-ups'.
    await wait_until(lambda: in_flight() == 2, timeout=2 * LINGER_SECONDS, interval=0.01)
    return first + second


async def test_a_batch_is_routed_while_the_one_before_waits_for_the_broker(
    installation: Installation,
) -> None:
    async with running(installation.settings):
        published = await _two_batches_in_flight(installation)
        await wait_until(lambda: in_flight() == 0, timeout=30, interval=0.05)
        assert await installation.committed() == 2
        assert await installation.routed_events() == published


class _Recorder(ConsumerRebalanceListener):
    """A second member of the matchers' group: what was committed when the rebalance its
    joining caused was over."""

    def __init__(self, installation: Installation, consumer: AIOKafkaConsumer) -> None:
        self._installation = installation
        self._consumer = consumer
        self.committed: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        pass

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if not self.committed.done():
            offset = await self._consumer.committed(self._installation.topics.events)
            self.committed.set_result(offset or 0)


async def test_a_rebalance_waits_until_the_batches_in_flight_are_committed(
    installation: Installation,
) -> None:
    settings = installation.settings
    async with running(settings):
        published = await _two_batches_in_flight(installation)
        member = AIOKafkaConsumer(
            **client_options(settings.kafka_bootstrap_servers),
            group_id=settings.group_id,
            enable_auto_commit=False,
        )
        recorder = _Recorder(installation, member)
        member.subscribe([settings.topics.events], listener=recorder)
        await member.start()
        try:
            # The matcher gives up its partition only once both batches are committed, so no
            # member starts from an offset that the other may still be routing.
            assert await asyncio.wait_for(recorder.committed, 30) == 2
        finally:
            await member.stop()
    assert await installation.routed_events() == published, "each routed once"


async def test_a_stop_cut_short_leaves_the_batches_in_flight_to_the_next_owner(
    installation: Installation,
) -> None:
    settings = installation.settings
    async with running(settings, grace=0.1):
        published = await _two_batches_in_flight(installation)
    assert await installation.committed() == 0, "the batches in flight were not committed"
    async with running(settings):
        await wait_until(installation.committed, timeout=30)
        assert await installation.committed() == 2
    routed = await installation.routed_events()
    assert set(routed) == set(published), "routed again by the next matcher: nothing lost"
