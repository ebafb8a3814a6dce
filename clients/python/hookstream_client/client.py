"""`Client` and `AsyncClient`: one method per operation of the API, on httpx.

Both send the calls of `hookstream_client.operations`; they differ only in how they wait.
"""

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Self, TypeVar

import httpx

from hookstream_client import operations as ops
from hookstream_client.models import (
    Delivery,
    EventType,
    Page,
    PatchOperation,
    Recovery,
    Webhook,
    WebhookInput,
)
from hookstream_client.operations import Call, QueryValue

Result = TypeVar("Result")
Item = TypeVar("Item", Webhook, Delivery)
DEFAULT_PREFIX = "/api/v1"
"""The API is served under `/api/v1` and `/api/core` alike."""


def _options(token: str | None, httpx_options: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return {"timeout": 30.0, **httpx_options, "headers": headers | httpx_options.get("headers", {})}


def _url(prefix: str, call: Call[Any]) -> str:
    return prefix + call.path if call.path.startswith("/webhooks") else call.path


def _enabled(value: bool) -> list[PatchOperation]:
    return [PatchOperation(op="replace", path="/enabled", value=value)]


class Client:
    """The webhooks API, synchronously: `Client("http://127.0.0.1:8000", token=...)`.

    Extra keyword arguments go to `httpx.Client` (timeout, verify, transport, ...).
    """

    def __init__(
        self,
        api: str,
        token: str | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        **httpx_options: Any,
    ) -> None:
        self._http = httpx.Client(base_url=api, **_options(token, httpx_options))
        self._prefix = prefix

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def _send(self, call: Call[Result]) -> Result:
        response = self._http.request(
            call.method, _url(self._prefix, call), params=call.params, json=call.json
        )
        return call.result(response)

    def _items(self, page: Page[Item]) -> Iterator[Item]:
        while True:
            yield from page.data
            if page.links.next is None:
                return
            page = self._send(ops.follow(page.links.next.href, type(page)))

    def list_webhooks(self, **filters: QueryValue) -> Page[Webhook]:
        """One page of webhooks: filters as in the API, in snake_case (`owner_id="u1"`)."""
        return self._send(ops.list_webhooks(filters))

    def iter_webhooks(self, **filters: QueryValue) -> Iterator[Webhook]:
        """Every webhook that matches, following the `next` links page by page."""
        return self._items(self.list_webhooks(**filters))

    def create_webhook(self, body: WebhookInput | Mapping[str, Any]) -> Webhook:
        """Register a webhook (a mapping is sent as it is, with the API's field names)."""
        return self._send(ops.create_webhook(body))

    def list_event_types(self) -> list[EventType]:
        """The event types a webhook can subscribe to."""
        return self._send(ops.list_event_types())

    def get_webhook(self, webhook_id: str) -> Webhook:
        """One webhook."""
        return self._send(ops.get_webhook(webhook_id))

    def patch_webhook(
        self, webhook_id: str, operations: Sequence[PatchOperation | Mapping[str, Any]]
    ) -> None:
        """Change fields with JSON Patch operations."""
        self._send(ops.patch_webhook(webhook_id, operations))

    def enable_webhook(self, webhook_id: str) -> None:
        """Enable a webhook; this also clears why it was disabled."""
        self.patch_webhook(webhook_id, _enabled(True))

    def disable_webhook(self, webhook_id: str) -> None:
        """Stop deliveries to a webhook."""
        self.patch_webhook(webhook_id, _enabled(False))

    def replace_webhook(self, webhook_id: str, body: WebhookInput | Mapping[str, Any]) -> Webhook:
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
        return self._items(self.list_deliveries(webhook_id, **filters))

    def get_delivery(self, webhook_id: str, delivery_id: str) -> Delivery:
        """One delivery, with its request and response."""
        return self._send(ops.get_delivery(webhook_id, delivery_id))

    def resend_delivery(self, webhook_id: str, delivery_id: str) -> Delivery:
        """Send a delivery again now, with the webhook's current settings: a new delivery."""
        return self._send(ops.resend_delivery(webhook_id, delivery_id))

    def recover_deliveries(
        self, webhook_id: str, since: datetime | str, until: datetime | str | None = None
    ) -> Recovery:
        """Queue again the failed deliveries triggered in [since, until)."""
        return self._send(ops.recover_deliveries(webhook_id, since, until))

    def get_recovery(self, webhook_id: str, recovery_id: str) -> Recovery:
        """How far a recovery has got."""
        return self._send(ops.get_recovery(webhook_id, recovery_id))

    def product_info(self) -> dict[str, Any]:
        """What Qlik's clients ask first; needs no token."""
        return self._send(ops.product_info())


class AsyncClient:
    """The webhooks API for asyncio: `async with AsyncClient(api, token=...) as client`.

    Extra keyword arguments go to `httpx.AsyncClient` (timeout, verify, transport, ...).
    """

    def __init__(
        self,
        api: str,
        token: str | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        **httpx_options: Any,
    ) -> None:
        self._http = httpx.AsyncClient(base_url=api, **_options(token, httpx_options))
        self._prefix = prefix

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def _send(self, call: Call[Result]) -> Result:
        response = await self._http.request(
            call.method, _url(self._prefix, call), params=call.params, json=call.json
        )
        return call.result(response)

    async def _items(self, page: Page[Item]) -> AsyncIterator[Item]:
        while True:
            for item in page.data:
                yield item
            if page.links.next is None:
                return
            page = await self._send(ops.follow(page.links.next.href, type(page)))

    async def list_webhooks(self, **filters: QueryValue) -> Page[Webhook]:
        """One page of webhooks: filters as in the API, in snake_case (`owner_id="u1"`)."""
        return await self._send(ops.list_webhooks(filters))

    async def iter_webhooks(self, **filters: QueryValue) -> AsyncIterator[Webhook]:
        """Every webhook that matches, following the `next` links page by page."""
        async for webhook in self._items(await self.list_webhooks(**filters)):
            yield webhook

    async def create_webhook(self, body: WebhookInput | Mapping[str, Any]) -> Webhook:
        """Register a webhook (a mapping is sent as it is, with the API's field names)."""
        return await self._send(ops.create_webhook(body))

    async def list_event_types(self) -> list[EventType]:
        """The event types a webhook can subscribe to."""
        return await self._send(ops.list_event_types())

    async def get_webhook(self, webhook_id: str) -> Webhook:
        """One webhook."""
        return await self._send(ops.get_webhook(webhook_id))

    async def patch_webhook(
        self, webhook_id: str, operations: Sequence[PatchOperation | Mapping[str, Any]]
    ) -> None:
        """Change fields with JSON Patch operations."""
        await self._send(ops.patch_webhook(webhook_id, operations))

    async def enable_webhook(self, webhook_id: str) -> None:
        """Enable a webhook; this also clears why it was disabled."""
        await self.patch_webhook(webhook_id, _enabled(True))

    async def disable_webhook(self, webhook_id: str) -> None:
        """Stop deliveries to a webhook."""
        await self.patch_webhook(webhook_id, _enabled(False))

    async def replace_webhook(
        self, webhook_id: str, body: WebhookInput | Mapping[str, Any]
    ) -> Webhook:
        """Replace every writable field; unset ones return to their defaults."""
        return await self._send(ops.replace_webhook(webhook_id, body))

    async def delete_webhook(self, webhook_id: str) -> None:
        """Delete a webhook."""
        await self._send(ops.delete_webhook(webhook_id))

    async def list_deliveries(self, webhook_id: str, **filters: QueryValue) -> Page[Delivery]:
        """One page of a webhook's deliveries (`status`, `event_type`, `since`, `until`, ...)."""
        return await self._send(ops.list_deliveries(webhook_id, filters))

    async def iter_deliveries(
        self, webhook_id: str, **filters: QueryValue
    ) -> AsyncIterator[Delivery]:
        """Every delivery that matches, following the `next` links page by page."""
        async for delivery in self._items(await self.list_deliveries(webhook_id, **filters)):
            yield delivery

    async def get_delivery(self, webhook_id: str, delivery_id: str) -> Delivery:
        """One delivery, with its request and response."""
        return await self._send(ops.get_delivery(webhook_id, delivery_id))

    async def resend_delivery(self, webhook_id: str, delivery_id: str) -> Delivery:
        """Send a delivery again now, with the webhook's current settings: a new delivery."""
        return await self._send(ops.resend_delivery(webhook_id, delivery_id))

    async def recover_deliveries(
        self, webhook_id: str, since: datetime | str, until: datetime | str | None = None
    ) -> Recovery:
        """Queue again the failed deliveries triggered in [since, until)."""
        return await self._send(ops.recover_deliveries(webhook_id, since, until))

    async def get_recovery(self, webhook_id: str, recovery_id: str) -> Recovery:
        """How far a recovery has got."""
        return await self._send(ops.get_recovery(webhook_id, recovery_id))

    async def product_info(self) -> dict[str, Any]:
        """What Qlik's clients ask first; needs no token."""
        return await self._send(ops.product_info())
