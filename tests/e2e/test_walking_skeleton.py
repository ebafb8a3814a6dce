"""An event in, a signed webhook out: the whole pipeline on real Kafka, Postgres and HTTPS."""

import hashlib
import hmac
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from hookstream_client import AsyncClient, Delivery, Webhook
from hookstream_common.kafka import client_options
from hookstream_common.sdk import EventPublisher
from hookstream_dev.events import publish_raw, sample_event
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from support import carrying, jobs_routed_to, new_tenant, receiver_url, wait_routed, wait_until

SECRET = "0123456789abcdef0123456789abcdef-secret"
APP_CREATED = "com.qlik.v1.app.created"


async def create_webhook(client: AsyncClient, url: str, **fields: Any) -> Webhook:
    return await client.create_webhook(
        {"name": "test hook", "url": url, "eventTypes": [APP_CREATED], **fields}
    )


def requests_to(receiver: Receiver, path: str) -> list[Any]:
    return [r for r in receiver.requests if r.path == path]


async def test_event_is_delivered_signed_and_recorded(
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    client_for: Callable[..., AsyncClient],
) -> None:
    tenant = new_tenant()
    client = client_for(tenant, "admin-1", admin=True)
    path = f"/hooks/{uuid.uuid4().hex}"
    webhook = await create_webhook(client, receiver_url(receiver, path), secret=SECRET)
    assert webhook.secret_key_added is True and "secret" not in webhook.to_json()
    await wait_routed(stack, tenant, {webhook.id})

    event, marker = (sample_event(APP_CREATED, tenant, "admin-1") for _ in range(2))
    await publisher.publish(event)
    await publisher.publish(marker)  # jobs are sent in order: a duplicate comes before it

    await wait_until(lambda: carrying(receiver, path, marker), timeout=30)
    [received] = carrying(receiver, path, event)
    assert received.method == "POST"
    assert orjson.loads(received.body) == event
    expected = hmac.new(SECRET.encode(), received.body, hashlib.sha256).hexdigest()
    assert received.headers["qlik-signature"] == expected
    assert received.headers["content-type"] == "application/json"
    assert received.headers["user-agent"] == "Qlik Webhook"

    async def delivered() -> list[Delivery]:
        data = (await client.list_deliveries(webhook.id)).data
        return [d for d in data if d.id == received.headers["webhook-id"]]

    [delivery] = await wait_until(delivered, timeout=15)
    assert delivery.status == "success"
    assert delivery.event_type == APP_CREATED
    assert delivery.webhook_id == webhook.id
    assert delivery.request.body == event
    assert delivery.response is not None and delivery.response.status_code == 200
    assert received.headers["webhook-id"] == delivery.id


async def test_only_matching_webhooks_receive(
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    client_for: Callable[..., AsyncClient],
) -> None:
    tenant, other_tenant = new_tenant(), new_tenant()
    client, other_client = client_for(tenant, "u1"), client_for(other_tenant, "u1")
    paths = {
        name: f"/hooks/{name}-{uuid.uuid4().hex}" for name in ("target", "other", "off", "type")
    }
    target = await create_webhook(client, receiver_url(receiver, paths["target"]))
    other = await create_webhook(other_client, receiver_url(receiver, paths["other"]))
    disabled = await create_webhook(client, receiver_url(receiver, paths["off"]), enabled=False)
    wrong_type = await create_webhook(
        client, receiver_url(receiver, paths["type"]), eventTypes=["com.qlik.v1.app.deleted"]
    )
    await wait_routed(stack, tenant, {target.id, wrong_type.id}, disabled=frozenset({disabled.id}))
    await wait_routed(stack, other_tenant, {other.id})

    event = sample_event(APP_CREATED, tenant, "u1")
    await publisher.publish(event)
    await wait_until(partial(carrying, receiver, paths["target"], event), timeout=30)
    # Markers each of the others takes, published after the event: what it was wrongly given
    # would be in its queue before its marker.
    markers = {
        "target": sample_event(APP_CREATED, tenant, "u1"),
        "other": sample_event(APP_CREATED, other_tenant, "u1"),
        "type": sample_event("com.qlik.v1.app.deleted", tenant, "u1"),
    }
    for marker in markers.values():
        await publisher.publish(marker)
    for name, marker in markers.items():
        await wait_until(partial(carrying, receiver, paths[name], marker), timeout=30)
    assert len(requests_to(receiver, paths["target"])) == 2, "the event once, and its marker"
    for name in ("other", "type"):
        assert requests_to(receiver, paths[name]) == carrying(receiver, paths[name], markers[name])
    # The matcher has routed the tenant's marker, so the event's jobs, if any, were written.
    routed = {
        w.id: await jobs_routed_to(stack, w.id) for w in (target, other, disabled, wrong_type)
    }
    assert routed == {target.id: 2, other.id: 1, disabled.id: 0, wrong_type.id: 1}
    assert requests_to(receiver, paths["off"]) == []


async def test_malformed_event_goes_to_dlq_and_the_next_is_delivered(
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    client_for: Callable[..., AsyncClient],
    settings_env: dict[str, str],
    servers: dict[str, str],
) -> None:
    tenant = new_tenant()
    path = f"/hooks/{uuid.uuid4().hex}"
    webhook = await create_webhook(client_for(tenant, "u1"), receiver_url(receiver, path))
    await wait_routed(stack, tenant, {webhook.id})
    garbage = f"not an event {uuid.uuid4()}".encode()

    prefix = settings_env["HOOKSTREAM_TOPIC_PREFIX"]
    await publish_raw(servers["kafka"], prefix, garbage, key=tenant.encode())
    await publisher.publish(sample_event(APP_CREATED, tenant, "u1"))

    await wait_until(lambda: requests_to(receiver, path), timeout=30)
    consumer = AIOKafkaConsumer(
        f"{prefix}.events.dlq",
        **client_options(servers["kafka"]),
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    try:

        async def dead_letter() -> Any:
            batch = await consumer.getmany(timeout_ms=500)
            return next((r for rs in batch.values() for r in rs if r.value == garbage), None)

        record = await wait_until(dead_letter, timeout=20)
    finally:
        await consumer.stop()
    headers = dict(record.headers)
    assert headers["hookstream-dlq-reason"].startswith(b"not JSON")
    assert stack.processes["matcher"].poll() is None
