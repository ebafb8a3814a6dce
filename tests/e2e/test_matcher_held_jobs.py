"""A job whose topic the broker does not serve yet is held, not sent (`hookstream_matcher.holds`).

The broker is made to lag for real: the test creates a few hundred topics at the controller and
then the late webhook's topic, so the broker, applying creations at its own pace, serves the
late topic seconds after the controller says it exists (what the API's relay does to the matcher
after thousands of webhooks are created). The matcher runs in this process. An event of another
tenant, behind the late webhook's event in the same partition, must become a job at once; the
late one once its topic is served; a matcher stopped meanwhile must not commit past it, a
rebalance drops the hold for the partition's owner to route again, a topic deleted meanwhile
dead-letters the event, and at the limit of held jobs their partition waits.
"""

import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass

import prometheus_client
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from private_matcher import PrivateTopics, private_topics, running

from hookstream_common.kafka import client_options, create_missing_topics, delivery_topic, new_topic
from hookstream_matcher.settings import MatcherSettings
from support import wait_until

FILLER_TOPICS = 600
"""Topics created ahead of the late one: at ~50-100 a second the broker serves it seconds late."""
PROMPT_SECONDS = 3.0
"""The other tenant's job is on the broker within this; sending the late job first blocked the
batch for the producer's request timeout (5 s) and then failed it."""


@dataclass(frozen=True)
class Installation:
    """Two tenants on topics of the test's own, one webhook each (tenant id = `t-<webhook
    id>`), the second one's topic not created yet."""

    topics: PrivateTopics
    prompt: str
    late: str

    @property
    def settings(self) -> MatcherSettings:
        return self.topics.settings

    async def publish(self, webhook_id: str) -> None:
        """Publish one event of the webhook's tenant."""
        await self.topics.publish(f"t-{webhook_id}")

    async def committed(self) -> int:
        return await self.topics.committed()

    async def jobs(self, webhook_id: str) -> int:
        """How many jobs the webhook's topic holds (0 while the broker does not serve it)."""
        partition = TopicPartition(self.settings.topics.deliveries(webhook_id), 0)
        consumer = AIOKafkaConsumer(**client_options(self.settings.kafka_bootstrap_servers))
        await consumer.start()
        try:
            if partition.topic not in await consumer.topics():
                return 0
            return (await consumer.end_offsets([partition]))[partition]
        finally:
            await consumer.stop()

    async def sent_at(self, webhook_id: str) -> list[int]:
        """When each job on the webhook's topic was produced (ms), in order."""
        records = await self.topics.read(self.settings.topics.deliveries(webhook_id))
        return [record.timestamp for record in records]

    async def dead_letter_reasons(self) -> list[str]:
        """The reasons of the events' dead letters, in order."""
        records = await self.topics.read(self.settings.topics.events_dlq)
        return [dict(record.headers)["hookstream-dlq-reason"].decode() for record in records]

    async def create_late_topic(self) -> None:
        """Create many topics at the controller, then the late webhook's: the controller says
        it exists at once; the broker serves it only after the others."""
        settings = self.settings
        admin = AIOKafkaAdminClient(**client_options(settings.kafka_bootstrap_servers))
        await admin.start()
        try:
            filler = [
                new_topic(settings, f"{settings.topic_prefix}.filler.{i}")
                for i in range(FILLER_TOPICS)
            ]
            await admin.create_topics(filler)
        finally:
            await admin.close()
        await create_missing_topics(settings, [delivery_topic(settings, self.late)])

    async def delete_late_topic(self) -> None:
        """Delete the late webhook's topic at the controller (as the janitor does after the
        webhook is deleted)."""
        admin = AIOKafkaAdminClient(**client_options(self.settings.kafka_bootstrap_servers))
        await admin.start()
        try:
            await admin.delete_topics([self.settings.topics.deliveries(self.late)])
        finally:
            await admin.close()


@pytest.fixture
async def installation(servers: dict[str, str]) -> AsyncIterator[Installation]:
    prompt, late = str(uuid.uuid4()), str(uuid.uuid4())
    routes = {prompt: f"t-{prompt}", late: f"t-{late}"}
    async with private_topics(servers["kafka"], "held", routes, [prompt]) as topics:
        yield Installation(topics, prompt, late)


