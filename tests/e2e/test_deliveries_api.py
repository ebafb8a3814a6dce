"""Delivery history and resend through the API, with deliveries made by the real pipeline."""

import uuid
from collections.abc import Callable

import asyncpg
import pytest

from hookstream_client import ApiError, AsyncClient, Webhook
from hookstream_common.sdk import EventPublisher
from hookstream_common.signing import qlik_signature
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from support import new_tenant, receiver_url, wait_routed, wait_until

CREATED, DELETED = "com.qlik.v1.app.created", "com.qlik.v1.app.deleted"
SECRET = "r" * 40


async def webhook_with_history(
    client: AsyncClient,
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    tenant: str,
    events: list[str],
    path: str,
) -> Webhook:
    """A webhook that has received one delivery per event type in `events`."""
    webhook = await client.create_webhook(
        {
            "name": "history",
            "url": receiver_url(receiver, path),
            "eventTypes": [CREATED, DELETED],
            "secret": SECRET,
            "encryptedHeaders": {"X-Api-Key": "top-secret"},
        }
    )
    await wait_routed(stack, tenant, {webhook.id})
    for event_type in events:
        await publisher.publish(sample_event(event_type, tenant, "u1"))

    async def stored() -> bool:
        return len((await client.list_deliveries(webhook.id, limit=100)).data) == len(events)

    await wait_until(stored, timeout=30)
    return webhook


async def test_list_filter_sort_page_and_get(
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    client_for: Callable[..., AsyncClient],
) -> None:
    tenant = new_tenant()
    client = client_for(tenant, "u1")
    path = f"/hooks/history-{uuid.uuid4().hex}"
    receiver.respond(path, status=500)
    events = [CREATED, DELETED, CREATED, CREATED, DELETED]
    webhook = await webhook_with_history(client, stack, receiver, publisher, tenant, events, path)

    everything = (await client.list_deliveries(webhook.id, limit=100)).data
    times = [d.triggered_at for d in everything]
    assert times == sorted(times, reverse=True)
    assert {d.status for d in everything} == {"fail"}
    first = everything[0]
    assert first.request.headers["X-Api-Key"] == "**OMITTED**"
    assert "top-secret" not in str([d.to_json() for d in everything])
    assert first.response is not None and first.response.status_code == 500

    by_type = await client.list_deliveries(webhook.id, event_type=DELETED)
    assert [d.event_type for d in by_type.data] == [DELETED, DELETED]
    assert len((await client.list_deliveries(webhook.id, status="fail")).data) == 5
    assert (await client.list_deliveries(webhook.id, status="success")).data == []
    oldest = await client.list_deliveries(webhook.id, sort="triggeredAt", limit=1)
    assert oldest.data[0].id == everything[-1].id

    paged = [d.id async for d in client.iter_deliveries(webhook.id, limit=2)]
    assert paged == [d.id for d in everything]

    assert await client.get_delivery(webhook.id, first.id) == first
    for caller, delivery_id in (
        (client, str(uuid.uuid4())),
        (client_for(new_tenant(), admin=True), first.id),
    ):
        with pytest.raises(ApiError) as missing:
            await caller.get_delivery(webhook.id, delivery_id)
        assert missing.value.status == 404
    with pytest.raises(ApiError) as bad_status:
        await client.list_deliveries(webhook.id, status="meh")
    assert bad_status.value.status == 400 and bad_status.value.detail.startswith("status")


async def test_resend_uses_the_current_settings_and_records_a_new_delivery(
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    client_for: Callable[..., AsyncClient],
) -> None:
    tenant = new_tenant()
    client = client_for(tenant, "u1")
    old_path, new_path = f"/hooks/old-{uuid.uuid4().hex}", f"/hooks/new-{uuid.uuid4().hex}"
    webhook = await webhook_with_history(
        client, stack, receiver, publisher, tenant, [CREATED], old_path
    )
    [original] = (await client.list_deliveries(webhook.id)).data
    new_secret = "n" * 40
    change = [
        {"op": "replace", "path": "/url", "value": receiver_url(receiver, new_path)},
        {"op": "replace", "path": "/secret", "value": new_secret},
    ]
    await client.patch_webhook(webhook.id, change)

    resent = await client.resend_delivery(webhook.id, original.id)
    assert resent.id != original.id and resent.status == "success"
    assert resent.request.url.endswith(new_path)
    assert resent.request.body == original.request.body
    [arrived] = receiver.received(new_path)
    assert arrived.headers["qlik-signature"] == qlik_signature(new_secret, arrived.body)
    assert arrived.headers["x-api-key"] == "top-secret"
    listed = (await client.list_deliveries(webhook.id)).data
    assert {d.id for d in listed} == {original.id, resent.id}

    receiver.respond(new_path, status=503)
    failing = await client.resend_delivery(webhook.id, original.id)
    assert failing.status == "fail" and "503" in failing.status_message
    with pytest.raises(ApiError) as missing:
        await client.resend_delivery(webhook.id, str(uuid.uuid4()))
    assert missing.value.status == 404


async def test_resend_is_stored_like_every_attempt_and_counts_towards_health(
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    client_for: Callable[..., AsyncClient],
    database_url: str,
) -> None:
    tenant = new_tenant()
    client = client_for(tenant, "u1")
    path = f"/hooks/health-{uuid.uuid4().hex}"
    webhook = await webhook_with_history(
        client, stack, receiver, publisher, tenant, [CREATED], path
    )
    [original] = (await client.list_deliveries(webhook.id)).data
    db = await asyncpg.connect(database_url)

    async def failures() -> int:
        return await db.fetchval(
            "SELECT consecutive_failures FROM webhook_health WHERE webhook_id = $1",
            uuid.UUID(webhook.id),
        )

    try:
        assert await failures() == 0  # the dispatcher stored the first, successful, delivery
        receiver.respond(path, status=400)
        for _ in range(2):
            resent = await client.resend_delivery(webhook.id, original.id)
            assert resent.status == "fail"
        assert await failures() == 2
        attempts = await db.fetchval(
            "SELECT count(*) FROM delivery_attempts WHERE delivery_id = $1", uuid.UUID(resent.id)
        )
        assert attempts == 1
        receiver.respond(path, status=200)
        await client.resend_delivery(webhook.id, original.id)
        assert await failures() == 0
    finally:
        await db.close()
