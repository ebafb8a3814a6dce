"""Request and response bodies of the Qlik webhooks API."""

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from hookstream_common.secret_rotation import DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS

Level = Literal["tenant", "user"]
Origin = Literal["api", "automations", "management-console"]

# Every string a client writes has a maximum (decision 10), in characters as JSON Schema counts
# them. The fields that go into a tenant's route set (ownerId, filter, eventTypes) are the tight
# ones: with at most 100 webhooks, its worst case must stay under the broker's 1 MiB message
# limit (see hookstream_api.relay). A longer value is a 400; a stored one that no longer fits
# (written before these limits) makes a PATCH answer 400 for that field until it is replaced.
MAX_NAME = 256
MAX_DESCRIPTION = 4096
MAX_URL = 2048
MAX_EVENT_TYPES = 32
MAX_EVENT_TYPE = 128
MAX_OWNER_ID = 256
MAX_FILTER = 1024
MAX_HEADERS = 64
MAX_HEADER_NAME = 256
MAX_HEADER_VALUE = 2048
MAX_SECRET = 64
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

# No control characters (so no NUL, which Postgres text refuses) and no lone surrogates (which
# no encoder takes): each allowed character is at most 4 bytes in UTF-8 JSON.
SINGLE_LINE = r"^[^\x00-\x1f\x7f]*$"
MULTI_LINE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
"""Also tab, LF and CR."""
NO_SPACE = r"^[^\x00-\x20\x7f]*$"

EventTypeName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_EVENT_TYPE, pattern=r"^[A-Za-z0-9._-]+$")
]
HEADER_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
"""An HTTP token (RFC 9110)."""
HEADER_VALUE = r"^[^\x00-\x08\x0a-\x1f\x7f]*$"
"""Visible characters, spaces and tabs (RFC 9110); no line breaks."""
HeaderName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_HEADER_NAME, pattern=HEADER_NAME)
]
HeaderValue = Annotated[str, StringConstraints(max_length=MAX_HEADER_VALUE, pattern=HEADER_VALUE)]
Headers = Annotated[
    dict[HeaderName, HeaderValue],
    Field(max_length=MAX_HEADERS),
    # pydantic would document the name pattern as patternProperties, leaving other names open.
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_HEADERS,
            "propertyNames": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_HEADER_NAME,
                "pattern": HEADER_NAME,
            },
            "additionalProperties": {
                "type": "string",
                "maxLength": MAX_HEADER_VALUE,
                "pattern": HEADER_VALUE,
            },
        }
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


READ_ONLY_FIELDS = frozenset(
    {
        "id",
        "createdAt",
        "updatedAt",
        "createdByUserId",
        "updatedByUserId",
        "disabledReason",
        "disabledReasonCode",
        "secretKeyAdded",
        # Hookstream extensions the service sets (see `Webhook`).
        "previousSecretExpiresAt",
        "lastDeliveryAt",
        "lastStatus",
        "consecutiveFailures",
        "successRate1h",
        "successRate24h",
        "pendingRetries",
    }
)

MAX_RATE_PER_SECOND = 10_000
MAX_BURST = 10_000
LastStatus = Literal["success", "fail"]


class RateLimit(_Model):
    """Hookstream extension: how fast this webhook's deliveries may start (a token bucket)."""

    model_config = ConfigDict(strict=True)

    per_second: float = Field(
        alias="perSecond",
        gt=0,
        le=MAX_RATE_PER_SECOND,
        examples=[5],
        description="Deliveries a second on average, retries included (fractions allowed).",
    )
    burst: int = Field(
        1,
        ge=1,
        le=MAX_BURST,
        description="How many may start at once after a quiet spell; default 1.",
    )


