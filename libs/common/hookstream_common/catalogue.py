"""The event types webhooks can subscribe to. Data, extensible by configuration."""

from dataclasses import asdict, dataclass


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
)


def event_type_names(types: tuple[EventType, ...] = DEFAULT_EVENT_TYPES) -> frozenset[str]:
    """The names, for validating a webhook's `eventTypes`."""
    return frozenset(t.name for t in types)
