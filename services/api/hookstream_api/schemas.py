"""Request and response bodies of the Qlik webhooks API; the webhook's own are built from its
field declarations (hookstream_common.webhook_fields)."""

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    create_model,
    field_validator,
    model_validator,
)

from hookstream_common.audit import ACTIONS
from hookstream_common.webhook_fields import (
    FIELDS,
    MAX_EVENT_TYPE,
    MAX_NAME,
    ONLY_AT_CREATION,
    READ_ONLY,
    SHOWN,
    SINGLE_LINE,
    WRITTEN,
    EventTypeName,
    Level,
    Origin,
    WebhookField,
)

MAX_PATCH_OPERATIONS = 100
MAX_POINTER = 512
MAX_USER_ID = 256
# Query parameters: all of a list operation's together stay under the default URL limit (8 KiB),
# so one that is too long is a 400 that names it, never a 414.
MAX_CURSOR = 2816
"""A cursor holds the sort value of its row: a URL of MAX_URL ASCII characters fits."""
MAX_URL_QUERY = 512
MAX_EVENT_TYPES_QUERY = 512
MAX_ORIGINS_QUERY = 64
MAX_SORT_QUERY = 16


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


LastStatus = Literal["success", "fail"]

HEALTH: dict[str, Any] = {
    "last_delivery_at": (
        datetime | None,
        Field(alias="lastDeliveryAt", description="When the latest delivery attempt started."),
    ),
    "last_status": (
        LastStatus | None,
        Field(alias="lastStatus", description="The outcome of the latest delivery attempt."),
    ),
    "consecutive_failures": (
        int,
        Field(alias="consecutiveFailures", description="Failed attempts since the last success."),
    ),
    "success_rate_1h": (
        float | None,
        Field(
            alias="successRate1h",
            ge=0,
            le=1,
            description="Share of the attempts of the last hour that succeeded; null without any.",
        ),
    ),
    "success_rate_24h": (
        float | None,
        Field(
            alias="successRate24h",
            ge=0,
            le=1,
            description="Share of the attempts of the last 24 hours that succeeded; null without"
            " any.",
        ),
    ),
    "pending_retries": (
        int,
        Field(alias="pendingRetries", description="Deliveries whose next attempt is scheduled."),
    ),
}
"""Hookstream extensions: each webhook's health, from the rollups (webhook_health)."""

READ_ONLY_FIELDS = READ_ONLY | {info.alias for _, info in HEALTH.values()}


class ReadOnlyField(Exception):
    """A request tried to write a field only the service sets: answered with 409."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


def _written(spec: WebhookField) -> tuple[Any, Any]:
    """A request body's field, from its declaration."""
    default: dict[str, Any] = (
        {"default_factory": spec.default_factory}
        if spec.default_factory
        else {"default": spec.default}
    )
    return spec.written, Field(
        **default,
        alias=spec.api,
        description=spec.description,
        examples=spec.examples,
        json_schema_extra={"writeOnly": True} if spec.shown is None else None,
    )


class _WebhookBody(_Model):
    # JSON types as the schema says: no `"enabled": 0` or `"enabled": "yes"` taken for a boolean.
    model_config = ConfigDict(strict=True)

    @model_validator(mode="before")
    @classmethod
    def _no_read_only_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            written = sorted(READ_ONLY_FIELDS.intersection(data) | cls._also_read_only(data))
            if written:
                raise ReadOnlyField(written)
        return data

    @classmethod
    def _also_read_only(cls, data: dict[str, Any]) -> set[str]:
        return set()


WebhookInput = create_model(
    "WebhookInput",
    __base__=_WebhookBody,
    __doc__="The written fields, shared by create and replace.",
    **{spec.name: _written(spec) for spec in WRITTEN},
)

WebhookCreate = create_model(
    "WebhookCreate",
    __base__=WebhookInput,
    __doc__="The body of `POST /webhooks`.",
    **{spec.name: _written(spec) for spec in FIELDS if spec.only_at_creation},
)


class WebhookReplace(WebhookInput):
    """The body of `PUT /webhooks/{id}`: a full replacement, omitted fields take defaults."""

    enabled: bool = Field(False, description="Omitted means disabled, as for every default.")

    @classmethod
    def _also_read_only(cls, data: dict[str, Any]) -> set[str]:
        return ONLY_AT_CREATION & set(data)


class PatchOperation(_Model):
    """One JSON Patch (RFC 6902) operation; `add`, `remove` and `replace` are supported."""

    op: Literal["add", "remove", "replace"]
    path: str = Field(max_length=MAX_POINTER, pattern=SINGLE_LINE, examples=["/enabled"])
    value: Any = None


Webhook = create_model(
    "Webhook",
    __base__=_Model,
    __doc__="A webhook as the API shows it: no secret, encrypted header names only.",
    **{
        spec.name: (spec.shown, Field(alias=spec.api, description=spec.description))
        for spec in SHOWN
    },
    **HEALTH,
)


