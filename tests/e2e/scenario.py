"""One tenant of the e2e stack, its webhooks, and helpers to publish and inspect."""

import uuid
from typing import Any

import httpx

from hookstream_client import AsyncClient, Delivery, Webhook
from hookstream_common.sdk import EventPublisher
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from support import bearer, carrying, new_tenant, wait_routed, wait_until

CREATED = "com.qlik.v1.app.created"
V1 = "/api/v1/webhooks"


class Scenario:
    """One tenant, its webhooks, and helpers to publish and inspect.

    `client` is the tenant's API client; `api` and `auth` are for requests it would not send.
    """

    def __init__(
        self, api: httpx.AsyncClient, stack: ServiceSet, publisher: EventPublisher, token: Any
    ):
        self.api, self.stack, self.publisher = api, stack, publisher
        self.tenant = new_tenant()
        self.auth = bearer(token(self.tenant, "u1"))
        self.client = AsyncClient(stack.url("api"), token(self.tenant, "u1"), timeout=15)

    async def __aenter__(self) -> "Scenario":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.client.close()

    async def webhook(self, url: str, **fields: Any) -> Webhook:
        body = {"name": "engine", "url": url, "eventTypes": [CREATED], **fields}
        webhook = await self.client.create_webhook(body)
        await wait_routed(self.stack, self.tenant, {webhook.id})
        return webhook

    async def publish(self, count: int = 1) -> list[dict[str, Any]]:
        events = [sample_event(CREATED, self.tenant, "u1") for _ in range(count)]
        for event in events:
            await self.publisher.publish(event)
        return events

    async def deliveries(self, webhook: Webhook) -> list[Delivery]:
        return (await self.client.list_deliveries(webhook.id, limit=100)).data

    async def get(self, webhook: Webhook) -> Webhook:
        return await self.client.get_webhook(webhook.id)


async def marker_delivered(scenario: Scenario, receiver: Receiver, path: str) -> None:
    """Publish an event after what must not happen and wait for it: the lane has moved past.

    Jobs of a webhook are read in order, so once the marker's request arrived, a request for
    any job before it has been sent too.
    """
    receiver.respond(path, status=200)
    [marker] = await scenario.publish()
    await wait_until(lambda: carrying(receiver, path, marker), timeout=30)


def unique_path(name: str) -> str:
    return f"/hooks/{name}-{uuid.uuid4().hex}"
