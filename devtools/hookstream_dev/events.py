"""Events for development and tests: sample events of any catalogue type, and raw records for
tests that feed the pipeline what no producer should send. Producers use hookstream_common.sdk."""

import uuid
from datetime import UTC, datetime
from typing import Any

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


async def publish_raw(
    bootstrap_servers: str, topic_prefix: str, value: bytes, key: bytes | None = None
) -> None:
    """Put bytes on the events topic as they are, unchecked (EventPublisher refuses bad ones)."""
    raw = producer(bootstrap_servers)
    await raw.start()
    try:
        await raw.send_and_wait(Topics(topic_prefix).events, value, key=key)
    finally:
        await raw.stop()
