"""Client certificates (a Hookstream extension): a receiver that requires mutual TLS gets the
webhook's certificate from the dispatcher and from the API's test event and resend; without one
the delivery fails with a clear message; the key is never shown, and a bad pair is a 400."""

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from cryptography import x509

from hookstream_common.sdk import EventPublisher
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver, TlsFiles
from hookstream_dev.stack import ServiceSet
from support import bearer, new_tenant, receiver_url, wait_routed, wait_until

V1 = "/api/v1/webhooks"
CREATED = "com.qlik.v1.app.created"
CLIENT_CA = trustme.CA(organization_name="Hookstream client CA")
CLIENT = CLIENT_CA.issue_cert("orders-client.example.com", common_name="orders-client.example.com")
CERTIFICATE = CLIENT.cert_chain_pems[0].bytes().decode()
KEY = CLIENT.private_key_pem.bytes().decode()


@pytest.fixture(scope="module")
async def mtls_receiver(
    tls_files: TlsFiles, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Receiver]:
    """An HTTPS receiver that answers only clients presenting a certificate CLIENT_CA issued."""
    ca_file = tmp_path_factory.mktemp("client-ca") / "ca.pem"
    CLIENT_CA.cert_pem.write_to_path(str(ca_file))
    running = await Receiver.start(tls=tls_files, client_ca=Path(ca_file))
    yield running
    await running.stop()


def _body(receiver: Receiver, path: str, **extra: Any) -> dict[str, Any]:
    return {"name": "mtls", "url": receiver_url(receiver, path), "eventTypes": [CREATED], **extra}


async def _failed_delivery(api: httpx.AsyncClient, webhook: str, headers: dict[str, str]) -> Any:
    response = await api.get(f"{V1}/{webhook}/deliveries", headers=headers)
    data = response.json()["data"]
    return data[0] if data and data[0]["status"] == "fail" else None


async def test_a_receiver_requiring_a_client_certificate_gets_the_webhooks(
    stack: ServiceSet,
    mtls_receiver: Receiver,
    api: httpx.AsyncClient,
    publisher: EventPublisher,
    token: Callable[..., str],
) -> None:
    tenant = new_tenant()
    headers = bearer(token(tenant, "u1", admin=True))
    path = f"/hooks/mtls-{uuid.uuid4().hex}"
    pair = {"certificate": CERTIFICATE, "key": KEY}
    created = await api.post(
        V1, json=_body(mtls_receiver, path, clientCertificate=pair), headers=headers
    )
    assert created.status_code == 201, created.text
    webhook = created.json()
    assert "CN=orders-client.example.com" in webhook["clientCertificate"]["subject"]
    not_after = x509.load_pem_x509_certificate(CERTIFICATE.encode()).not_valid_after_utc
    assert datetime.fromisoformat(webhook["clientCertificate"]["notAfter"]) == not_after
    assert "PRIVATE KEY" not in created.text and KEY.splitlines()[1] not in created.text

    await wait_routed(stack, tenant, {webhook["id"]})
    await publisher.publish(sample_event(CREATED, tenant, "u1"))
    [delivered] = await mtls_receiver.wait_for(1, timeout=60, path=path)
    assert delivered.headers["content-type"] == "application/json"

    tested = await api.post(f"{V1}/{webhook['id']}/actions/test", headers=headers)
    assert tested.status_code == 201 and tested.json()["status"] == "success", tested.text
    assert len(mtls_receiver.received(path)) == 2

    patched = await api.patch(
        f"{V1}/{webhook['id']}",
        json=[{"op": "replace", "path": "/name", "value": "still mtls"}],
        headers=headers,
    )
    assert patched.status_code == 204
    again = await api.post(f"{V1}/{webhook['id']}/actions/test", headers=headers)
    assert again.json()["status"] == "success", again.text

    removed = await api.patch(
        f"{V1}/{webhook['id']}",
        json=[{"op": "remove", "path": "/clientCertificate"}],
        headers=headers,
    )
    assert removed.status_code == 204
    shown = (await api.get(f"{V1}/{webhook['id']}", headers=headers)).json()
    assert shown["clientCertificate"] is None


async def test_without_a_client_certificate_the_delivery_fails_cleanly(
    stack: ServiceSet,
    mtls_receiver: Receiver,
    api: httpx.AsyncClient,
    publisher: EventPublisher,
    token: Callable[..., str],
) -> None:
    tenant = new_tenant()
    headers = bearer(token(tenant, "u1", admin=True))
    path = f"/hooks/no-cert-{uuid.uuid4().hex}"
    created = await api.post(V1, json=_body(mtls_receiver, path), headers=headers)
    webhook = created.json()["id"]

    tested = await api.post(f"{V1}/{webhook}/actions/test", headers=headers)
    assert tested.status_code == 201, tested.text
    assert tested.json()["status"] == "fail"
    assert "client certificate" in tested.json()["statusMessage"], tested.text

    await wait_routed(stack, tenant, {webhook})
    await publisher.publish(sample_event(CREATED, tenant, "u1"))
    failed = await wait_until(lambda: _failed_delivery(api, webhook, headers), timeout=60)
    assert failed["eventType"] == CREATED
    assert "client certificate" in failed["statusMessage"]
    assert mtls_receiver.received(path) == []
    assert stack.pid("dispatcher") is not None and stack.ready("dispatcher")


@pytest.mark.parametrize(
    ("pair", "field"),
    [
        ({"certificate": "not a certificate", "key": KEY}, "clientCertificate.certificate"),
        ({"certificate": CERTIFICATE + KEY, "key": KEY}, "clientCertificate.certificate"),
        ({"certificate": CERTIFICATE, "key": "not a key"}, "clientCertificate.key"),
        (
            {
                "certificate": CERTIFICATE,
                "key": trustme.CA().issue_cert("x.example.com").private_key_pem.bytes().decode(),
            },
            "clientCertificate.key",
        ),
    ],
)
async def test_a_bad_certificate_or_key_is_a_400_naming_it(
    stack: ServiceSet,
    mtls_receiver: Receiver,
    api: httpx.AsyncClient,
    token: Callable[..., str],
    pair: dict[str, str],
    field: str,
) -> None:
    headers = bearer(token(new_tenant(), "u1", admin=True))
    response = await api.post(
        V1, json=_body(mtls_receiver, "/hooks/bad", clientCertificate=pair), headers=headers
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["detail"].startswith(f"{field}:")
    assert "PRIVATE KEY" not in response.text and KEY.splitlines()[1] not in response.text
