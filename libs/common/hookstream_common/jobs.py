"""The unit of work the matcher hands the dispatcher, one per event and webhook."""

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

import orjson

from hookstream_common.events import Event
from hookstream_common.topics import is_webhook_id

TEST_EVENT_SOURCE = "com.hookstream.test"
TEST_EVENT_DESCRIPTION = "A test event sent on request from Hookstream; nothing happened."
LEGACY_ATTEMPT_KEY = "attempt"
"""The attempt number's key before the rename to `attemptNumber`. Read when a job has no
`attemptNumber` (one queued by the previous release and still in a topic), and written beside it
so a service of the previous release reads the right number during a rolling upgrade; stop
writing it once no such service runs."""
_DELIVERY_NAMESPACE = uuid.UUID("5b6c4f4e-9d0a-4c55-9a43-7f3d1e0c2b11")


def delivery_id_for(webhook_id: str, event_id: str) -> str:
    """Deterministic, so a job the matcher produces twice is recognised as one delivery."""
    return str(uuid.uuid5(_DELIVERY_NAMESPACE, f"{webhook_id}/{event_id}"))


@dataclass(frozen=True)
class DeliveryJob:
    """Deliver `event` to webhook `webhook_id`.

    Built by one constructor per cause: `for_event` (the matcher), `for_retry` (the dispatcher's
    retry path), `for_resend` (the API's resend), `for_recovery` (the API's recover worker) and
    `for_test` (the API's test event).
    """

    delivery_id: str
    webhook_id: str
    tenant_id: str
    event: Event
    triggered_at: datetime
    attempt_number: int = 1
    """Which attempt of the delivery this job makes, from 1 (an `Attempt` is its result)."""
    due_at: datetime | None = None
    retry_base: int = 0
    """Attempts made before a recovery re-queued the delivery; the schedule restarts after them."""

    @classmethod
    def for_event(cls, webhook_id: str, event: Event, triggered_at: datetime) -> "DeliveryJob":
        """A first attempt; all jobs of an event share `triggered_at`, so its body is kept once."""
        return cls(
            delivery_id=delivery_id_for(webhook_id, event.id),
            webhook_id=webhook_id,
            tenant_id=event.tenant_id,
            event=event,
            triggered_at=triggered_at,
        )

    @classmethod
    def for_retry(cls, failed: "DeliveryJob", due_at: datetime) -> "DeliveryJob":
        """The same delivery (same id) as its next attempt, due at `due_at`."""
        return replace(failed, attempt_number=failed.attempt_number + 1, due_at=due_at)

    @classmethod
    def for_resend(
        cls, webhook_id: str, tenant_id: str, event: Event, triggered_at: datetime
    ) -> "DeliveryJob":
        """A resend: a new delivery (a new id) of a stored event, a single attempt."""
        return cls(
            delivery_id=str(uuid.uuid4()),
            webhook_id=webhook_id,
            tenant_id=tenant_id,
            event=event,
            triggered_at=triggered_at,
        )

    @classmethod
    def for_test(
        cls, webhook_id: str, tenant_id: str, event_type: str, owner_id: str, triggered_at: datetime
    ) -> "DeliveryJob":
        """A test event: a sample of `event_type` that no producer published, a new delivery of a
        new event, a single attempt. Its data says it is a test, so a receiver can ignore it; its
        owner is the webhook's, so a `level=user` receiver sees the shape it will get."""
        event = Event(
            id=str(uuid.uuid4()),
            type=event_type,
            time=triggered_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            source=TEST_EVENT_SOURCE,
            extensions={"tenantId": tenant_id, "ownerId": owner_id, "userId": owner_id},
            data={"test": True, "description": TEST_EVENT_DESCRIPTION},
        )
        return cls.for_resend(webhook_id, tenant_id, event, triggered_at)

    @classmethod
    def for_recovery(
        cls,
        delivery_id: str,
        webhook_id: str,
        tenant_id: str,
        event: Event,
        triggered_at: datetime,
        attempts: int,
    ) -> "DeliveryJob":
        """A failed delivery queued again: same id and day, a full schedule after the `attempts`
        already made (its next attempt is `attempts + 1`, its schedule counts from there)."""
        return cls(
            delivery_id=delivery_id,
            webhook_id=webhook_id,
            tenant_id=tenant_id,
            event=event,
            triggered_at=triggered_at,
            attempt_number=attempts + 1,
            retry_base=attempts,
        )

    def dumps(self) -> bytes:
        """Serialise for a delivery topic."""
        return orjson.dumps(
            {
                "deliveryId": self.delivery_id,
                "webhookId": self.webhook_id,
                "tenantId": self.tenant_id,
                "triggeredAt": self.triggered_at,
                "attemptNumber": self.attempt_number,
                LEGACY_ATTEMPT_KEY: self.attempt_number,
                "dueAt": self.due_at,
                "retryBase": self.retry_base,
                "event": orjson.Fragment(self.event.legacy_json),
            }
        )

    @classmethod
    def loads(cls, raw: bytes) -> "DeliveryJob":
        """Parse what `dumps` wrote; a ValueError (or KeyError, TypeError) for anything else."""
        doc = orjson.loads(raw)
        if not is_webhook_id(doc["webhookId"]):
            raise ValueError("webhookId: is not a webhook id")
        return cls(
            delivery_id=doc["deliveryId"],
            webhook_id=doc["webhookId"],
            tenant_id=doc["tenantId"],
            event=Event.from_legacy(doc["event"]),
            triggered_at=datetime.fromisoformat(doc["triggeredAt"]),
            attempt_number=doc.get("attemptNumber", doc.get(LEGACY_ATTEMPT_KEY, 1)),
            due_at=datetime.fromisoformat(doc["dueAt"]) if doc.get("dueAt") else None,
            retry_base=doc.get("retryBase", 0),
        )
