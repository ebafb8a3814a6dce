"""The matcher's batches in flight (`hookstream_matcher.pipeline`) on the real broker.

The matcher runs in this process, on topics of the test's own, with a producer that lingers
2 s: each batch then waits about 4 s for the broker (its jobs' acknowledgements, then its
wake-ups'), long enough to see the next batch routed meanwhile, a rebalance wait for both to be
committed, and a stop cut short leave them to the next owner, who routes them again.
"""

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import prometheus_client
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from hookstream_common.jobs import DeliveryJob
from hookstream_common.kafka import (
    client_options,
    core_topics,
    create_missing_topics,
    delivery_topic,
    producer,
    started_producer,
)
from hookstream_common.resilience import Turns
from hookstream_common.routing import Route, TenantRoutes
from hookstream_common.sdk import EventPublisher
from hookstream_dev.events import sample_event
from hookstream_dev.stack import delete_topics_under
from hookstream_matcher.settings import MatcherSettings
from hookstream_matcher.worker import Matcher
from support import wait_until

LINGER_SECONDS = 2.0
APP_CREATED = "com.qlik.v1.app.created"
TENANT = "pipeline-tenant"


@dataclass(frozen=True)
class Installation:
    """One tenant with one webhook, on topics of the test's own (one events partition)."""

    settings: MatcherSettings
    webhook_id: str

    @property
    def events(self) -> TopicPartition:
        return TopicPartition(self.settings.topics.events, 0)

    async def publish(self, count: int) -> list[str]:
        """Publish `count` events of the tenant, one at a time; their ids."""
        ids = []
        async with EventPublisher(
            self.settings.kafka_bootstrap_servers, self.settings.topic_prefix
        ) as publisher:
            for _ in range(count):
                event = sample_event(APP_CREATED, TENANT, "u1")
                await publisher.publish(event)
                ids.append(event["eventId"])
        return ids

    async def routed_events(self) -> list[str]:
        """The event ids of every job on the webhook's topic, in order."""
        topic = self.settings.topics.deliveries(self.webhook_id)
        consumer = AIOKafkaConsumer(
            topic,
            **client_options(self.settings.kafka_bootstrap_servers),
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            partition = TopicPartition(topic, 0)
            end = (await consumer.end_offsets([partition]))[partition]
            ids: list[str] = []
            while len(ids) < end:
                batch = await consumer.getmany(timeout_ms=1000)
                ids += [DeliveryJob.loads(r.value).event.id for rs in batch.values() for r in rs]
            return ids
        finally:
            await consumer.stop()

    async def committed(self) -> int:
        """The matchers' committed offset of the events partition (0 if none)."""
        consumer = AIOKafkaConsumer(
            **client_options(self.settings.kafka_bootstrap_servers),
            group_id=self.settings.group_id,
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            return await consumer.committed(self.events) or 0
        finally:
            await consumer.stop()


@pytest.fixture
async def installation(servers: dict[str, str]) -> AsyncIterator[Installation]:
    settings = MatcherSettings(
        kafka_bootstrap_servers=servers["kafka"],
        topic_prefix=f"hst-pipeline-{secrets.token_hex(4)}",
        event_partitions=1,
        matcher_linger_seconds=LINGER_SECONDS,
        matcher_pipeline_depth=4,
    )
    webhook_id = str(uuid.uuid4())
    await create_missing_topics(
        settings, [*core_topics(settings), delivery_topic(settings, webhook_id)]
    )
    routes = TenantRoutes(TENANT, (Route(webhook_id, (APP_CREATED,), "tenant", "u1", True),))
    kafka = await started_producer(settings.kafka_bootstrap_servers)
    try:
        await kafka.send_and_wait(settings.topics.webhooks, routes.dumps(), key=TENANT.encode())
    finally:
        await kafka.stop()
    try:
        yield Installation(settings, webhook_id)
    finally:
        await delete_topics_under(settings.kafka_bootstrap_servers, settings.topic_prefix)


@contextlib.asynccontextmanager
async def running(settings: MatcherSettings, grace: float = 10.0) -> AsyncIterator[Matcher]:
    """A matcher routing in this process, its route table loaded; stopped (`stop()`, which
    settles its batches within `grace`) and closed at the end."""
    linger_ms = int(settings.matcher_linger_seconds * 1000)
    kafka = producer(settings.kafka_bootstrap_servers, linger_ms=linger_ms)
    matcher = Matcher(settings, kafka, Turns(settings.matcher_batch_timeout_seconds, grace))
    await matcher.start()
    loop = asyncio.create_task(matcher.run())
    try:
        await wait_until(lambda: matcher.started, timeout=30)
        yield matcher
    finally:
        matcher.stop()
        await loop
        await matcher.close()


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
            offset = await self._consumer.committed(self._installation.events)
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
