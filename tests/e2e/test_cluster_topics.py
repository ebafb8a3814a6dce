"""Topics fit for a cluster (issue 19, point 3): the events and webhooks partition count is a
setting, created topics carry `min.insync.replicas` and their retention, dead letters their
own, and a matcher refuses to start on events and webhooks topics it cannot join."""

import secrets
from collections.abc import Iterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from hookstream_common.kafka import client_options, ensure_topics, partition_counts
from hookstream_common.settings import CommonSettings
from hookstream_common.topics import Topics
from hookstream_dev import infra
from hookstream_dev.stack import ServiceSet, delete_topics_under, free_port
from support import wait_until


@pytest.fixture
def matcher(settings_env: dict[str, str]) -> Iterator[ServiceSet]:
    """A matcher (not started) on a topic prefix of its own, with two event partitions and
    dead letters kept two days; its topics are deleted afterwards."""
    prefix = f"hst-topics-{secrets.token_hex(4)}"
    env = {
        **settings_env,
        "HOOKSTREAM_TOPIC_PREFIX": prefix,
        "HOOKSTREAM_EVENT_PARTITIONS": "2",
        "HOOKSTREAM_DLQ_RETENTION_HOURS": "48",
    }
    services = ServiceSet(
        env=env,
        ports={"matcher": free_port()},
        log_dir=infra.STATE_DIR / "test-logs" / prefix,
    )
    yield services
    services.stop_all()


async def _configs(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(**client_options(bootstrap))
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    [(_, _, _, _, entries)] = response.resources
    return {name: value for name, value, *_ in entries}


async def test_created_topics_take_the_partition_and_retention_settings(
    matcher: ServiceSet,
) -> None:
    matcher.start("matcher")
    bootstrap, prefix = (
        matcher.env["KAFKA_BOOTSTRAP_SERVERS"],
        matcher.env["HOOKSTREAM_TOPIC_PREFIX"],
    )
    topics = Topics(prefix)
    try:
        settings = CommonSettings(kafka_bootstrap_servers=bootstrap)
        counts = await partition_counts(settings, [topics.events, topics.webhooks])
        assert counts == {topics.events: 2, topics.webhooks: 2}
        events = await _configs(bootstrap, topics.events)
        assert events["min.insync.replicas"] == "1"
        assert events["retention.ms"] == str(168 * 3_600_000)
        assert (await _configs(bootstrap, topics.events_dlq))["retention.ms"] == str(48 * 3_600_000)
    finally:
        await delete_topics_under(bootstrap, prefix)


async def test_the_matcher_refuses_events_and_webhooks_topics_of_different_sizes(
    matcher: ServiceSet,
) -> None:
    bootstrap, prefix = (
        matcher.env["KAFKA_BOOTSTRAP_SERVERS"],
        matcher.env["HOOKSTREAM_TOPIC_PREFIX"],
    )
    topics = Topics(prefix)
    admin = AIOKafkaAdminClient(**client_options(bootstrap))
    await admin.start()
    try:
        await ensure_topics(admin, [NewTopic(topics.events, 2, 1), NewTopic(topics.webhooks, 3, 1)])
        process = matcher.start("matcher", wait=False)
        await wait_until(lambda: process.poll() is not None, timeout=60)
        assert process.poll() == 2, matcher.tail("matcher")
        assert "has 2 partitions and" in matcher.tail("matcher")
        assert "must be equal" in matcher.tail("matcher")
    finally:
        await admin.close()
        await delete_topics_under(bootstrap, prefix)
