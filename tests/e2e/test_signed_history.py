"""The history shows the bytes that were signed (issue 13 item 8): a delivery's `request.body`
and headers are what the receiver got, and `Qlik-Signature` recomputed from that body (HMAC-SHA256,
lowercase hex, keyed with the webhook's secret, as signing.qlik_signature) matches the header
stored beside it."""

import hashlib
import hmac
import uuid
from collections.abc import Callable

import httpx
import orjson
import pytest

from hookstream_client import AsyncClient
from hookstream_common.sdk import EventPublisher
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from support import bearer, carrying, new_tenant, receiver_url, wait_routed, wait_until

SECRET = "signed-history-secret-0123456789abcdef"
APP_CREATED = "com.qlik.v1.app.created"


@pytest.mark.parametrize("cloud_event", [False, True])
async def test_history_body_is_the_signed_bytes(
    cloud_event: bool,
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    api: httpx.AsyncClient,
    token: Callable[..., str],
    client_for: Callable[..., AsyncClient],
) -> None:
    tenant = new_tenant()
    client = client_for(tenant, "admin-1", admin=True)
    path = f"/hooks/{uuid.uuid4().hex}"
    webhook = await client.create_webhook(
        {
            "name": "signed history",
            "url": receiver_url(receiver, path),
            "eventTypes": [APP_CREATED],
            "secret": SECRET,
            "enableCloudEventDelivery": cloud_event,
        }
    )
    await wait_routed(stack, tenant, {webhook.id})
    event = sample_event(APP_CREATED, tenant, "admin-1")
    # Keys in an order no JSON store sorts them in, and text beyond ASCII.
    event["data"] = {"zeta": 1, "alpha": "Zażółć gęślą jaźń", "mid": {"b": [2.5, None], "a": True}}
    await publisher.publish(event)
    [received] = await wait_until(lambda: carrying(receiver, path, event), timeout=30)

    async def stored() -> httpx.Response | None:
        response = await api.get(
            f"/api/v1/webhooks/{webhook.id}/deliveries/{received.headers['webhook-id']}",
            headers=bearer(token(tenant, "admin-1", admin=True)),
        )
        return response if response.status_code == 200 else None

    response = await wait_until(stored, timeout=15)
    request = orjson.loads(response.content)["request"]
    body = orjson.dumps(request["body"])  # compact JSON, in the order the history gives
    assert body == received.body
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert request["headers"]["Qlik-Signature"] == signature
    assert received.headers["qlik-signature"] == signature
    for name in ("Content-Type", "User-Agent", "webhook-id", "webhook-timestamp"):
        assert request["headers"][name] == received.headers[name.lower()]
    assert request["headers"]["webhook-signature"] == received.headers["webhook-signature"]
