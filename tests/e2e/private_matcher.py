"""A matcher running in the test's process on topics of the test's own, on the real broker.

For the e2e tests of the matcher's batches (`hookstream_matcher.pipeline`, `.holds`): each test
gets its own topic prefix, so its events partition, consumer group and delivery topics are its
alone, and the matcher's gauges are read from this process's registry.
"""

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

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

APP_CREATED = "com.qlik.v1.app.created"


@dataclass(frozen=True)
class PrivateTopics:
    """The core topics of a prefix of the test's own (one events partition), read and written
    the way an outsider would."""

    settings: MatcherSettings

    @property
    def events(self) -> TopicPartition:
        return TopicPartition(self.settings.topics.events, 0)

    async def publish(self, tenant: str, count: int = 1) -> list[str]:
        """Publish `count` events of the tenant, one at a time; their ids."""
        ids = []
        async with EventPublisher(
            self.settings.kafka_bootstrap_servers, self.settings.topic_prefix
        ) as publisher:
            for _ in range(count):
                event = sample_event(APP_CREATED, tenant, "u1")
                await publisher.publish(event)
                ids.append(event["eventId"])
        return ids

    async def read(self, topic: str) -> list[ConsumerRecord]:
        """Every record of the topic's first partition, in order."""
        partition = TopicPartition(topic, 0)
        consumer = AIOKafkaConsumer(
            topic,
            **client_options(self.settings.kafka_bootstrap_servers),
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            end = (await consumer.end_offsets([partition]))[partition]
            records: list[ConsumerRecord] = []
            while len(records) < end:
                batch = await consumer.getmany(timeout_ms=1000)
                records += [r for rs in batch.values() for r in rs]
            return records
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


@contextlib.asynccontextmanager
async def private_topics(
    kafka: str, name: str, routes: dict[str, str], created: list[str], **settings: Any
) -> AsyncIterator[PrivateTopics]:
    """Topics under `hst-<name>-<random>`: the core ones and the delivery topics of `created`,
    with `routes` (webhook id → its tenant, one webhook each) on the webhooks topic; all
    deleted after. `settings` are further `MatcherSettings` fields."""
    matcher_settings = MatcherSettings(
        kafka_bootstrap_servers=kafka,
        topic_prefix=f"hst-{name}-{secrets.token_hex(4)}",
        event_partitions=1,
        **settings,
    )
    await create_missing_topics(
        matcher_settings,
        [*core_topics(matcher_settings), *(delivery_topic(matcher_settings, w) for w in created)],
    )
    sender = await started_producer(kafka)
    try:
        for webhook_id, tenant in routes.items():
            table = TenantRoutes(tenant, (Route(webhook_id, (APP_CREATED,), "tenant", "u1", True),))
            await sender.send_and_wait(
                matcher_settings.topics.webhooks, table.dumps(), key=tenant.encode()
            )
    finally:
        await sender.stop()
    try:
        yield PrivateTopics(matcher_settings)
    finally:
        await delete_topics_under(kafka, matcher_settings.topic_prefix)


@contextlib.asynccontextmanager
async def running(settings: MatcherSettings, grace: float = 10.0) -> AsyncIterator[Matcher]:
    """A matcher routing in this process, its route table loaded; stopped (`stop()`, which
    settles its batches within `grace`) and closed at the end. Its producer lingers as long
    as the settings' `matcher_linger_seconds`."""
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