class Link(_Model):
    """One paging link."""

    href: str


class Links(_Model):
    """Paging links of a list."""

    self: Link
    next: Link | None = None
    prev: Link | None = None


class WebhookList(_Model):
    """`GET /webhooks`."""

    data: list[Webhook]
    links: Links


class DeliveryRequest(_Model):
    """What was sent."""

    url: str
    headers: dict[str, str]
    body: Any


class DeliveryResponse(_Model):
    """What came back, when anything did."""

    status_code: int | None = Field(alias="statusCode")
    headers: dict[str, str]
    body: str


class Delivery(_Model):
    """One delivery of one event to one webhook."""

    id: str
    webhook_id: str = Field(alias="webhookId")
    event_type: str = Field(alias="eventType")
    status: Literal["success", "fail"]
    status_message: str = Field(alias="statusMessage")
    triggered_at: datetime = Field(alias="triggeredAt")
    request: DeliveryRequest
    response: DeliveryResponse | None = None
    trace_id: str | None = Field(
        None,
        alias="traceId",
        description="Hookstream extension: the OpenTelemetry trace id of the latest traced "
        "attempt, when tracing is on (docs/tracing.md).",
    )


class DeliveryList(_Model):
    """`GET /webhooks/{id}/deliveries`."""

    data: list[Delivery]
    links: Links


class EventTypeInfo(_Model):
    """One entry of the event type catalogue."""

    name: str
    title: str
    description: str
    levels: list[Level]
    category: str


class EventTypeList(_Model):
    """`GET /webhooks/event-types`."""

    data: list[EventTypeInfo]


class ErrorItem(_Model):
    """One error of the envelope."""

    code: str
    title: str
    detail: str


class ErrorEnvelope(_Model):
    """Every error response."""

    errors: list[ErrorItem]
    trace_id: str = Field(alias="traceId")


def rfc3339_only(value: Any) -> Any:
    """A date-time as RFC 3339 text with an offset, not a number read as Unix time."""
    if value is None:
        return value
    if not isinstance(value, str) or not re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value.strip(), re.I
    ):
        raise ValueError("must be an RFC 3339 date-time with an offset, like 2026-11-28T08:00:00Z")
    return value


class RecoverRequest(_Model):
    """The body of `POST /webhooks/{id}/actions/recover`."""

    since: AwareDatetime = Field(description="Failed deliveries triggered at or after this.")
    until: AwareDatetime | None = Field(None, description="...and before this; default now.")

    _iso_text_only = field_validator("since", "until", mode="before")(rfc3339_only)


class TestEventRequest(_Model):
    """The body of `POST /webhooks/{id}/actions/test` (a Hookstream extension); optional."""

    event_type: EventTypeName | None = Field(
        None,
        alias="eventType",
        description="One of the webhook's event types to send a sample of; default its first.",
    )


class Recovery(_Model):
    """A recover request and how far it has got."""

    id: str
    webhook_id: str = Field(alias="webhookId")
    state: Literal["running", "done", "cancelled", "failed"] = Field(
        description="`running` while jobs are being queued; `done` once all are queued;"
        " `cancelled` if the webhook was deleted; `failed` if it could not be queued."
    )
    since: datetime = Field(description="Start of the window, no older than the retention.")
    until: datetime = Field(description="End of the window (excluded), no later than the request.")
    total: int = Field(
        description="Failed deliveries in the window, none with an attempt pending, when it was"
        " requested: what it will queue."
    )
    queued: int = Field(description="Deliveries queued so far.")
    created_at: datetime = Field(alias="createdAt")
    finished_at: datetime | None = Field(None, alias="finishedAt")


Timestamp = Annotated[AwareDatetime, BeforeValidator(rfc3339_only)]
"""A query parameter's date-time: RFC 3339 text with an offset."""

MAX_SEARCH = 64
"""Longest substring the `...Contains` filters take: every URL with every filter at its maximum
must stay within `max_url_bytes` (tests/unit/test_field_limits.py)."""


def _comma_list(value: str | None) -> list[str] | None:
    return [item.strip() for item in value.split(",") if item.strip()] if value else None


