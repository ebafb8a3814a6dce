"""Kafka plumbing two or more services need: connection options, topic creation, a producer,
the consumer of a service's group.

`client_options` is the one place a Kafka client's connection is configured: every producer,
consumer and admin client of the services, the SDK, the tools and the tests is built from it, so
TLS and SASL (decision 9) are set once, from `KafkaSecurity`.
"""

import importlib

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import AbstractTokenProvider
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
)
from aiokafka.helpers import create_ssl_context

from hookstream_common.kafka_failover import with_failover
from hookstream_common.settings import CommonSettings, KafkaSecurity

GROUP_TIMEOUTS = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 1500,
    "rebalance_timeout_ms": 60_000,
}
"""A killed member's partitions move after about 6 s instead of aiokafka's default 10 s.

The rebalance timeout is how long the coordinator waits for a live member to rejoin, that is,
for its revoke callback to return; aiokafka defaults it to the session timeout (6 s). Releasing
takes longer: the dispatcher's `release_shards` lets jobs in flight finish for up to
HOOKSTREAM_SHUTDOWN_GRACE_SECONDS (20 s) and then commits, and the matcher's revoke waits for
the turn in hand, up to HOOKSTREAM_MATCHER_BATCH_TIMEOUT_SECONDS (30 s). A member still
releasing at the timeout is dropped from the group and rejoins as a new one, which moves every
partition again. A killed member is still dropped after the session timeout: it sends no
heartbeat, and only members that have rejoined are spared that."""

FRESH_METADATA = {"metadata_max_age_ms": 5000}
"""For a consumer that looks up where to start reading whenever it is assigned partitions (a
seek, or the reset of a partition without a committed offset): aiokafka 0.14 does not refresh
its metadata when the old leader answers that lookup "not leader", so after a broker lost its
leaderships (a freeze, a restart) it asked that broker again until the 5-minute refresh. Seen
on the cluster: the matcher's route table took 40 s to load, and the dispatcher, stuck in its
shard assignment, was dropped from its group and rejoined every 12 s. Not for admin clients:
with no topics of their own they would ask for every topic's metadata."""


def group_member(
    connection: dict[str, object], group_id: str, auto_offset_reset: str
) -> AIOKafkaConsumer:
    """A consumer for one of the services' consumer groups (the matcher's events, the
    dispatchers' shards): it commits by hand, may hold a batch up to 10 minutes between polls,
    and has the group timeouts, the fresh metadata and the failover client above.
    `connection`: `client_options`."""
    return with_failover(
        AIOKafkaConsumer(
            **connection,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset=auto_offset_reset,
            max_poll_interval_ms=600_000,
            **GROUP_TIMEOUTS,
            **FRESH_METADATA,
        )
    )


def client_options(bootstrap: str, security: KafkaSecurity | None = None) -> dict[str, object]:
    """The connection arguments of any aiokafka client (producer, consumer, admin, client),
    the request timeout included.

    `security` defaults to the `KAFKA_*` variables of the environment, so tools and tests that
    only know an address still connect the way the installation is configured.
    """
    security = security if security is not None else KafkaSecurity()
    options: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "security_protocol": security.security_protocol,
        "request_timeout_ms": security.request_timeout_ms,
    }
    if security.tls:
        context = create_ssl_context(
            cafile=security.ssl_cafile,
            certfile=security.ssl_certfile,
            keyfile=security.ssl_keyfile,
            password=security.key_password or "",  # never OpenSSL's prompt on a terminal
        )
        context.check_hostname = security.ssl_check_hostname
        options["ssl_context"] = context
    if security.sasl_mechanism is not None:
        options["sasl_mechanism"] = security.sasl_mechanism
        if security.sasl_mechanism == "OAUTHBEARER":
            options["sasl_oauth_token_provider"] = token_provider(
                security.sasl_oauth_token_provider or ""
            )
        else:
            options["sasl_plain_username"] = security.username
            options["sasl_plain_password"] = security.password
    return options


