"""`Client` and `AsyncClient`: one method per operation of the API, on httpx.

Both send the calls of `hookstream_client.operations` and share how a call becomes a request
(`_Api`), so each method differs between them only in how it waits for the answer.
"""

from collections.abc import AsyncIterator, Iterator
from typing import Any, Generic, Self, TypeVar

import httpx

from hookstream_client import operations as ops
from hookstream_client.models import AuditEvent, Delivery, EventType, Item, Page, Recovery, Webhook
from hookstream_client.operations import Body, Call, Patch, QueryValue, Result, Time

Http = TypeVar("Http", httpx.Client, httpx.AsyncClient)
DEFAULT_PREFIX = "/api/v1"
"""The API is served under `/api/v1` and `/api/core` alike."""


class _Api(Generic[Http]):
    """What both clients share: the connection's settings and how a call becomes a request."""

    _http_class: type[Http]

    def __init__(
        self,
        api: str,
        token: str | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        **httpx_options: Any,
    ) -> None:
        options = {"timeout": 30.0, **httpx_options}
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        options["headers"] = auth | options.get("headers", {})
        self._http = self._http_class(base_url=api, **options)
        self._prefix = prefix

    def _request(self, call: Call[Any]) -> httpx.Request:
        """Paths of the webhooks API go under the prefix; links and other paths stay as given."""
        url = self._prefix + call.path if call.path.startswith("/webhooks") else call.path
        return self._http.build_request(call.method, url, params=call.params, json=call.json)


class Client(_Api[httpx.Client]):
    """The webhooks API, synchronously: `Client("http://127.0.0.1:8000", token=...)`.

    Extra keyword arguments go to `httpx.Client` (timeout, verify, transport, ...).
    """

    _http_class = httpx.Client

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def _send(self, call: Call[Result]) -> Result:
        return call.result(self._http.send(self._request(call)))

    def _items(self, call: Call[Page[Item]] | None) -> Iterator[Item]:
        while call is not None:
            page = self._send(call)
            yield from page.data
            call = ops.next_page(page)

    def list_webhooks(self, **filters: QueryValue) -> Page[Webhook]:
        """One page of webhooks: filters as in the API, in snake_case (`owner_id="u1"`)."""
        return self._send(ops.list_webhooks(filters))

    def iter_webhooks(self, **filters: QueryValue) -> Iterator[Webhook]:
        """Every webhook that matches, following the `next` links page by page."""
        return self._items(ops.list_webhooks(filters))

    def create_webhook(self, body: Body) -> Webhook:
        """Register a webhook (a mapping is sent as it is, with the API's field names)."""
        return self._send(ops.create_webhook(body))

    def list_event_types(self) -> list[EventType]:
        """The event types a webhook can subscribe to."""
        return self._send(ops.list_event_types())

    def get_webhook(self, webhook_id: str) -> Webhook:
        """One webhook."""
        return self._send(ops.get_webhook(webhook_id))

    def patch_webhook(self, webhook_id: str, operations: Patch) -> None:
        """Change fields with JSON Patch operations."""
        self._send(ops.patch_webhook(webhook_id, operations))

    def enable_webhook(self, webhook_id: str) -> None:
        """Enable a webhook; this also clears why it was disabled."""
        self._send(ops.set_enabled(webhook_id, True))

    def disable_webhook(self, webhook_id: str) -> None:
        """Stop deliveries to a webhook."""
        self._send(ops.set_enabled(webhook_id, False))

    def replace_webhook(self, webhook_id: str, body: Body) -> Webhook:
        """Replace every writable field; unset ones return to their defaults."""
        return self._send(ops.replace_webhook(webhook_id, body))

    def delete_webhook(self, webhook_id: str) -> None:
        """Delete a webhook."""
        self._send(ops.delete_webhook(webhook_id))

    def list_deliveries(self, webhook_id: str, **filters: QueryValue) -> Page[Delivery]:
        """One page of a webhook's deliveries (`status`, `event_type`, `since`, `until`, ...)."""
        return self._send(ops.list_deliveries(webhook_id, filters))

    def iter_deliveries(self, webhook_id: str, **filters: QueryValue) -> Iterator[Delivery]:
        """Every delivery that matches, following the `next` links page by page."""
        return self._items(ops.list_deliveries(webhook_id, filters))

    def list_audit(self, webhook_id: str, **filters: QueryValue) -> Page[AuditEvent]:
        """One page of a webhook's audit trail (`action`, `actor`, `since`, `until`, ...)."""
        return self._send(ops.list_audit(webhook_id, filters))

    def list_tenant_audit(self, **filters: QueryValue) -> Page[AuditEvent]:
        """One page of the audit trail of every webhook the caller may see (`webhook_id`, ...)."""
        return self._send(ops.list_tenant_audit(filters))

    def get_delivery(self, webhook_id: str, delivery_id: str) -> Delivery:
        """One delivery, with its request and response."""
        return self._send(ops.get_delivery(webhook_id, delivery_id))

    def resend_delivery(self, webhook_id: str, delivery_id: str) -> Delivery:
        """Send a delivery again now, with the webhook's current settings: a new delivery."""
        return self._send(ops.resend_delivery(webhook_id, delivery_id))

    def recover_deliveries(
        self, webhook_id: str, since: Time, until: Time | None = None
    ) -> Recovery:
        """Queue again the failed deliveries triggered in [since, until)."""
        return self._send(ops.recover_deliveries(webhook_id, since, until))

    def send_test_event(self, webhook_id: str, event_type: str | None = None) -> Delivery:
        """Send a signed test event now (a Hookstream extension): a sample of `event_type`, one
        of the webhook's (default its first), recorded in its history."""
        return self._send(ops.send_test_event(webhook_id, event_type))

    def get_recovery(self, webhook_id: str, recovery_id: str) -> Recovery:
        """How far a recovery has got."""
        return self._send(ops.get_recovery(webhook_id, recovery_id))

    def product_info(self) -> dict[str, Any]:
        """What Qlik's clients ask first; needs no token."""
        return self._send(ops.product_info())


