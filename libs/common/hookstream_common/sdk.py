"""The producer SDK: how a platform service publishes events for webhooks to deliver."""

from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from opentelemetry import trace
from opentelemetry.trace import SpanKind, TracerProvider

from hookstream_common.events import Event
from hookstream_common.kafka import started_producer
from hookstream_common.resilience import keep_trying
from hookstream_common.settings import KafkaSecurity
from hookstream_common.topics import Topics
from hookstream_common.tracing import inject


class EventPublisher:
    """Publishes events to the events topic, keyed by tenant id as the matcher expects.

    Use as an async context manager; `publish` returns once the broker has the event durably.
    `security` is how to reach a secured cluster (TLS, SASL); by default it is read from the
    `KAFKA_*` variables, as the services read it.

    Entering connects, retrying with backoff (a broker that is starting, or a listener that is
    slow to answer its first handshake, is not an error) for at most `connect_timeout` seconds;
    then the last error is raised with a note saying what to check.

    Each publish is a producer span of the application's OpenTelemetry tracer (`tracer_provider`,
    default the global one), and its W3C `traceparent` goes in the record's headers, so the
    deliveries of the event continue the application's trace. Without OpenTelemetry configured
    the span is a no-op and no header is written.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic_prefix: str = "hookstream",
        security: KafkaSecurity | None = None,
        tracer_provider: TracerProvider | None = None,
        connect_timeout: float = 30.0,
    ) -> None:
        self._topic = Topics(topic_prefix).events
        self._bootstrap = bootstrap_servers
        self._security = security
        self._connect_timeout = connect_timeout
        self._producer: AIOKafkaProducer | None = None
        self._tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)

    async def __aenter__(self) -> "EventPublisher":
        self._producer = await keep_trying(
            lambda: started_producer(self._bootstrap, self._security),
            "Kafka (event publisher)",
            limit=self._connect_timeout,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish(self, event: dict[str, Any]) -> str:
        """Validate and publish one event (either CloudEvents shape); return its id."""
        if self._producer is None:
            raise RuntimeError("EventPublisher.publish outside `async with EventPublisher(...)`")
        raw = orjson.dumps(event)
        parsed = Event.parse(raw)
        attributes = {
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": self._topic,
            "messaging.message.id": parsed.id,
        }
        with self._tracer.start_as_current_span(
            f"send {self._topic}", kind=SpanKind.PRODUCER, attributes=attributes
        ):
            await self._producer.send_and_wait(
                self._topic, raw, key=parsed.tenant_id.encode(), headers=inject([]) or None
            )
        return parsed.id