def token_provider(path: str) -> AbstractTokenProvider:
    """The OAUTHBEARER token provider named `package.module:name` (a class or a factory
    that takes no argument), so any identity provider plugs in without a change here."""
    module, _, name = path.partition(":")
    if not module or not name:
        raise ValueError(f"KAFKA_SASL_OAUTH_TOKEN_PROVIDER {path!r} is not `package.module:name`")
    provider = getattr(importlib.import_module(module), name)()
    if not isinstance(provider, AbstractTokenProvider):
        raise TypeError(f"{path} did not return an aiokafka.abc.AbstractTokenProvider")
    return provider


def producer(
    bootstrap: str, security: KafkaSecurity | None = None, **overrides: object
) -> AIOKafkaProducer:
    """An idempotent producer that waits for every in-sync replica: nothing acknowledged is
    lost. It asks nothing of a broker that stopped answering (`kafka_failover`)."""
    options: dict[str, object] = {
        **client_options(bootstrap, security),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
    }
    options.update(overrides)
    return with_failover(AIOKafkaProducer(**options))


async def started_producer(
    bootstrap: str, security: KafkaSecurity | None = None
) -> AIOKafkaProducer:
    """A new `producer`, started; one whose start failed is stopped (closing what it opened) and
    the error raised. A new one per try, since aiokafka cannot start a producer again."""
    kafka = producer(bootstrap, security)
    try:
        await kafka.start()
    except BaseException:
        await kafka.stop()
        raise
    return kafka


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


async def create_missing_topics(settings: CommonSettings, topics: list[NewTopic]) -> None:
    """`ensure_topics` on an admin client of its own, for a service's start-up."""
    admin = with_failover(
        AIOKafkaAdminClient(
            **client_options(settings.kafka_bootstrap_servers, settings.kafka_security)
        )
    )
    await admin.start()
    try:
        await ensure_topics(admin, topics)
    finally:
        await admin.close()


async def partition_counts(settings: CommonSettings, names: list[str]) -> dict[str, int]:
    """How many partitions each of the topics has; a topic that does not exist is absent."""
    admin = with_failover(
        AIOKafkaAdminClient(
            **client_options(settings.kafka_bootstrap_servers, settings.kafka_security)
        )
    )
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}


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


def new_topic(
    settings: CommonSettings,
    name: str,
    partitions: int = 1,
    dead_letters: bool = False,
    configs: dict[str, str] | None = None,
) -> NewTopic:
    """A topic as Hookstream creates every topic: replicated `kafka_replication_factor` times,
    writable with one replica down (`min.insync.replicas` = replication - 1, at least 1: with
    `acks=all` a write then survives losing any one broker), and kept `topic_retention_hours`,
    or `dlq_retention_hours` for dead letters, which people read later."""
    replication = settings.kafka_replication_factor
    hours = settings.dlq_retention_hours if dead_letters else settings.topic_retention_hours
    base = {
        "min.insync.replicas": str(max(1, replication - 1)),
        "retention.ms": str(int(hours * 3_600_000)),
    }
    return NewTopic(name, partitions, replication, topic_configs={**base, **(configs or {})})


def core_topics(settings: CommonSettings) -> list[NewTopic]:
    """The topics every installation has, with the settings the design relies on."""
    topics = settings.topics
    return [
        new_topic(
            settings,
            topics.dispatch_shards,
            settings.dispatch_shards,
            configs={"retention.ms": str(WAKE_UP_RETENTION_MS)},
        ),
        new_topic(settings, topics.events, settings.event_partitions),
        new_topic(settings, topics.events_dlq, dead_letters=True),
        new_topic(
            settings,
            topics.webhooks,
            settings.event_partitions,
            configs={"cleanup.policy": "compact"},
        ),
    ]


def delivery_topic(settings: CommonSettings, webhook_id: str) -> NewTopic:
    """One partition: a webhook's first attempts are delivered in order."""
    return new_topic(settings, settings.topics.deliveries(webhook_id))
