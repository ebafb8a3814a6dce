"""Delivery history and resend through the API, with deliveries made by the real pipeline."""

import hashlib
import hmac
import uuid
from typing import Any

import asyncpg
import httpx

from hookstream_common.sdk import EventPublisher, sample_event
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from support import bearer, new_tenant, receiver_url, wait_routed, wait_until

V1 = "/api/v1/webhooks"
CREATED, DELETED = "com.qlik.v1.app.created", "com.qlik.v1.app.deleted"
SECRET = "r" * 40


async def webhook_with_history(
    api: httpx.AsyncClient,
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    auth: str,
    tenant: str,
    events: list[str],
    path: str,
) -> dict[str, Any]:
    """A webhook that has received one delivery per event type in `events`."""
    response = await api.post(
        V1,
        json={
            "name": "history",
            "url": receiver_url(receiver, path),
            "eventTypes": [CREATED, DELETED],
            "secret": SECRET,
            "encryptedHeaders": {"X-Api-Key": "top-secret"},
        },
        headers=bearer(auth),
    )
    assert response.status_code == 201, response.text
    webhook = response.json()
    await wait_routed(stack, tenant, {webhook["id"]})
    for event_type in events:
        await publisher.publish(sample_event(event_type, tenant, "u1"))

    async def stored() -> bool:
        listed = await api.get(
            f"{V1}/{webhook['id']}/deliveries", params={"limit": 100}, headers=bearer(auth)
        )
        assert listed.status_code == 200, listed.text
        return len(listed.json()["data"]) == len(events)

    await wait_until(stored, timeout=30)
    return webhook


async def test_list_filter_sort_page_and_get(
    api: httpx.AsyncClient,
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    token: Any,
) -> None:
    tenant = new_tenant()
    auth = token(tenant, "u1")
    path = f"/hooks/history-{uuid.uuid4().hex}"
    receiver.respond(path, status=500)
    events = [CREATED, DELETED, CREATED, CREATED, DELETED]
    webhook = await webhook_with_history(
        api, stack, receiver, publisher, auth, tenant, events, path
    )
    base = f"{V1}/{webhook['id']}/deliveries"

    everything = (await api.get(base, params={"limit": 100}, headers=bearer(auth))).json()
    times = [d["triggeredAt"] for d in everything["data"]]
    assert times == sorted(times, reverse=True)
    assert {d["status"] for d in everything["data"]} == {"fail"}
    first = everything["data"][0]
    assert first["request"]["headers"]["X-Api-Key"] == "**OMITTED**"
    assert "top-secret" not in str(everything)
    assert first["response"]["statusCode"] == 500

    by_type = await api.get(base, params={"eventType": DELETED}, headers=bearer(auth))
    assert [d["eventType"] for d in by_type.json()["data"]] == [DELETED, DELETED]
    failed = await api.get(base, params={"status": "fail"}, headers=bearer(auth))
    assert len(failed.json()["data"]) == 5
    succeeded = await api.get(base, params={"status": "success"}, headers=bearer(auth))
    assert succeeded.json()["data"] == []
    oldest = await api.get(base, params={"sort": "triggeredAt", "limit": 1}, headers=bearer(auth))
    assert oldest.json()["data"][0]["id"] == everything["data"][-1]["id"]

    seen, url = [], str(httpx.URL(base, params={"limit": 2}))
    while url:
        page = (await api.get(url, headers=bearer(auth))).json()
        seen += [d["id"] for d in page["data"]]
        url = page["links"].get("next", {}).get("href")
    assert seen == [d["id"] for d in everything["data"]]

    one = await api.get(f"{base}/{first['id']}", headers=bearer(auth))
    assert one.status_code == 200 and one.json() == first
    assert (await api.get(f"{base}/{uuid.uuid4()}", headers=bearer(auth))).status_code == 404
    stranger = token(new_tenant(), "u1", admin=True)
    assert (await api.get(f"{base}/{first['id']}", headers=bearer(stranger))).status_code == 404
    bad_status = await api.get(base, params={"status": "meh"}, headers=bearer(auth))
    assert bad_status.status_code == 400


