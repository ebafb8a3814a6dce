"""The producer SDK: how a platform service publishes events for webhooks to deliver."""

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from hookstream_common.events import Event
from hookstream_common.kafka import producer
from hookstream_common.topics import Topics


def sample_event(
    event_type: str,
    tenant_id: str,
    user_id: str = "demo-user",
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A plausible event of any catalogue type, in the legacy CloudEvents 0.1 shape."""
    resource_id = str(uuid.uuid4())
    return {
        "cloudEventsVersion": "0.1",
        "source": "com.qlik/hookstream-sdk",
        "contentType": "application/json",
        "eventId": str(uuid.uuid4()),
        "eventTime": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventTypeVersion": "1.0.0",
        "eventType": event_type,
        "extensions": {
            "tenantId": tenant_id,
            "userId": user_id,
            "ownerId": user_id,
            "topLevelResourceId": resource_id,
        },
        "data": data if data is not None else {"id": resource_id, "name": "Sales dashboard"},
    }


class EventPublisher:
    """Publishes events to the events topic, keyed by tenant id as the matcher expects.

    Use as an async context manager; `publish` returns once the broker has the event durably.
    """

    def __init__(self, bootstrap_servers: str, topic_prefix: str = "hookstream") -> None:
        self._topic = Topics(topic_prefix).events
        self._producer = producer(bootstrap_servers)

    async def __aenter__(self) -> "EventPublisher":
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def publish(self, event: dict[str, Any]) -> str:
        """Validate and publish one event (either CloudEvents shape); return its id."""
        raw = orjson.dumps(event)
        parsed = Event.parse(raw)
        await self._producer.send_and_wait(self._topic, raw, key=parsed.tenant_id.encode())
        return parsed.id

    async def publish_raw(self, value: bytes, key: bytes | None = None) -> None:
        """Publish bytes as they are, unchecked: for tests and tools that feed bad input."""
        await self._producer.send_and_wait(self._topic, value, key=key)
