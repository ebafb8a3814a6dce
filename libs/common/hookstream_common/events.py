"""System events in both CloudEvents shapes producers use and receivers expect.

Producers may publish the legacy CloudEvents 0.1 shape Qlik Cloud delivers by default
(`cloudEventsVersion`, `eventId`, `extensions{tenantId, ...}`) or CloudEvents 1.0 structured JSON
(`specversion`, `id`, lowercase extension attributes). Both parse into one `Event`, which renders
either shape for delivery.

Every input is bounded, and whatever the parser accepts can be queued, sent and stored: an event
over `max_bytes` (default 1 MiB), nested deeper than `MAX_DEPTH`, with an attribute longer than
`MAX_ATTRIBUTE_CHARS`, or with a NUL character anywhere (Postgres text and jsonb cannot hold
U+0000) is refused with the reason, and so is an `eventTime` that is not an RFC 3339 string
with an offset: every event's time converts to an aware UTC datetime.
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

MAX_EVENT_BYTES = 1024 * 1024
MAX_DEPTH = 64
"""Levels of nesting; orjson cannot write more than 254, and jobs wrap the event in two more."""
MAX_ATTRIBUTE_CHARS = 256
"""Longest id, type, source, time, version, content type, or known extension value."""


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
    def parse(cls, raw: bytes, max_bytes: int = MAX_EVENT_BYTES) -> "Event":
        """Parse either shape; raise `InvalidEvent` with a reason a person can act on."""
        if len(raw) > max_bytes:
            raise InvalidEvent(f"event of {len(raw)} bytes is over the limit of {max_bytes}")
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidEvent(f"not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise InvalidEvent("not a JSON object")
        problem = _unstorable(doc, raw)
        if problem:
            raise InvalidEvent(problem)
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
            names=_LEGACY_NAMES,
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
            names=_CE1_NAMES,
        )

    @classmethod
    def _checked(cls, *, names: dict[str, str], **fields: Any) -> "Event":
        for key in ("id", "type"):
            if not isinstance(fields[key], str) or not fields[key]:
                raise InvalidEvent(f"{names[key]} is missing or not a string")
        if not fields["extensions"].get("tenantId"):
            raise InvalidEvent(f"{names['tenantId']} is missing")
        for key in ("id", "type", "source", "type_version", "content_type"):
            _check_attribute(names[key], fields[key])
        for key in _KNOWN_EXTENSIONS:
            _check_attribute(names[key], fields["extensions"].get(key))
        fields["time"] = _aware_time(names["time"], fields["time"])
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


# What each shape calls an attribute, for reasons a producer recognises.
_LEGACY_NAMES = {
    "id": "eventId",
    "type": "eventType",
    "time": "eventTime",
    "source": "source",
    "type_version": "eventTypeVersion",
    "content_type": "contentType",
    **{name: f"extensions.{name}" for name in _KNOWN_EXTENSIONS},
}
_CE1_NAMES = {
    "id": "id",
    "type": "type",
    "time": "time",
    "source": "source",
    "type_version": "eventtypeversion",
    "content_type": "datacontenttype",
    **{name: name.lower() for name in _KNOWN_EXTENSIONS},
}


def _check_attribute(name: str, value: Any) -> None:
    """An optional attribute is absent, or a string of bounded length."""
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidEvent(f"{name} is not a string")
    if len(value) > MAX_ATTRIBUTE_CHARS:
        raise InvalidEvent(f"{name} is {len(value)} characters; at most {MAX_ATTRIBUTE_CHARS}")


def _aware_time(name: str, value: Any) -> str:
    """The event's time as given, checked to be aware and convertible to UTC; now when absent.

    A time without an offset is refused rather than guessed: its producer's zone is unknown.
    """
    if value is None or value == "":
        return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if not isinstance(value, str) or len(value) > MAX_ATTRIBUTE_CHARS:
        raise InvalidEvent(f"{name} is not an RFC 3339 timestamp string")
    try:
        when = datetime.fromisoformat(value)
        if when.tzinfo is not None:
            when.astimezone(UTC)  # raises for a time whose UTC form is outside years 1-9999
            return value
    except (ValueError, OverflowError):
        raise InvalidEvent(f"{name} is not an RFC 3339 timestamp: {value!r}") from None
    raise InvalidEvent(f"{name} has no UTC offset (like Z or +02:00): {value!r}")


def _unstorable(doc: dict[str, Any], raw: bytes) -> str | None:
    """Why the document could not be queued or stored as it is, or None.

    Iterative, so nesting deeper than Python's recursion limit cannot raise here. A NUL can only
    arrive escaped, so strings are searched only when the raw bytes hold a `\\u0000`.
    """
    may_hold_nul = b"\\u0000" in raw
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        items = value.values() if isinstance(value, dict) else value
        if may_hold_nul and isinstance(value, dict) and any("\x00" in key for key in value):
            return _NUL
        for item in items:
            if isinstance(item, dict | list):
                stack.append((item, depth + 1))
            elif may_hold_nul and isinstance(item, str) and "\x00" in item:
                return _NUL
    return None


_NUL = "contains a NUL character (\\u0000), which history cannot store"
