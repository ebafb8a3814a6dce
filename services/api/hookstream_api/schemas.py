"""Request and response bodies of the Qlik webhooks API."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Level = Literal["tenant", "user"]
Origin = Literal["api", "automations", "management-console"]


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class WebhookCreate(_Model):
    """The body of `POST /webhooks`."""

    name: str = Field(min_length=1, max_length=256)
    description: str = Field("", max_length=4096)
    url: str = Field(examples=["https://example.com/hooks/qlik"])
    event_types: list[str] = Field(alias="eventTypes", min_length=1)
    level: Level | None = None
    owner_id: str | None = Field(None, alias="ownerId")
    filter: str | None = None
    enabled: bool = True
    headers: dict[str, str] = Field(default_factory=dict)
    encrypted_headers: dict[str, str] = Field(default_factory=dict, alias="encryptedHeaders")
    secret: str | None = Field(
        None, min_length=32, max_length=64, json_schema_extra={"writeOnly": True}
    )
    enable_cloud_event_delivery: bool = Field(False, alias="enableCloudEventDelivery")
    check_certificate_revocation: bool = Field(False, alias="checkCertificateRevocation")
    origin: Origin = "api"


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
