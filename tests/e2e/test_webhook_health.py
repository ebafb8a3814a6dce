"""A webhook's health at a glance (Hookstream extension fields): they change as deliveries
succeed and fail, the list filters on lastStatus, and a client cannot write them."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hookstream_common.sdk import EventPublisher
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from support import bearer, new_tenant, receiver_url, wait_routed, wait_until

V1 = "/api/v1/webhooks"
APP_CREATED = "com.qlik.v1.app.created"
HEALTH = (
    "lastDeliveryAt",
    "lastStatus",
    "consecutiveFailures",
    "successRate1h",
    "successRate24h",
    "pendingRetries",
)


async def test_health_follows_successes_failures_and_retries(
    api: httpx.AsyncClient,
    token: Callable[..., str],
    receiver: Receiver,
    publisher: EventPublisher,
    stack: ServiceSet,
) -> None:
    tenant = new_tenant()
    auth = bearer(token(tenant, "u1"))
    path = f"/health/{tenant}"
    body = {"name": "health", "url": receiver_url(receiver, path), "eventTypes": [APP_CREATED]}
    created = await api.post(V1, json=body, headers=auth)
    assert created.status_code == 201, created.text
    webhook_id = created.json()["id"]
    assert {name: created.json()[name] for name in HEALTH} == {
        "lastDeliveryAt": None,
        "lastStatus": None,
        "consecutiveFailures": 0,
        "successRate1h": None,
        "successRate24h": None,
        "pendingRetries": 0,
    }
    await wait_routed(stack, tenant, {webhook_id})

    async def health() -> dict[str, Any]:
        response = await api.get(f"{V1}/{webhook_id}", headers=auth)
        assert response.status_code == 200, response.text
        return {name: response.json()[name] for name in HEALTH}

    async def listed(last_status: str) -> set[str]:
        response = await api.get(V1, params={"lastStatus": last_status}, headers=auth)
        assert response.status_code == 200, response.text
        return {w["id"] for w in response.json()["data"]}

    async def publish() -> None:
        await publisher.publish(sample_event(APP_CREATED, tenant, user_id="u1"))

    await publish()
    ok = await wait_until(lambda: _when(health(), lambda h: h["lastStatus"] == "success"))
    assert ok["consecutiveFailures"] == 0 and ok["pendingRetries"] == 0
    assert ok["successRate1h"] == ok["successRate24h"] == 1.0
    assert ok["lastDeliveryAt"] is not None
    assert webhook_id in await listed("success") and webhook_id not in await listed("fail")

    receiver.respond(path, status=503)  # retried: 1 s, 2 s, 4 s in tests
    await publish()
    failing = await wait_until(lambda: _when(health(), lambda h: h["lastStatus"] == "fail"))
    assert failing["consecutiveFailures"] >= 1
    assert failing["pendingRetries"] == 1
    assert failing["successRate1h"] < 1.0
    assert failing["lastDeliveryAt"] > ok["lastDeliveryAt"]
    assert webhook_id in await listed("fail") and webhook_id not in await listed("success")

    receiver.respond(path, status=200)  # the next retry succeeds
    healed = await wait_until(
        lambda: _when(health(), lambda h: h["lastStatus"] == "success" and not h["pendingRetries"])
    )
    assert healed["consecutiveFailures"] == 0
    tried = len(receiver.received(path))
    assert healed["successRate1h"] == pytest.approx(2 / tried, abs=1e-3)


async def _when(reading: Any, condition: Callable[[dict[str, Any]], bool]) -> Any:
    value = await reading
    return value if condition(value) else None


@pytest.mark.parametrize("field", HEALTH)
async def test_health_fields_are_read_only(
    api: httpx.AsyncClient, token: Callable[..., str], receiver: Receiver, field: str
) -> None:
    auth = bearer(token(new_tenant(), "u1"))
    body = {"name": "ro", "url": receiver_url(receiver, "/ro"), "eventTypes": [APP_CREATED]}
    response = await api.post(V1, json={**body, field: None}, headers=auth)
    assert response.status_code == 409, response.text
    created = await api.post(V1, json=body, headers=auth)
    patch = [{"op": "replace", "path": f"/{field}", "value": 1}]
    response = await api.patch(f"{V1}/{created.json()['id']}", json=patch, headers=auth)
    assert response.status_code == 409, response.text


async def test_the_last_status_filter_takes_only_known_values(
    api: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    response = await api.get(
        V1, params={"lastStatus": "pending"}, headers=bearer(token(new_tenant()))
    )
    assert response.status_code == 400, response.text
