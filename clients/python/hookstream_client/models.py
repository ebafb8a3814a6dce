"""What the API sends and takes, as typed models (the contract is docs/openapi.json).

Field names are snake_case in Python and camelCase on the wire. Models accept fields they do not
know, so a newer API does not break an older client.
"""

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

Level = Literal["tenant", "user"]
Origin = Literal["api", "automations", "management-console"]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    def to_json(self) -> dict[str, Any]:
        """The API's JSON form, with only the fields that were set (so defaults stay the API's)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class RateLimit(_Model):
    """Hookstream extension: how fast a webhook's deliveries may start (a token bucket)."""

    per_second: float
    burst: int = 1


class ClientCertificate(_Model):
    """Hookstream extension: a client certificate chain and its private key (PEM), as written."""

    certificate: str
    key: str = Field(repr=False)


class ClientCertificateInfo(_Model):
    """Hookstream extension: what the API shows of a webhook's client certificate."""

    subject: str
    not_after: datetime


class Webhook(_Model):
    """A webhook as the API shows it: no secret, only the names of encrypted headers."""

    id: str
    name: str
    description: str = ""
    url: str
    event_types: list[str]
    level: Level
    owner_id: str
    filter: str | None = None
    enabled: bool
    headers: dict[str, str] = {}
    encrypted_headers: list[str] = []
    secret_key_added: bool = False
    enable_cloud_event_delivery: bool = False
    check_certificate_revocation: bool = False
    origin: Origin
    created_at: datetime
    updated_at: datetime
    created_by_user_id: str
    updated_by_user_id: str
    disabled_reason: str | None = None
    disabled_reason_code: str | None = None
    # Hookstream extensions, beyond the Qlik API.
    rate_limit: RateLimit | None = None
    secret_rotation_grace_seconds: int = 86400
    previous_secret_expires_at: datetime | None = None
    client_certificate: ClientCertificateInfo | None = None
    last_delivery_at: datetime | None = None
    last_status: Literal["success", "fail"] | None = None
    consecutive_failures: int = 0
    success_rate_1h: float | None = Field(None, alias="successRate1h")
    success_rate_24h: float | None = Field(None, alias="successRate24h")
    pending_retries: int = 0


class WebhookInput(_Model):
    """The body of a create (`POST`) or a full replacement (`PUT`); unset fields are not sent."""

    name: str
    url: str
    event_types: list[str]
    description: str | None = None
    level: Level | None = None
    owner_id: str | None = None
    filter: str | None = None
    enabled: bool | None = None
    headers: dict[str, str] | None = None
    encrypted_headers: dict[str, str] | None = None
    secret: str | None = None
    enable_cloud_event_delivery: bool | None = None
    check_certificate_revocation: bool | None = None
    origin: Origin | None = None
    rate_limit: RateLimit | None = None
    secret_rotation_grace_seconds: int | None = None
    client_certificate: ClientCertificate | None = None


class PatchOperation(_Model):
    """One JSON Patch operation of `PATCH /webhooks/{id}`."""

    op: Literal["add", "remove", "replace"]
    path: str
    value: Any = None


class EventType(_Model):
    """One entry of the event type catalogue."""

    name: str
    title: str
    description: str
    levels: list[Level]
    category: str


class DeliveryRequest(_Model):
    """What was sent."""

    url: str
    headers: dict[str, str]
    body: Any


class DeliveryResponse(_Model):
    """What came back, when anything did."""

    status_code: int | None
    headers: dict[str, str]
    body: str


class Delivery(_Model):
    """One delivery of one event to one webhook."""

    id: str
    webhook_id: str
    event_type: str
    status: Literal["success", "fail"]
    status_message: str
    triggered_at: datetime
    request: DeliveryRequest
    response: DeliveryResponse | None = None
    trace_id: str | None = None
    """The OpenTelemetry trace id of its latest traced attempt (a Hookstream extension)."""


class Recovery(_Model):
    """A recover request and how far it has got."""

    id: str
    webhook_id: str
    state: Literal["running", "done", "cancelled", "failed"]
    since: datetime
    until: datetime
    total: int
    queued: int
    created_at: datetime
    finished_at: datetime | None = None


class AuditEvent(_Model):
    """One management action on a webhook (a Hookstream extension): who, when, from where, and
    which fields it changed (names only, never values)."""

    id: str
    webhook_id: str
    action: str
    actor: str
    source_address: str | None = None
    changed_fields: list[str] = []
    details: dict[str, Any] = {}
    trace_id: str | None = None
    created_at: datetime


class Link(_Model):
    """One paging link."""

    href: str


class Links(_Model):
    """Where the list's pages are; follow `next.href` and `prev.href` as given."""

    self_: Link = Field(alias="self")
    next: Link | None = None
    prev: Link | None = None


Item = TypeVar("Item", Webhook, Delivery)


class Page(_Model, Generic[Item]):
    """One page of a list and its links."""

    data: list[Item]
    links: Links
