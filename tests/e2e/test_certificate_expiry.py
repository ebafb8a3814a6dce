"""The janitor notices a client certificate 14 days before it expires, once per certificate:
the hook of the operational event (hookstream_janitor.certificates) logs and counts it."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import prometheus_client
import trustme
from structlog.testing import capture_logs

from hookstream_dev.stack import ServiceSet
from hookstream_janitor.certificates import notice_expiring_certificates
from support import bearer, new_tenant

V1 = "/api/v1/webhooks"
CA = trustme.CA()


async def _webhook(api: httpx.AsyncClient, headers: dict[str, str], not_after: datetime) -> str:
    leaf = CA.issue_cert("client.example.com", not_after=not_after)
    body = {
        "name": "expiring",
        "url": "https://hooks.example.com/in",
        "eventTypes": ["com.qlik.v1.app.created"],
        "clientCertificate": {
            "certificate": leaf.cert_chain_pems[0].bytes().decode(),
            "key": leaf.private_key_pem.bytes().decode(),
        },
    }
    response = await api.post(V1, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _notices() -> float:
    value = prometheus_client.REGISTRY.get_sample_value(
        "hookstream_janitor_certificate_expiry_notices_total"
    )
    return value or 0.0


async def test_an_expiring_certificate_is_noticed_once(
    stack: ServiceSet, api: httpx.AsyncClient, token: Callable[..., str], database_url: str
) -> None:
    headers = bearer(token(new_tenant(), "u1", admin=True))
    now = datetime.now(UTC)
    soon = await _webhook(api, headers, now + timedelta(days=10))
    later = await _webhook(api, headers, now + timedelta(days=60))
    conn = await asyncpg.connect(database_url)
    try:
        before = _notices()
        with capture_logs() as logs:
            noticed, expiring = await notice_expiring_certificates(conn, now, timedelta(days=14))
        mine = [e for e in logs if e.get("webhook_id") in (soon, later)]
        assert [(e["event"], e["webhook_id"]) for e in mine] == [
            ("client certificate expiring", soon)
        ]
        assert mine[0]["days_left"] in (9, 10) and mine[0]["log_level"] == "warning"
        assert noticed >= 1 and expiring >= 1
        assert _notices() == before + noticed

        with capture_logs() as again:
            await notice_expiring_certificates(conn, now, timedelta(days=14))
        assert not [e for e in again if e.get("webhook_id") == soon]

        noticed_for = await conn.fetchval(
            "SELECT not_after FROM certificate_expiry_notices WHERE webhook_id = $1",
            uuid.UUID(soon),
        )
        assert noticed_for is not None
    finally:
        await conn.close()
