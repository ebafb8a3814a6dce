"""System events in both CloudEvents shapes producers use and receivers expect.

Producers may publish the legacy CloudEvents 0.1 shape Qlik Cloud delivers by default
(`cloudEventsVersion`, `eventId`, `extensions{tenantId, ...}`) or CloudEvents 1.0 structured JSON
(`specversion`, `id`, lowercase extension attributes). Both parse into one `Event`, which renders
either shape for delivery.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import orjson

LEGACY_VERSION = "0.1"
SPEC_VERSION = "1.0"

# The extension names whose camelCase spelling a lowercase 1.0 attribute cannot recover.
_KNOWN_EXTENSIONS = ("tenantId", "userId", "ownerId", "spaceId", "topLevelResourceId")
_LOWER_TO_EXTENSION = {name.lower(): name for name in _KNOWN_EXTENSIONS}
_CE1_CORE = {"specversion", "id", "time", "type", "source", "datacontenttype", "data", "subject"}


class InvalidEvent(ValueError):
    """A record that is not an event we can route; the message says why, for the DLQ."""


@dataclass(frozen=True)
class Event:
    """One system event, independent of the shape it arrived in."""

    id: str
    type: str
    time: str
    source: str
    extensions: dict[str, Any] = field(default_factory=dict)
    data: Any = None
    type_version: str = "1.0.0"
    content_type: str = "application/json"

    @property
    def tenant_id(self) -> str:
        """The tenant the event belongs to; parsing guarantees it is present."""
        return str(self.extensions["tenantId"])

    @property
    def user_ids(self) -> set[str]:
        """The owner and the acting user: who a `level=user` webhook may hear about."""
        return {str(self.extensions[k]) for k in ("ownerId", "userId") if self.extensions.get(k)}

    @classmethod
    def parse(cls, raw: bytes) -> "Event":
        """Parse either shape; raise `InvalidEvent` with a reason a person can act on."""
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidEvent(f"not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise InvalidEvent("not a JSON object")
        if "specversion" in doc:
            return cls._from_cloudevent(doc)
        if "cloudEventsVersion" in doc or "eventId" in doc:
            return cls._from_legacy(doc)
        raise InvalidEvent("neither CloudEvents 1.0 (specversion) nor 0.1 (cloudEventsVersion)")

    @classmethod
    def from_legacy(cls, doc: dict[str, Any]) -> "Event":
        """From an already decoded 0.1 document, such as the one inside a delivery job."""
        return cls._from_legacy(doc)

    @cached_property
    def legacy_json(self) -> bytes:
        """`to_legacy()` serialised once, however many webhooks the event goes to."""
        return orjson.dumps(self.to_legacy())

    @classmethod
    def _from_legacy(cls, doc: dict[str, Any]) -> "Event":
        extensions = doc.get("extensions") or {}
        if not isinstance(extensions, dict):
            raise InvalidEvent("extensions must be an object")
        return cls._checked(
            id=doc.get("eventId"),
            type=doc.get("eventType"),
            time=doc.get("eventTime"),
            source=doc.get("source"),
            extensions=extensions,
            data=doc.get("data"),
            type_version=doc.get("eventTypeVersion") or "1.0.0",
            content_type=doc.get("contentType") or "application/json",
            names={"id": "eventId", "type": "eventType", "tenantId": "extensions.tenantId"},
        )

    @classmethod
    def _from_cloudevent(cls, doc: dict[str, Any]) -> "Event":
        extensions = {
            _LOWER_TO_EXTENSION.get(key, key): value
            for key, value in doc.items()
            if key not in _CE1_CORE and key != "eventtypeversion"
        }
        return cls._checked(
            id=doc.get("id"),
            type=doc.get("type"),
            time=doc.get("time"),
            source=doc.get("source"),
            extensions=extensions,
            data=doc.get("data"),
            type_version=doc.get("eventtypeversion") or "1.0.0",
            content_type=doc.get("datacontenttype") or "application/json",
            names={"id": "id", "type": "type", "tenantId": "tenantid"},
        )

    @classmethod
    def _checked(cls, *, names: dict[str, str], **fields: Any) -> "Event":
        for key in ("id", "type"):
            if not isinstance(fields[key], str) or not fields[key]:
                raise InvalidEvent(f"{names[key]} is missing or not a string")
        if not fields["extensions"].get("tenantId"):
            raise InvalidEvent(f"{names['tenantId']} is missing")
        fields["time"] = fields["time"] or datetime.now(UTC).isoformat()
        fields["source"] = fields["source"] or "unknown"
        return cls(**fields)

    def to_legacy(self) -> dict[str, Any]:
        """The CloudEvents 0.1 shape Qlik Cloud delivers by default."""
        return {
            "cloudEventsVersion": LEGACY_VERSION,
            "source": self.source,
            "contentType": self.content_type,
            "eventId": self.id,
            "eventTime": self.time,
            "eventTypeVersion": self.type_version,
            "eventType": self.type,
            "extensions": self.extensions,
            "data": self.data,
        }

    def to_cloudevent(self) -> dict[str, Any]:
        """CloudEvents 1.0 structured JSON, extensions as lowercase top-level attributes."""
        doc: dict[str, Any] = {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "time": self.time,
            "type": self.type,
            "source": self.source,
            "datacontenttype": self.content_type,
            "eventtypeversion": self.type_version,
        }
        doc.update({key.lower(): value for key, value in self.extensions.items()})
        doc["data"] = self.data
        return doc

    def render(self, cloud_event: bool) -> bytes:
        """The exact body bytes a receiver gets, and that the signature covers."""
        return orjson.dumps(self.to_cloudevent()) if cloud_event else self.legacy_json
