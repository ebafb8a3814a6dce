"""The test event (a Hookstream extension): sent now, signed, marked as a test, in the history,
and rate limited like resend."""

import uuid
from collections.abc import Callable

import httpx
import orjson
import pytest

from hookstream_client import ApiError, AsyncClient
from hookstream_common.signing import qlik_signature
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from support import bearer, new_tenant, receiver_url

CREATED, DELETED = "com.qlik.v1.app.created", "com.qlik.v1.app.deleted"
SECRET = "t" * 40


async def test_a_test_event_arrives_signed_and_is_in_the_history(
    stack: ServiceSet,
    receiver: Receiver,
    client_for: Callable[..., AsyncClient],
    api: httpx.AsyncClient,
    token: Callable[..., str],
) -> None:
    tenant = new_tenant()
    client = client_for(tenant, "u1")
    path = f"/hooks/test-{uuid.uuid4().hex}"
    webhook = await client.create_webhook(
        {
            "name": "tested",
            "url": receiver_url(receiver, path),
            "eventTypes": [DELETED, CREATED],
            "secret": SECRET,
            "enabled": False,
        }
    )

    sent = await client.send_test_event(webhook.id)
    assert (sent.status, sent.event_type, sent.webhook_id) == ("success", DELETED, webhook.id)
    [arrived] = receiver.received(path)
    assert arrived.headers["qlik-signature"] == qlik_signature(SECRET, arrived.body)
    assert arrived.headers["webhook-id"] == sent.id
    event = orjson.loads(arrived.body)
    assert (event["eventType"], event["data"]["test"]) == (DELETED, True)
    assert event["extensions"]["tenantId"] == tenant
    assert await client.get_delivery(webhook.id, sent.id) == sent

    chosen = await client.send_test_event(webhook.id, CREATED)
    assert chosen.event_type == CREATED and chosen.id != sent.id
    listed = (await client.list_deliveries(webhook.id)).data
    assert [d.id for d in listed] == [chosen.id, sent.id]

    core = await api.post(
        f"/api/core/webhooks/{webhook.id}/actions/test",
        json={"eventType": CREATED},
        headers=bearer(token(tenant, "u1")),
    )
    assert core.status_code == 201 and core.json()["eventType"] == CREATED
    assert len(receiver.received(path)) == 3

    receiver.respond(path, status=500)
    failed = await client.send_test_event(webhook.id)
    assert failed.status == "fail" and "500" in failed.status_message

    with pytest.raises(ApiError) as not_its_type:
        await client.send_test_event(webhook.id, "com.qlik.v1.user.created")
    assert not_its_type.value.status == 400
    assert not_its_type.value.detail.startswith("eventType:")
    with pytest.raises(ApiError) as elsewhere:
        await client_for(new_tenant(), admin=True).send_test_event(webhook.id)
    assert elsewhere.value.status == 404
    assert len(receiver.received(path)) == 4


async def test_test_events_take_the_action_rate(
    stack: ServiceSet,
    receiver: Receiver,
    api: httpx.AsyncClient,
    token: Callable[..., str],
) -> None:
    auth = bearer(token(new_tenant(), "u1"))
    path = f"/hooks/rate-{uuid.uuid4().hex}"
    created = await api.post(
        "/api/v1/webhooks",
        json={"name": "rated", "url": receiver_url(receiver, path), "eventTypes": [CREATED]},
        headers=auth,
    )
    url = f"/api/v1/webhooks/{created.json()['id']}/actions/test"
    statuses = []
    while 429 not in statuses and len(statuses) < 60:
        answer = await api.post(url, headers=auth)
        statuses.append(answer.status_code)
    assert statuses[-1] == 429 and set(statuses[:-1]) == {201}, statuses
    error = answer.json()["errors"][0]
    assert error["code"] == "HOOKSTREAM-429" and "a second" in error["detail"]
    assert int(answer.headers["Retry-After"]) >= 1
    assert len(receiver.received(path)) == len(statuses) - 1