class AsyncClient(_Api[httpx.AsyncClient]):
    """The webhooks API for asyncio: `async with AsyncClient(api, token=...) as client`.

    Extra keyword arguments go to `httpx.AsyncClient` (timeout, verify, transport, ...).
    """

    _http_class = httpx.AsyncClient

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def _send(self, call: Call[Result]) -> Result:
        return call.result(await self._http.send(self._request(call)))

    async def _items(self, call: Call[Page[Item]] | None) -> AsyncIterator[Item]:
        while call is not None:
            page = await self._send(call)
            for item in page.data:
                yield item
            call = ops.next_page(page)

    async def list_webhooks(self, **filters: QueryValue) -> Page[Webhook]:
        """One page of webhooks: filters as in the API, in snake_case (`owner_id="u1"`)."""
        return await self._send(ops.list_webhooks(filters))

    def iter_webhooks(self, **filters: QueryValue) -> AsyncIterator[Webhook]:
        """Every webhook that matches, following the `next` links page by page."""
        return self._items(ops.list_webhooks(filters))

    async def create_webhook(self, body: Body) -> Webhook:
        """Register a webhook (a mapping is sent as it is, with the API's field names)."""
        return await self._send(ops.create_webhook(body))

    async def list_event_types(self) -> list[EventType]:
        """The event types a webhook can subscribe to."""
        return await self._send(ops.list_event_types())

    async def get_webhook(self, webhook_id: str) -> Webhook:
        """One webhook."""
        return await self._send(ops.get_webhook(webhook_id))

    async def patch_webhook(self, webhook_id: str, operations: Patch) -> None:
        """Change fields with JSON Patch operations."""
        await self._send(ops.patch_webhook(webhook_id, operations))

    async def enable_webhook(self, webhook_id: str) -> None:
        """Enable a webhook; this also clears why it was disabled."""
        await self._send(ops.set_enabled(webhook_id, True))

    async def disable_webhook(self, webhook_id: str) -> None:
        """Stop deliveries to a webhook."""
        await self._send(ops.set_enabled(webhook_id, False))

    async def replace_webhook(self, webhook_id: str, body: Body) -> Webhook:
        """Replace every writable field; unset ones return to their defaults."""
        return await self._send(ops.replace_webhook(webhook_id, body))

    async def delete_webhook(self, webhook_id: str) -> None:
        """Delete a webhook."""
        await self._send(ops.delete_webhook(webhook_id))

    async def list_deliveries(self, webhook_id: str, **filters: QueryValue) -> Page[Delivery]:
        """One page of a webhook's deliveries (`status`, `event_type`, `since`, `until`, ...)."""
        return await self._send(ops.list_deliveries(webhook_id, filters))

    def iter_deliveries(self, webhook_id: str, **filters: QueryValue) -> AsyncIterator[Delivery]:
        """Every delivery that matches, following the `next` links page by page."""
        return self._items(ops.list_deliveries(webhook_id, filters))

    async def list_audit(self, webhook_id: str, **filters: QueryValue) -> Page[AuditEvent]:
        """One page of a webhook's audit trail (`action`, `actor`, `since`, `until`, ...)."""
        return await self._send(ops.list_audit(webhook_id, filters))

    async def list_tenant_audit(self, **filters: QueryValue) -> Page[AuditEvent]:
        """One page of the audit trail of every webhook the caller may see (`webhook_id`, ...)."""
        return await self._send(ops.list_tenant_audit(filters))

    async def get_delivery(self, webhook_id: str, delivery_id: str) -> Delivery:
        """One delivery, with its request and response."""
        return await self._send(ops.get_delivery(webhook_id, delivery_id))

    async def resend_delivery(self, webhook_id: str, delivery_id: str) -> Delivery:
        """Send a delivery again now, with the webhook's current settings: a new delivery."""
        return await self._send(ops.resend_delivery(webhook_id, delivery_id))

    async def recover_deliveries(
        self, webhook_id: str, since: Time, until: Time | None = None
    ) -> Recovery:
        """Queue again the failed deliveries triggered in [since, until)."""
        return await self._send(ops.recover_deliveries(webhook_id, since, until))

    async def send_test_event(self, webhook_id: str, event_type: str | None = None) -> Delivery:
        """Send a signed test event now (a Hookstream extension): a sample of `event_type`, one
        of the webhook's (default its first), recorded in its history."""
        return await self._send(ops.send_test_event(webhook_id, event_type))

    async def get_recovery(self, webhook_id: str, recovery_id: str) -> Recovery:
        """How far a recovery has got."""
        return await self._send(ops.get_recovery(webhook_id, recovery_id))

    async def product_info(self) -> dict[str, Any]:
        """What Qlik's clients ask first; needs no token."""
        return await self._send(ops.product_info())
