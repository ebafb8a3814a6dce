"""A tenant's headers never say how the request is framed or routed, nor what the service sets.

`Transfer-Encoding: chunked` as a custom header made the dispatcher send it and Content-Length
around a plain body: a request a proxy and the receiver may read differently. The API refuses
such names; the senders drop them from rows stored before a name was reserved.
"""

import uuid
from collections.abc import Callable

import asyncpg
import httpx
import orjson
import pytest
from e2e.scenario import Scenario, unique_path

from hookstream_api.validation import InvalidInput, check_headers
from hookstream_common.crypto import SecretBox
from hookstream_common.delivery import OMITTED, build_request
from hookstream_common.events import Event
from hookstream_common.webhook_model import DeliveryTarget
from hookstream_common.webhook_store import OUTBOX_CHANNEL
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver
from support import bearer, carrying, new_tenant, receiver_url, wait_until

RESERVED = [
    "Transfer-Encoding",
    "transfer-encoding",
    "Connection",
    "Keep-Alive",
    "TE",
    "Trailer",
    "Upgrade",
    "HTTP2-Settings",
    "Proxy-Authorization",
    "Proxy-Connection",
    "Expect",
    "Content-Encoding",
    "Content-Length",
    "Host",
    "Content-Type",
    "User-Agent",
    "Qlik-Signature",
    "Webhook-Id",
    "webhook-signature",
]
SMUGGLING = {
    "Transfer-Encoding": "chunked",
    "Content-Length": "5",
    "Connection": "close",
    "Host": "internal.example.com",
    "Expect": "100-continue",
}
"""What a row stored before the names were reserved may hold."""
EVENT = Event.parse(orjson.dumps(sample_event("com.qlik.v1.app.created", "t-1")))


@pytest.mark.parametrize("name", RESERVED)
def test_reserved_names_are_refused_in_either_kind_of_headers(name: str) -> None:
    for field in ("headers", "encryptedHeaders"):
        with pytest.raises(InvalidInput, match=f"{field}: {name} is reserved"):
            check_headers(field, {name: "x"})


@pytest.mark.parametrize("name", ["Authorization", "X-Api-Key", "Cookie", "Content-Language"])
def test_ordinary_names_pass(name: str) -> None:
    check_headers("headers", {name: "x"})


def test_the_request_drops_reserved_names_stored_before_they_were_reserved() -> None:
    target = DeliveryTarget(
        webhook_id="w-1",
        tenant_id="t-1",
        url="https://hooks.example.com/x",
        headers={**SMUGGLING, "X-Keep": "1"},
        encrypted_headers={"transfer-encoding": "chunked", "X-Token": "t"},
        secret=None,
        enabled=True,
        cloud_event=False,
    )
    request = build_request(target, EVENT, "d-1", "Qlik Webhook")
    names = {name.lower() for name in request.headers}
    assert not names & {name.lower() for name in SMUGGLING}
    assert request.headers["X-Keep"] == "1" and request.headers["X-Token"] == "t"
    assert request.recorded_headers["X-Token"] == OMITTED
    assert "transfer-encoding" not in {name.lower() for name in request.recorded_headers}


async def test_the_api_refuses_framing_headers(
    api: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    auth = bearer(token(new_tenant(), "u1"))
    for field in ("headers", "encryptedHeaders"):
        body = {
            "name": "framing",
            "url": "https://hooks.example.com/x",
            "eventTypes": ["com.qlik.v1.app.created"],
            field: {"Transfer-Encoding": "chunked"},
        }
        response = await api.post("/api/v1/webhooks", json=body, headers=auth)
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["detail"].startswith(
            f"{field}: Transfer-Encoding is reserved"
        )


async def test_stored_framing_headers_are_not_sent(
    scenario: Scenario,
    receiver: Receiver,
    db: asyncpg.Connection,
    settings_env: dict[str, str],
) -> None:
    """Written straight into the row, as before the rule; the delivery arrives well framed."""
    path = unique_path("framing")
    receiver.respond(path, status=200)
    webhook = await scenario.webhook(receiver_url(receiver, path), headers={"X-Keep": "1"})
    box = SecretBox(settings_env["HOOKSTREAM_ENCRYPTION_KEYS"].split(","))
    sealed = box.seal(orjson.dumps({"Transfer-Encoding": "chunked", "X-Token": "t"}).decode())
    async with db.transaction():
        await db.execute(
            "UPDATE webhooks SET headers = $2, encrypted_headers = $3 WHERE id = $1",
            uuid.UUID(webhook.id),
            orjson.dumps({**SMUGGLING, "X-Keep": "1"}).decode(),
            sealed,
        )
        await db.execute("SELECT pg_notify($1, $2)", OUTBOX_CHANNEL, webhook.id)
    [event] = await scenario.publish()
    [request] = await wait_until(lambda: carrying(receiver, path, event), timeout=30)
    assert "transfer-encoding" not in request.headers
    assert request.headers["content-length"] == str(len(request.body))
    assert request.headers["host"] != "internal.example.com"
    assert request.headers["x-keep"] == "1" and request.headers["x-token"] == "t"
    assert orjson.loads(request.body)["eventId"] == event["eventId"]
