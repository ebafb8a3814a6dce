"""Every operation of the API as a `Call`: its request and how to read its answer.

The sync and async clients send the same calls, so an operation is written once. `OPERATIONS`
maps each client method to the OpenAPI method and path it covers (without `/api/v1`).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import httpx
from pydantic import TypeAdapter
from pydantic.alias_generators import to_camel

from hookstream_client.errors import ApiError
from hookstream_client.models import (
    AuditEvent,
    Delivery,
    EventType,
    Item,
    Page,
    PatchOperation,
    Recovery,
    Webhook,
    WebhookInput,
)

Result = TypeVar("Result")
QueryValue = str | int | bool | datetime | Sequence[str] | None
"""A list filter: lists are sent comma-separated, times as RFC 3339."""
Body = WebhookInput | Mapping[str, Any]
"""A webhook's writable fields; a mapping is sent as it is, with the API's field names."""
Patch = Sequence[PatchOperation | Mapping[str, Any]]
"""JSON Patch operations, as models or as the API's own objects."""
Time = datetime | str
"""A time; text is sent as it is, so it must be RFC 3339."""

OPERATIONS: dict[str, tuple[str, str]] = {}


def operation(method: str, path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Record that the client method of this name covers `method path` of the API."""

    def register(build: Callable[..., Any]) -> Callable[..., Any]:
        OPERATIONS[build.__name__] = (method, path)
        return build

    return register


@dataclass(frozen=True)
class Call(Generic[Result]):
    """One request, and what its successful answer is read into."""

    method: str
    path: str
    """Under the API prefix when it starts with /webhooks; an absolute URL (a link) as it is."""
    read: Callable[[httpx.Response], Result]
    params: dict[str, str] | None = None
    json: Any = None

    def result(self, response: httpx.Response) -> Result:
        """The answer's model; an `ApiError` for any error status."""
        if response.is_error:
            raise ApiError(response)
        return self.read(response)


def _model(kind: Any) -> Callable[[httpx.Response], Any]:
    adapter = TypeAdapter(kind)
    return lambda response: adapter.validate_json(response.content)


def _nothing(_: httpx.Response) -> None:
    return None


def _query(filters: Mapping[str, QueryValue]) -> dict[str, str]:
    """Python names to the API's (`owner_id` → `ownerId`), values to query text."""
    query = {}
    for name, value in filters.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, datetime):
            text = value.isoformat()
        elif isinstance(value, str | int):
            text = str(value)
        else:
            text = ",".join(value)
        query[to_camel(name)] = text
    return query


def _body(value: Body) -> Any:
    return value.to_json() if isinstance(value, WebhookInput) else dict(value)


def _time(value: Time) -> str:
    return value.isoformat() if isinstance(value, datetime) else value


def next_page(page: Page[Item]) -> Call[Page[Item]] | None:
    """The page after this one, from its `next` link as the API gave it; None after the last."""
    if page.links.next is None:
        return None
    return Call("GET", page.links.next.href, _model(type(page)))


@operation("GET", "/webhooks")
def list_webhooks(filters: Mapping[str, QueryValue]) -> Call[Page[Webhook]]:
    return Call("GET", "/webhooks", _model(Page[Webhook]), _query(filters))


@operation("POST", "/webhooks")
def create_webhook(body: Body) -> Call[Webhook]:
    return Call("POST", "/webhooks", _model(Webhook), json=_body(body))


@operation("GET", "/webhooks/event-types")
def list_event_types() -> Call[list[EventType]]:
    adapter = TypeAdapter(list[EventType])
    return Call("GET", "/webhooks/event-types", lambda r: adapter.validate_python(r.json()["data"]))


@operation("GET", "/webhooks/{id}")
def get_webhook(webhook_id: str) -> Call[Webhook]:
    return Call("GET", f"/webhooks/{webhook_id}", _model(Webhook))


@operation("PATCH", "/webhooks/{id}")
def patch_webhook(webhook_id: str, operations: Patch) -> Call[None]:
    body = [
        op.model_dump(mode="json") if isinstance(op, PatchOperation) else op for op in operations
    ]
    return Call("PATCH", f"/webhooks/{webhook_id}", _nothing, json=body)


def set_enabled(webhook_id: str, enabled: bool) -> Call[None]:
    """Enabling or disabling is a patch of `enabled`; there is no operation of its own."""
    return patch_webhook(webhook_id, [PatchOperation(op="replace", path="/enabled", value=enabled)])


@operation("PUT", "/webhooks/{id}")
def replace_webhook(webhook_id: str, body: Body) -> Call[Webhook]:
    return Call("PUT", f"/webhooks/{webhook_id}", _model(Webhook), json=_body(body))


@operation("DELETE", "/webhooks/{id}")
def delete_webhook(webhook_id: str) -> Call[None]:
    return Call("DELETE", f"/webhooks/{webhook_id}", _nothing)


@operation("GET", "/webhooks/{id}/deliveries")
def list_deliveries(webhook_id: str, filters: Mapping[str, QueryValue]) -> Call[Page[Delivery]]:
    path = f"/webhooks/{webhook_id}/deliveries"
    return Call("GET", path, _model(Page[Delivery]), _query(filters))


@operation("GET", "/webhooks/{id}/audit")
def list_audit(webhook_id: str, filters: Mapping[str, QueryValue]) -> Call[Page[AuditEvent]]:
    return Call("GET", f"/webhooks/{webhook_id}/audit", _model(Page[AuditEvent]), _query(filters))


@operation("GET", "/webhooks/audit")
def list_tenant_audit(filters: Mapping[str, QueryValue]) -> Call[Page[AuditEvent]]:
    return Call("GET", "/webhooks/audit", _model(Page[AuditEvent]), _query(filters))


@operation("GET", "/webhooks/{id}/deliveries/{deliveryId}")
def get_delivery(webhook_id: str, delivery_id: str) -> Call[Delivery]:
    return Call("GET", f"/webhooks/{webhook_id}/deliveries/{delivery_id}", _model(Delivery))


@operation("POST", "/webhooks/{id}/deliveries/{deliveryId}/actions/resend")
def resend_delivery(webhook_id: str, delivery_id: str) -> Call[Delivery]:
    path = f"/webhooks/{webhook_id}/deliveries/{delivery_id}/actions/resend"
    return Call("POST", path, _model(Delivery))


@operation("POST", "/webhooks/{id}/actions/recover")
def recover_deliveries(webhook_id: str, since: Time, until: Time | None) -> Call[Recovery]:
    body = {"since": _time(since)} | ({"until": _time(until)} if until is not None else {})
    return Call("POST", f"/webhooks/{webhook_id}/actions/recover", _model(Recovery), json=body)


@operation("POST", "/webhooks/{id}/actions/test")
def send_test_event(webhook_id: str, event_type: str | None) -> Call[Delivery]:
    body = {"eventType": event_type} if event_type is not None else {}
    return Call("POST", f"/webhooks/{webhook_id}/actions/test", _model(Delivery), json=body)


@operation("GET", "/webhooks/{id}/actions/recover/{recoveryId}")
def get_recovery(webhook_id: str, recovery_id: str) -> Call[Recovery]:
    return Call("GET", f"/webhooks/{webhook_id}/actions/recover/{recovery_id}", _model(Recovery))


@operation("GET", "/resources/autogenerated/product-info.json")
def product_info() -> Call[dict[str, Any]]:
    return Call("GET", "/resources/autogenerated/product-info.json", lambda r: r.json())
