"""Building and sending a delivery never raises for bad data: it records a failed attempt."""

from typing import Any

import orjson
import pytest
from cryptography.fernet import Fernet

from hookstream_common.client_certs import TlsContexts
from hookstream_common.crypto import SecretBox, UndecryptableSecret
from hookstream_common.delivery import build_request, send
from hookstream_common.events import Event
from hookstream_common.http_client import client_session
from hookstream_common.webhook_model import DeliveryTarget
from hookstream_common.webhook_store import load_target
from hookstream_dev.events import sample_event

EVENT = Event.parse(orjson.dumps(sample_event("com.qlik.v1.app.created", "t-1")))


def target(url: str = "https://hooks.example.com/x", **changes: Any) -> DeliveryTarget:
    fields: dict[str, Any] = {
        "webhook_id": "w-1",
        "tenant_id": "t-1",
        "url": url,
        "headers": {},
        "encrypted_headers": {},
        "secret": None,
        "enabled": True,
        "cloud_event": False,
    }
    return DeliveryTarget(**(fields | changes))


class _Row:
    """Answers `fetchrow` like asyncpg with one stored webhook row."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row

    async def fetchrow(self, query: str, *args: Any) -> dict[str, Any]:
        return self.row


def stored_row(box: SecretBox) -> dict[str, Any]:
    return {
        "id": "w-1",
        "tenant_id": "t-1",
        "url": "https://hooks.example.com/x",
        "headers": {"X-Plain": "1"},
        "encrypted_headers": box.seal(orjson.dumps({"X-Token": "t"}).decode()),
        "secret": box.seal("s" * 32),
        "enabled": True,
        "enable_cloud_event_delivery": False,
        "rate_limit_per_second": None,
        "rate_limit_burst": None,
        "previous_secret": None,
        "previous_secret_expires_at": None,
        "client_certificate": None,
        "client_key": None,
    }


def test_a_dropped_key_is_a_clear_error() -> None:
    old = SecretBox([Fernet.generate_key().decode()])
    new = SecretBox([Fernet.generate_key().decode()])
    with pytest.raises(UndecryptableSecret, match="encryption keys"):
        new.open(old.seal("secret"))


async def test_a_secret_no_key_decrypts_becomes_a_failed_attempt() -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    row = stored_row(SecretBox([old_key]))
    loaded = await load_target(_Row(row), SecretBox([new_key]), "w-1")
    assert loaded is not None and loaded.secret is None and loaded.encrypted_headers == {}
    assert loaded.problem is not None and "cannot be read" in loaded.problem
    request = build_request(loaded, EVENT, "d-1", "Qlik Webhook")
    assert request.headers == {} and request.body == b""
    session = client_session()
    await session.close()  # a closed session fails any request: an answer proves none was sent
    attempt = await send(session, request, TlsContexts())
    assert attempt.error_class == "config" and attempt.status_code is None
    assert "set it again" in attempt.status_message()
    rotated = await load_target(_Row(row), SecretBox([new_key, old_key]), "w-1")
    assert rotated is not None and rotated.problem is None and rotated.secret == "s" * 32


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://" + "a" * 64 + ".example.com/", "host name cannot be used"),
        ("https://" + "b" * 200 + ".example.com/", "host name cannot be used"),
        ("https://" + "\u00e4" * 70 + ".example.com/", "xample.com"),
    ],
    ids=["64-char label", "200-char label", "long non-ASCII label"],
)
async def test_an_unusable_url_becomes_a_failed_attempt(url: str, reason: str) -> None:
    """IDNA fails before any DNS query, so this runs offline."""
    async with client_session() as session:
        attempt = await send(
            session, build_request(target(url), EVENT, "d-1", "Qlik Webhook"), TlsContexts()
        )
    assert attempt.error_class == "config"
    assert attempt.status_code is None
    assert reason in attempt.status_message()
