"""Secret rotation with a grace window (a Hookstream extension): during the window deliveries
verify with the old and with the new secret, after it only with the new one; the API shows when
the old one expires and never a secret; PUT without a secret keeps the Qlik semantics."""

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from hookstream_common.sdk import EventPublisher
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver, RecordedRequest
from hookstream_dev.stack import ServiceSet
from support import bearer, carrying, new_tenant, receiver_url, wait_routed, wait_until

V1 = "/api/v1/webhooks"
APP_CREATED = "com.qlik.v1.app.created"
OLD, NEW, NEWER = "old-secret-" + "o" * 24, "new-secret-" + "n" * 24, "newer-secret-" + "w" * 24
GRACE = 6


def _verifies(secret: str, request: RecordedRequest) -> bool:
    """The Standard Webhooks reference library's check, as a receiver would run it."""
    receiver = StandardWebhook(base64.b64encode(secret.encode()).decode())
    try:
        receiver.verify(request.body, request.headers)
    except WebhookVerificationError:
        return False
    return True


def _by_hand(secret: str, request: RecordedRequest) -> bool:
    """The same check written out: any one `v1,<base64>` of the header must match."""
    signed = f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}.".encode()
    digest = hmac.new(secret.encode(), signed + request.body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()
    offered = request.headers["webhook-signature"].split(" ")
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)


def _qlik_signed_with(secret: str, request: RecordedRequest) -> bool:
    digest = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    return request.headers["qlik-signature"] == digest


class _Webhook:
    """One webhook of a fresh tenant, driven over the wire (the JSON is what is checked)."""

    def __init__(self, api: httpx.AsyncClient, token: str, receiver: Receiver, tenant: str):
        self.api, self.auth, self.receiver, self.tenant = api, bearer(token), receiver, tenant
        self.path = f"/rotation/{tenant}"
        self.id = ""

    def body(self, **fields: Any) -> dict[str, Any]:
        return {
            "name": "rotation",
            "url": receiver_url(self.receiver, self.path),
            "eventTypes": [APP_CREATED],
            "enabled": True,
            **fields,
        }

    async def create(self, **fields: Any) -> dict[str, Any]:
        response = await self.api.post(V1, json=self.body(**fields), headers=self.auth)
        assert response.status_code == 201, response.text
        self.id = response.json()["id"]
        return self.checked(response)

    async def get(self) -> dict[str, Any]:
        return self.checked(await self.api.get(f"{V1}/{self.id}", headers=self.auth))

    async def put(self, **fields: Any) -> dict[str, Any]:
        response = await self.api.put(
            f"{V1}/{self.id}", json=self.body(**fields), headers=self.auth
        )
        return self.checked(response)

    async def patch(self, *operations: dict[str, Any]) -> None:
        response = await self.api.patch(f"{V1}/{self.id}", json=list(operations), headers=self.auth)
        assert response.status_code == 204, response.text

    @staticmethod
    def checked(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code in (200, 201), response.text
        for secret in (OLD, NEW, NEWER):
            assert secret not in response.text
        return response.json()

    async def deliver(self, publisher: EventPublisher) -> RecordedRequest:
        event = sample_event(APP_CREATED, self.tenant, user_id="u1")
        await publisher.publish(event)
        [request] = await wait_until(lambda: carrying(self.receiver, self.path, event), 30)
        return request


def _expires(webhook: dict[str, Any]) -> datetime | None:
    value = webhook["previousSecretExpiresAt"]
    return datetime.fromisoformat(value) if value else None


@pytest.fixture
async def webhook(
    api: httpx.AsyncClient, token: Callable[..., str], receiver: Receiver, stack: ServiceSet
) -> _Webhook:
    tenant = new_tenant()
    return _Webhook(api, token(tenant, "u1"), receiver, tenant)


async def test_patching_the_secret_keeps_the_old_one_valid_for_the_grace_window(
    webhook: _Webhook, publisher: EventPublisher, stack: ServiceSet
) -> None:
    created = await webhook.create(secret=OLD, secretRotationGraceSeconds=GRACE)
    assert created["secretKeyAdded"] is True
    assert created["secretRotationGraceSeconds"] == GRACE
    assert created["previousSecretExpiresAt"] is None  # creating rotates nothing
    await wait_routed(stack, webhook.tenant, {webhook.id})

    before = datetime.now(UTC)
    await webhook.patch({"op": "replace", "path": "/secret", "value": NEW})
    expires = _expires(await webhook.get())
    assert expires is not None
    assert (
        before + timedelta(seconds=GRACE - 1)
        < expires
        <= datetime.now(UTC) + timedelta(seconds=GRACE)
    )

    during = await webhook.deliver(publisher)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    for check in (_verifies, _by_hand):
        assert check(NEW, during) and check(OLD, during), check.__name__
        assert not check(NEWER, during)
    assert _qlik_signed_with(NEW, during)

    await wait_until(lambda: datetime.now(UTC) > expires + timedelta(seconds=0.5), GRACE + 5)
    assert (await webhook.get())["previousSecretExpiresAt"] is None
    after = await webhook.deliver(publisher)
    assert " " not in after.headers["webhook-signature"]
    for check in (_verifies, _by_hand):
        assert check(NEW, after) and not check(OLD, after), check.__name__
    assert _qlik_signed_with(NEW, after)


async def test_put_with_a_new_secret_rotates_and_put_without_one_clears_it(
    webhook: _Webhook, publisher: EventPublisher, stack: ServiceSet
) -> None:
    await webhook.create(secret=OLD)
    await wait_routed(stack, webhook.tenant, {webhook.id})

    same = await webhook.put(secret=OLD)
    assert same["previousSecretExpiresAt"] is None  # the same secret again rotates nothing

    rotated = await webhook.put(secret=NEW)
    expires = _expires(rotated)
    assert rotated["secretRotationGraceSeconds"] == 86400  # the default
    assert expires is not None and expires > datetime.now(UTC) + timedelta(hours=23)
    during = await webhook.deliver(publisher)
    assert _verifies(NEW, during) and _verifies(OLD, during) and _qlik_signed_with(NEW, during)

    # A grace of 0 ends the running window at once (say, the old secret leaked).
    await webhook.patch({"op": "replace", "path": "/secretRotationGraceSeconds", "value": 0})
    assert (await webhook.get())["previousSecretExpiresAt"] is None
    revoked = await webhook.deliver(publisher)
    assert _verifies(NEW, revoked) and not _verifies(OLD, revoked)

    # PUT is a full replacement (Qlik): without a secret the webhook has none, and no window.
    cleared = await webhook.put()
    assert cleared["secretKeyAdded"] is False and cleared["previousSecretExpiresAt"] is None
    unsigned = await webhook.deliver(publisher)
    assert "webhook-signature" not in unsigned.headers
    assert "qlik-signature" not in unsigned.headers


async def test_the_grace_is_validated_and_the_expiry_is_read_only(webhook: _Webhook) -> None:
    for grace in (-1, 30 * 86400 + 1, "60", 1.5):
        response = await webhook.api.post(
            V1, json=webhook.body(secretRotationGraceSeconds=grace), headers=webhook.auth
        )
        assert response.status_code == 400, (grace, response.text)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    response = await webhook.api.post(
        V1, json=webhook.body(previousSecretExpiresAt=future), headers=webhook.auth
    )
    assert response.status_code == 409, response.text