async def test_resend_uses_the_current_settings_and_records_a_new_delivery(
    api: httpx.AsyncClient,
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    token: Any,
) -> None:
    tenant = new_tenant()
    auth = token(tenant, "u1")
    old_path, new_path = f"/hooks/old-{uuid.uuid4().hex}", f"/hooks/new-{uuid.uuid4().hex}"
    webhook = await webhook_with_history(
        api, stack, receiver, publisher, auth, tenant, [CREATED], old_path
    )
    base = f"{V1}/{webhook['id']}/deliveries"
    [original] = (await api.get(base, headers=bearer(auth))).json()["data"]
    new_secret = "n" * 40
    change = [
        {"op": "replace", "path": "/url", "value": receiver_url(receiver, new_path)},
        {"op": "replace", "path": "/secret", "value": new_secret},
    ]
    assert (
        await api.patch(f"{V1}/{webhook['id']}", json=change, headers=bearer(auth))
    ).status_code == 204

    response = await api.post(f"{base}/{original['id']}/actions/resend", headers=bearer(auth))
    assert response.status_code == 201, response.text
    resent = response.json()
    assert resent["id"] != original["id"] and resent["status"] == "success"
    assert resent["request"]["url"].endswith(new_path)
    assert resent["request"]["body"] == original["request"]["body"]
    [arrived] = receiver.received(new_path)
    expected = hmac.new(new_secret.encode(), arrived.body, hashlib.sha256).hexdigest()
    assert arrived.headers["qlik-signature"] == expected
    assert arrived.headers["x-api-key"] == "top-secret"
    listed = (await api.get(base, headers=bearer(auth))).json()["data"]
    assert {d["id"] for d in listed} == {original["id"], resent["id"]}

    receiver.respond(new_path, status=503)
    failing = await api.post(f"{base}/{original['id']}/actions/resend", headers=bearer(auth))
    assert failing.status_code == 201 and failing.json()["status"] == "fail"
    assert "503" in failing.json()["statusMessage"]
    missing = await api.post(f"{base}/{uuid.uuid4()}/actions/resend", headers=bearer(auth))
    assert missing.status_code == 404


async def test_resend_is_stored_like_every_attempt_and_counts_towards_health(
    api: httpx.AsyncClient,
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    token: Any,
    database_url: str,
) -> None:
    tenant = new_tenant()
    auth = token(tenant, "u1")
    path = f"/hooks/health-{uuid.uuid4().hex}"
    webhook = await webhook_with_history(
        api, stack, receiver, publisher, auth, tenant, [CREATED], path
    )
    base = f"{V1}/{webhook['id']}/deliveries"
    [original] = (await api.get(base, headers=bearer(auth))).json()["data"]
    db = await asyncpg.connect(database_url)

    async def failures() -> int:
        return await db.fetchval(
            "SELECT consecutive_failures FROM webhook_health WHERE webhook_id = $1",
            uuid.UUID(webhook["id"]),
        )

    try:
        assert await failures() == 0  # the dispatcher stored the first, successful, delivery
        receiver.respond(path, status=400)
        for _ in range(2):
            resent = await api.post(f"{base}/{original['id']}/actions/resend", headers=bearer(auth))
            assert resent.json()["status"] == "fail"
        assert await failures() == 2
        attempts = await db.fetchval(
            "SELECT count(*) FROM delivery_attempts WHERE delivery_id = $1",
            uuid.UUID(resent.json()["id"]),
        )
        assert attempts == 1
        receiver.respond(path, status=200)
        await api.post(f"{base}/{original['id']}/actions/resend", headers=bearer(auth))
        assert await failures() == 0
    finally:
        await db.close()
