"""Kafka plumbing two or more services need: topic creation and a producer."""

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
)

from hookstream_common.settings import CommonSettings
from hookstream_common.topics import Topics

EVENT_PARTITIONS = 4
"""`events` and `webhooks` must have the same count: the matcher joins them per partition."""


GROUP_TIMEOUTS = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1500}
"""A killed member's partitions move after about 6 s instead of aiokafka's default 10 s."""


def producer(bootstrap: str, **overrides: object) -> AIOKafkaProducer:
    """An idempotent producer that waits for every in-sync replica: nothing acknowledged is lost."""
    options: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


async def ensure_topics(admin: AIOKafkaAdminClient, topics: list[NewTopic]) -> None:
    """Create the topics that are missing; existing ones are left as they are (the broker
    says so per topic: cheaper than listing every topic first, which grows with webhooks).

    Raises if the broker refused any of them (per-topic errors come back in the response, not
    as an exception), so a caller never goes on as if a topic existed when it does not.
    """
    if not topics:
        return
    response = await admin.create_topics(topics)
    raise_topic_errors(
        [(name, code) for name, code, *_ in response.topic_errors], {TopicAlreadyExistsError}
    )


async def create_missing_topics(bootstrap: str, topics: list[NewTopic]) -> None:
    """`ensure_topics` on an admin client of its own, for a service's start-up."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await ensure_topics(admin, topics)
    finally:
        await admin.close()


async def delete_topics(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """Delete the topics; one that no longer exists counts as deleted."""
    response = await admin.delete_topics(names)
    raise_topic_errors(
        [(name, code) for name, code, *_ in response.topic_error_codes],
        {UnknownTopicOrPartitionError},
    )


def raise_topic_errors(results: list[tuple[str, int]], harmless: set[type[KafkaError]]) -> None:
    """Raise the first per-topic error of an admin response that is not in `harmless`."""
    for name, code in results:
        if code == 0:
            continue
        error = for_code(code)
        if error not in harmless:
            raise error(f"topic {name}")


WAKE_UP_RETENTION_MS = 3_600_000
"""A shard's new owner reads its wake-ups from the end (`hookstream_common.shards`)."""


def core_topics(settings: CommonSettings) -> list[NewTopic]:
    """The topics every installation has, with the settings the design relies on."""
    topics, replication = settings.topics, settings.kafka_replication_factor
    return [
        NewTopic(
            topics.dispatch_shards,
            settings.dispatch_shards,
            replication,
            topic_configs={"retention.ms": str(WAKE_UP_RETENTION_MS)},
        ),
        NewTopic(topics.events, EVENT_PARTITIONS, replication),
        NewTopic(topics.events_dlq, 1, replication),
        NewTopic(
            topics.webhooks,
            EVENT_PARTITIONS,
            replication,
            topic_configs={"cleanup.policy": "compact"},
        ),
    ]


def delivery_topic(topics: Topics, webhook_id: str, replication: int) -> NewTopic:
    """One partition: a webhook's first attempts are delivered in order."""
    return NewTopic(topics.deliveries(webhook_id), 1, replication)
