"""The event types webhooks can subscribe to: Qlik's, Hookstream's operational events (category
`webhooks`, see hookstream_common.operational), plus any a deployment adds.

A platform that publishes events of its own lists them in a JSON file named by
`HOOKSTREAM_EVENT_TYPES_FILE`: an array of `{"name", "title", "description", "category",
"levels"}` (`levels` optional, default both). The API loads it at start (`load`) and keeps the
result in its own state: a webhook's `eventTypes` is checked against it, Qlik's and the file's,
and `GET /webhooks/event-types` lists them all. A file that cannot be used is a configuration
error: the service does not start.
"""

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from hookstream_common.operational import (
    CATEGORY,
    CERTIFICATE_EXPIRING,
    DELIVERY_EXHAUSTED,
    WEBHOOK_DISABLED,
    WEBHOOK_RECOVERED,
)


@dataclass(frozen=True)
class EventType:
    """One entry of `GET /webhooks/event-types`."""

    name: str
    title: str
    description: str
    category: str
    levels: tuple[str, ...] = ("tenant", "user")

    def as_json(self) -> dict[str, object]:
        """The API representation."""
        doc = asdict(self)
        doc["levels"] = list(self.levels)
        return doc


DEFAULT_EVENT_TYPES: tuple[EventType, ...] = (
    EventType("com.qlik.v1.app.created", "App created", "An app was created.", "apps"),
    EventType("com.qlik.v1.app.deleted", "App deleted", "An app was deleted.", "apps"),
    EventType(
        "com.qlik.v1.app.data.updated", "App data updated", "An app's data was updated.", "apps"
    ),
    EventType(
        "com.qlik.v1.app.reload.finished",
        "App reload finished",
        "An app finished reloading, successfully or not.",
        "apps",
    ),
    EventType("com.qlik.v1.app.published", "App published", "An app was published.", "apps"),
    EventType("com.qlik.v1.app.exported", "App exported", "An app was exported.", "apps"),
    EventType(
        "com.qlik.v1.user.created", "User created", "A user was created.", "users", ("tenant",)
    ),
    EventType(
        "com.qlik.v1.user.deleted", "User deleted", "A user was deleted.", "users", ("tenant",)
    ),
    EventType(
        "com.qlik.v1.reload.finished",
        "Reload finished",
        "A reload task finished.",
        "reloads",
    ),
    EventType(
        "com.qlik.v1.api-key.validation.failed",
        "API key validation failed",
        "A request was made with an API key that failed validation.",
        "api-keys",
        ("tenant",),
    ),
    EventType(
        WEBHOOK_DISABLED,
        "Webhook disabled",
        "Hookstream disabled a webhook: its deliveries kept failing, or its endpoint answered"
        " 410 Gone. The data holds the reason and its code. Hookstream extension.",
        CATEGORY,
    ),
    EventType(
        DELIVERY_EXHAUSTED,
        "Delivery failed for good",
        "A delivery failed after all its retries; no further attempt is made. Hookstream"
        " extension.",
        CATEGORY,
    ),
    EventType(
        WEBHOOK_RECOVERED,
        "Webhook recovered",
        "A webhook delivered successfully after a run of failed attempts. Hookstream extension.",
        CATEGORY,
    ),
    EventType(
        CERTIFICATE_EXPIRING,
        "Client certificate expiring",
        "A webhook's client certificate expires within 14 days (or has expired); replace it"
        " before receivers that require it refuse the deliveries. Hookstream extension.",
        CATEGORY,
    ),
)


class CatalogueError(ValueError):
    """The event types file cannot be used."""


_Text = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class _Entry(BaseModel):
    """One entry of the file; a name the API's `eventTypes` field can hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(max_length=128, pattern=r"^[A-Za-z0-9._-]+$")]
    title: _Text
    description: Annotated[str, StringConstraints(max_length=4096)]
    category: _Text
    levels: Annotated[tuple[Literal["tenant", "user"], ...], Field(min_length=1)] = (
        "tenant",
        "user",
    )


def read_event_types(path: Path) -> tuple[EventType, ...]:
    """The built-in event types, then those of the file; a name already known is an error."""
    try:
        entries = [_Entry.model_validate(item) for item in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError, ValidationError) as exc:
        raise CatalogueError(f"{path}: not a JSON array of event types: {exc}") from exc
    types = DEFAULT_EVENT_TYPES + tuple(
        EventType(e.name, e.title, e.description, e.category, e.levels) for e in entries
    )
    names = [t.name for t in types]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise CatalogueError(f"{path}: event types named more than once: {', '.join(repeated)}")
    return types


def load(path: Path | None) -> tuple[EventType, ...]:
    """The built-in event types and, when `path` is set, the file's."""
    return read_event_types(path) if path else DEFAULT_EVENT_TYPES


def event_type_names(types: Iterable[EventType] = DEFAULT_EVENT_TYPES) -> frozenset[str]:
    """The names of `types`, for validating a webhook's `eventTypes`."""
    return frozenset(t.name for t in types)