def held() -> float:
    return prometheus_client.REGISTRY.get_sample_value("hookstream_matcher_held_jobs")


async def _late_event_then_prompt_one(installation: Installation) -> None:
    """With the matcher running and its producer warm: the late webhook's topic created, an
    event for it, then one for the other tenant, which is a job within `PROMPT_SECONDS`
    while the late one is held."""
    await installation.publish(installation.prompt)
    await wait_until(lambda: installation.jobs(installation.prompt), timeout=30)
    await installation.create_late_topic()
    await installation.publish(installation.late)
    await installation.publish(installation.prompt)
    await wait_until(
        lambda: _equals(installation.jobs(installation.prompt), 2), timeout=PROMPT_SECONDS
    )
    assert held() == 1, "the late webhook's job waits for its topic"
    assert await installation.jobs(installation.late) == 0


async def _equals(count: Awaitable[int], expected: int) -> bool:
    return await count == expected


async def test_a_job_for_a_topic_not_served_yet_is_held_and_sent_once_it_is(
    installation: Installation,
) -> None:
    async with running(installation.settings):
        await _late_event_then_prompt_one(installation)
        assert await installation.committed() <= 1, "never past the held event (offset 1)"
        await wait_until(lambda: installation.jobs(installation.late), timeout=60)
        await wait_until(lambda: _equals(installation.committed(), 3), timeout=10)
        assert held() == 0
    assert await installation.jobs(installation.late) == 1


async def test_a_matcher_stopped_while_a_job_is_held_leaves_its_event_to_the_next(
    installation: Installation,
) -> None:
    async with running(installation.settings):
        await _late_event_then_prompt_one(installation)
    assert await installation.committed() == 1, "the held event is routed again"
    async with running(installation.settings):
        await wait_until(lambda: installation.jobs(installation.late), timeout=60)
        await wait_until(lambda: _equals(installation.committed(), 3), timeout=10)
    assert await installation.jobs(installation.late) == 1


async def test_at_the_limit_of_held_jobs_their_partition_waits_for_them(
    installation: Installation,
) -> None:
    settings = installation.settings.model_copy(update={"matcher_max_held_jobs": 1})
    async with running(settings):
        await installation.publish(installation.prompt)
        await wait_until(lambda: installation.jobs(installation.prompt), timeout=30)
        await installation.create_late_topic()
        await installation.publish(installation.late)
        await wait_until(lambda: held() == 1, timeout=PROMPT_SECONDS, interval=0.01)
        await installation.publish(installation.prompt)
        await wait_until(lambda: _equals(installation.jobs(installation.prompt), 2), timeout=60)
        await wait_until(lambda: _equals(installation.committed(), 3), timeout=10)
    [late] = await installation.sent_at(installation.late)
    prompt = await installation.sent_at(installation.prompt)
    assert prompt[1] >= late, "the paused partition was read again only once the job was sent"


async def test_a_held_job_whose_topic_is_deleted_meanwhile_is_dead_lettered(
    installation: Installation,
) -> None:
    async with running(installation.settings):
        await installation.publish(installation.prompt)
        await wait_until(lambda: installation.jobs(installation.prompt), timeout=30)
        await installation.create_late_topic()
        await installation.publish(installation.late)
        await wait_until(lambda: held() == 1, timeout=PROMPT_SECONDS, interval=0.01)
        await installation.delete_late_topic()
        # The controller is asked again about a held topic after 10 s.
        reasons = await wait_until(installation.dead_letter_reasons, timeout=30)
        assert reasons == [f"the delivery topic of webhook {installation.late} does not exist"]
        await wait_until(lambda: _equals(installation.committed(), 2), timeout=10)
        assert held() == 0


async def test_a_rebalance_drops_the_holds_and_the_owner_routes_the_event_again(
    installation: Installation,
) -> None:
    settings = installation.settings
    async with running(settings):
        await _late_event_then_prompt_one(installation)
        async with running(settings):  # joins the group: the partition is revoked and assigned
            await wait_until(lambda: installation.jobs(installation.late), timeout=60)
            await wait_until(lambda: _equals(installation.committed(), 3), timeout=30)
    assert await installation.jobs(installation.late) == 1, "the dropped hold was not sent"