class ReadOnlyField(Exception):
    """A request tried to write a field only the service sets: answered with 409."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


class WebhookInput(_Model):
    """The writable fields, shared by create and replace."""

    # JSON types as the schema says: no `"enabled": 0` or `"enabled": "yes"` taken for a boolean.
    model_config = ConfigDict(strict=True)

    name: str = Field(
        min_length=1, max_length=MAX_NAME, pattern=SINGLE_LINE, examples=["Reload alerts"]
    )
    description: str = Field("", max_length=MAX_DESCRIPTION, pattern=MULTI_LINE)
    url: str = Field(
        max_length=MAX_URL,
        pattern=NO_SPACE,
        examples=["https://hooks.example.com/qlik"],
        description="https only, to a fully qualified domain name, never an IP address.",
    )
    event_types: list[EventTypeName] = Field(
        alias="eventTypes",
        min_length=1,
        max_length=MAX_EVENT_TYPES,
        examples=[["com.qlik.v1.app.reload.finished"]],
        description="Names from `GET /webhooks/event-types`.",
    )
    level: Level | None = Field(
        None, description="Default `tenant` for a TenantAdmin, `user` for anyone else."
    )
    owner_id: str | None = Field(
        None,
        alias="ownerId",
        max_length=MAX_OWNER_ID,
        pattern=SINGLE_LINE,
        description="Default: the caller.",
    )
    filter: str | None = Field(
        None,
        max_length=MAX_FILTER,
        pattern=MULTI_LINE,
        examples=['spaceId eq "a1b2"'],
        description="SCIM-style filter over id, spaceId, topLevelResourceId, data.status.",
    )
    headers: Headers = Field(
        default_factory=dict, description="Sent with every request; at most 2048 bytes in all."
    )
    encrypted_headers: Headers = Field(
        default_factory=dict,
        alias="encryptedHeaders",
        description="Sent with every request, encrypted at rest, never shown again; at most 2048"
        " bytes in all.",
    )
    secret: str | None = Field(
        None,
        min_length=32,
        max_length=MAX_SECRET,
        pattern=SINGLE_LINE,
        json_schema_extra={"writeOnly": True},
        description="Signs each request: Qlik-Signature and webhook-signature.",
    )
    enable_cloud_event_delivery: bool = Field(False, alias="enableCloudEventDelivery")
    check_certificate_revocation: bool = Field(False, alias="checkCertificateRevocation")
    rate_limit: RateLimit | None = Field(
        None,
        alias="rateLimit",
        description="Hookstream extension: deliveries over it wait their turn, never dropped"
        " and never failed. Default: the dispatcher's (none unless configured).",
    )
    secret_rotation_grace_seconds: int = Field(
        DEFAULT_GRACE_SECONDS,
        alias="secretRotationGraceSeconds",
        ge=0,
        le=MAX_GRACE_SECONDS,
        description="Hookstream extension: after the secret changes, how long the previous one"
        " still signs (webhook-signature carries both); 0 keeps none and ends a running window.",
    )

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


class WebhookCreate(WebhookInput):
    """The body of `POST /webhooks`."""

    enabled: bool = Field(True, description="New webhooks start enabled.")
    origin: Origin = Field("api", description="Who created it; fixed at creation.")


class WebhookReplace(WebhookInput):
    """The body of `PUT /webhooks/{id}`: a full replacement, omitted fields take defaults."""

    enabled: bool = Field(False, description="Omitted means disabled, as for every default.")

    @classmethod
    def _also_read_only(cls, data: dict[str, Any]) -> set[str]:
        return {"origin"} & set(data)


class PatchOperation(_Model):
    """One JSON Patch (RFC 6902) operation; `add`, `remove` and `replace` are supported."""

    op: Literal["add", "remove", "replace"]
    path: str = Field(max_length=MAX_POINTER, pattern=SINGLE_LINE, examples=["/enabled"])
    value: Any = None


class Webhook(_Model):
    """A webhook as the API shows it: no secret, encrypted header names only."""

    id: str
    name: str
    description: str
    url: str
    event_types: list[str] = Field(alias="eventTypes")
    level: Level
    owner_id: str = Field(alias="ownerId")
    filter: str | None
    enabled: bool
    headers: dict[str, str]
    encrypted_headers: list[str] = Field(alias="encryptedHeaders")
    secret_key_added: bool = Field(alias="secretKeyAdded")
    enable_cloud_event_delivery: bool = Field(alias="enableCloudEventDelivery")
    check_certificate_revocation: bool = Field(alias="checkCertificateRevocation")
    origin: Origin
    created_at: datetime = Field(alias="createdAt")
    updated_at: datetime = Field(alias="updatedAt")
    created_by_user_id: str = Field(alias="createdByUserId")
    updated_by_user_id: str = Field(alias="updatedByUserId")
    disabled_reason: str | None = Field(alias="disabledReason")
    disabled_reason_code: str | None = Field(alias="disabledReasonCode")
    # Hookstream extensions, beyond the Qlik API.
    rate_limit: RateLimit | None = Field(alias="rateLimit")
    secret_rotation_grace_seconds: int = Field(alias="secretRotationGraceSeconds")
    previous_secret_expires_at: datetime | None = Field(
        alias="previousSecretExpiresAt",
        description="While a rotation's grace window runs: when the previous secret stops"
        " signing. The secrets themselves are never shown.",
    )
    last_delivery_at: datetime | None = Field(
        alias="lastDeliveryAt", description="When the latest delivery attempt started."
    )
    last_status: LastStatus | None = Field(
        alias="lastStatus", description="The outcome of the latest delivery attempt."
    )
    consecutive_failures: int = Field(
        alias="consecutiveFailures", description="Failed attempts since the last success."
    )
    success_rate_1h: float | None = Field(
        alias="successRate1h",
        ge=0,
        le=1,
        description="Share of the attempts of the last hour that succeeded; null without any.",
    )
    success_rate_24h: float | None = Field(
        alias="successRate24h",
        ge=0,
        le=1,
        description="Share of the attempts of the last 24 hours that succeeded; null without any.",
    )
    pending_retries: int = Field(
        alias="pendingRetries", description="Deliveries whose next attempt is scheduled."
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
