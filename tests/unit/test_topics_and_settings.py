import pytest
from aiokafka import AIOKafkaConsumer

from hookstream_common.kafka import GROUP_TIMEOUTS
from hookstream_common.settings import CommonSettings
from hookstream_common.topics import Topics
from hookstream_dispatcher.settings import DispatcherSettings
from hookstream_matcher.settings import MatcherSettings


def test_topic_names() -> None:
    topics = Topics("hs")
    assert topics.events == "hs.events"
    assert topics.events_dlq == "hs.events.dlq"
    assert topics.webhooks == "hs.webhooks"
    assert topics.deliveries("abc") == "hs.deliveries.abc"


def test_the_webhook_id_of_a_delivery_topic() -> None:
    topics = Topics("hs.x")
    assert topics.webhook_id_of(topics.deliveries("0b5c-11")) == "0b5c-11"
    assert topics.webhook_id_of("hs.x.deliveries.w1") == "w1"
    for other in ("hs.x.events", "hs.x.webhooks", "hsAx.deliveries.1"):
        assert topics.webhook_id_of(other) is None


def test_infrastructure_addresses_use_the_conventional_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/x")
    monkeypatch.setenv("HOOKSTREAM_TOPIC_PREFIX", "acme")
    settings = CommonSettings()
    assert settings.kafka_bootstrap_servers == "k1:9092,k2:9092"
    assert settings.database_url == "postgresql://db/x"
    assert settings.topics.events == "acme.events"


def test_dispatcher_defaults_and_static_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKSTREAM_STATIC_HOSTS", "a.test=127.0.0.1, b.test=::1")
    settings = DispatcherSettings()
    assert settings.user_agent == "Qlik Webhook"
    assert settings.request_timeout_seconds == 10.0
    assert settings.connect_timeout_seconds == 5.0
    assert settings.allow_networks == ""
    assert settings.static_host_map() == {"a.test": "127.0.0.1", "b.test": "::1"}
    assert settings.dispatcher_group_id == "hookstream-dispatcher"


def test_a_repeated_library_error_is_logged_once_per_interval() -> None:
    import logging

    from hookstream_common.logging import OncePerInterval

    gate = OncePerInterval("aiokafka", seconds=10)

    def record(name: str, msg: str, at: float) -> logging.LogRecord:
        line = logging.LogRecord(name, logging.ERROR, __file__, 1, msg, None, None)
        line.created = at
        return line

    assert gate.filter(record("aiokafka.client", "Unable connect to node %s", 100.0))
    assert not gate.filter(record("aiokafka.client", "Unable connect to node %s", 105.0))
    assert gate.filter(record("aiokafka.client", "another message", 105.0))
    assert gate.filter(record("hookstream_api", "Unable connect to node %s", 105.0))
    assert gate.filter(record("aiokafka.client", "Unable connect to node %s", 111.0))


async def test_a_member_releasing_its_partitions_is_given_time_to_rejoin() -> None:
    """The rebalance timeout outlasts the longest release with the default settings, and the
    installed aiokafka takes it (it defaulted to the 6 s session timeout)."""
    dispatcher, matcher = DispatcherSettings(), MatcherSettings()
    longest = max(dispatcher.shutdown_grace_seconds, matcher.matcher_batch_timeout_seconds)
    assert GROUP_TIMEOUTS["rebalance_timeout_ms"] > longest * 1000
    consumer = AIOKafkaConsumer(bootstrap_servers="localhost:1", group_id="g", **GROUP_TIMEOUTS)
    assert consumer._rebalance_timeout_ms == GROUP_TIMEOUTS["rebalance_timeout_ms"]
    await consumer.stop()  # never started: nothing to leave
