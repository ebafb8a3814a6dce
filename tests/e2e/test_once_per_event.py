"""One delivery per event (issue 22 item 1): an event published again after it was delivered is
not sent again to the webhook; resend still sends."""

import uuid
from collections.abc import Callable

from hookstream_client import AsyncClient
from hookstream_common.sdk import EventPublisher
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from support import metric, new_tenant, receiver_url, scrape, wait_routed, wait_until

CREATED = "com.qlik.v1.app.created"
SKIPPED = "hookstream_dispatcher_already_delivered_total"


async def test_an_event_published_three_times_is_delivered_once(
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    client_for: Callable[..., AsyncClient],
) -> None:
    tenant = new_tenant()
    client = client_for(tenant, "u1")
    path = f"/hooks/once-{uuid.uuid4().hex}"
    webhook = await client.create_webhook(
        {"name": "once", "url": receiver_url(receiver, path), "eventTypes": [CREATED]}
    )
    await wait_routed(stack, tenant, {webhook.id})
    event = sample_event(CREATED, tenant, "u1")
    await publisher.publish(event)
    await receiver.wait_for(1, timeout=30, path=path)

    async def stored() -> bool:
        return [d.status for d in (await client.list_deliveries(webhook.id)).data] == ["success"]

    await wait_until(stored, timeout=30)
    dispatcher = stack.url("dispatcher")
    before = metric(await scrape(dispatcher), SKIPPED)
    for _ in range(2):
        await publisher.publish(event)

    async def skipped_both() -> bool:
        return metric(await scrape(dispatcher), SKIPPED) >= before + 2

    await wait_until(skipped_both, timeout=30)
    assert len(receiver.received(path)) == 1
    [delivery] = (await client.list_deliveries(webhook.id)).data

    resent = await client.resend_delivery(webhook.id, delivery.id)
    assert resent.status == "success" and len(receiver.received(path)) == 2