class WebhookQuery(BaseModel):
    """The filters of `GET /webhooks`, each a query parameter; a webhook must pass all."""

    model_config = ConfigDict(populate_by_name=True)

    name: str | None = Field(None, max_length=MAX_NAME, description="Case-insensitive substring.")
    url: str | None = Field(
        None, max_length=MAX_URL_QUERY, description="Case-insensitive substring."
    )
    enabled: bool | None = None
    event_types: str | None = Field(
        None,
        alias="eventTypes",
        max_length=MAX_EVENT_TYPES_QUERY,
        description="Comma list; all must be present.",
    )
    origins: str | None = Field(
        None, max_length=MAX_ORIGINS_QUERY, description="Comma list; any may match."
    )
    level: Level | None = None
    owner_id: str | None = Field(None, alias="ownerId", max_length=MAX_USER_ID)
    created_by_user_id: str | None = Field(None, alias="createdByUserId", max_length=MAX_USER_ID)
    updated_by_user_id: str | None = Field(None, alias="updatedByUserId", max_length=MAX_USER_ID)
    # Beyond Qlik.
    event_types_contains: str | None = Field(
        None,
        alias="eventTypesContains",
        max_length=MAX_SEARCH,
        description="Case-insensitive substring of any one event type (beyond Qlik).",
    )
    owner_id_contains: str | None = Field(
        None,
        alias="ownerIdContains",
        max_length=MAX_SEARCH,
        description="Case-insensitive substring of ownerId (beyond Qlik).",
    )
    updated_since: Timestamp | None = Field(
        None,
        alias="updatedSince",
        description="Updated at or after (RFC 3339, with offset; beyond Qlik).",
    )
    updated_until: Timestamp | None = Field(
        None,
        alias="updatedUntil",
        description="Updated before (RFC 3339, with offset; beyond Qlik).",
    )
    last_status: LastStatus | None = Field(
        None,
        alias="lastStatus",
        description="The outcome of the latest delivery attempt (a Hookstream extension).",
    )

    @field_validator("origins")
    @classmethod
    def _known_origins(cls, value: str | None) -> str | None:
        unknown = set(_comma_list(value) or ()) - set(Origin.__args__)
        if unknown:
            raise ValueError(f"each must be one of {', '.join(Origin.__args__)}")
        return value

    @property
    def event_type_list(self) -> list[str] | None:
        return _comma_list(self.event_types)

    @property
    def origin_list(self) -> list[str] | None:
        return _comma_list(self.origins)


class DeliveryQuery(BaseModel):
    """The filters of `GET /webhooks/{id}/deliveries`, each a query parameter."""

    model_config = ConfigDict(populate_by_name=True)

    event_type: str | None = Field(None, alias="eventType", max_length=MAX_EVENT_TYPE)
    status: Literal["success", "fail"] | None = None
    since: Timestamp | None = Field(
        None, description="Triggered at or after (RFC 3339, with offset)."
    )
    until: Timestamp | None = Field(None, description="Triggered before (RFC 3339, with offset).")


MAX_ACTIONS_QUERY = 128


class AuditQuery(BaseModel):
    """The filters of `GET /webhooks/{id}/audit` (a Hookstream extension)."""

    model_config = ConfigDict(populate_by_name=True)

    action: str | None = Field(
        None,
        max_length=MAX_ACTIONS_QUERY,
        description=f"Comma list; any may match. Each one of {', '.join(ACTIONS)}.",
    )
    actor: str | None = Field(
        None, max_length=MAX_USER_ID, description="The user id who acted, or `system`."
    )
    since: Timestamp | None = Field(
        None, description="Recorded at or after (RFC 3339, with offset)."
    )
    until: Timestamp | None = Field(None, description="Recorded before (RFC 3339, with offset).")

    @field_validator("action")
    @classmethod
    def _known_actions(cls, value: str | None) -> str | None:
        if set(_comma_list(value) or ()) - set(ACTIONS):
            raise ValueError(f"each must be one of {', '.join(ACTIONS)}")
        return value

    @property
    def action_list(self) -> list[str] | None:
        return _comma_list(self.action)


class TenantAuditQuery(AuditQuery):
    """The filters of `GET /webhooks/audit` (a Hookstream extension): also by webhook."""

    webhook_id: str | None = Field(
        None,
        alias="webhookId",
        max_length=36,
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        description="Only this webhook's rows (also once deleted).",
    )

    @property
    def webhook_uuid(self) -> uuid.UUID | None:
        return uuid.UUID(self.webhook_id) if self.webhook_id else None


class AuditEvent(_Model):
    """One management action on a webhook (a Hookstream extension). Never a secret or header
    value: `changedFields` names fields, `details` holds ids and codes."""

    id: str
    webhook_id: str = Field(alias="webhookId")
    action: str = Field(description=f"One of {', '.join(ACTIONS)}.")
    actor: str = Field(description="The token subject (user id) who acted, or `system`.")
    source_address: str | None = Field(
        alias="sourceAddress", description="The client address of the request; null for system."
    )
    changed_fields: list[str] = Field(
        alias="changedFields", description="The webhook's fields the action changed or set."
    )
    details: dict[str, Any] = Field(
        description="Ids and codes: `reasonCode` of an auto-disable; the deliveries of a resend"
        " or test; the recovery, its window and count."
    )
    trace_id: str | None = Field(
        alias="traceId", description="The request's trace id, as in its log lines."
    )
    created_at: datetime = Field(alias="createdAt")


class AuditEventList(_Model):
    """`GET /webhooks/{id}/audit` and `GET /webhooks/audit` (a Hookstream extension)."""

    data: list[AuditEvent]
    links: Links
