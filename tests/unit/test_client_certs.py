"""Client certificates (client_certs): which pairs the API takes, what it shows of them, and the
senders' SSL contexts, built once per certificate."""

from datetime import UTC, datetime, timedelta

import pytest
import trustme
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization

from hookstream_common.client_certs import (
    BadClientCertificate,
    ClientCertificate,
    TlsContexts,
    inspect,
)
from hookstream_common.crypto import SecretBox
from hookstream_common.webhook_fields import FIELDS
from hookstream_common.webhook_model import target

CA = trustme.CA()
NOT_AFTER = datetime(2030, 1, 1, tzinfo=UTC)
LEAF = CA.issue_cert("client.example.com", common_name="client.example.com", not_after=NOT_AFTER)
CERTIFICATE = LEAF.cert_chain_pems[0].bytes().decode()
KEY = LEAF.private_key_pem.bytes().decode()
OTHER_KEY = CA.issue_cert("other.example.com").private_key_pem.bytes().decode()
BOX = SecretBox([Fernet.generate_key().decode()])


def test_a_certificate_and_its_key_are_described() -> None:
    info = inspect(CERTIFICATE, KEY)
    assert "CN=client.example.com" in info.subject
    assert info.not_after == NOT_AFTER


def _encrypted(key: str) -> str:
    loaded = serialization.load_pem_private_key(key.encode(), password=None)
    return loaded.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    ).decode()


@pytest.mark.parametrize(
    ("certificate", "key", "part", "reason"),
    [
        ("-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----", KEY, "certificate", "PEM"),
        (CERTIFICATE + KEY, KEY, "certificate", "certificates only"),
        (CERTIFICATE, "nope", "key", "PEM private key"),
        (CERTIFICATE, OTHER_KEY, "key", "does not belong"),
        (CERTIFICATE, _encrypted(KEY), "key", "encrypted"),
    ],
)
def test_a_bad_pair_names_the_part_and_never_quotes_it(
    certificate: str, key: str, part: str, reason: str
) -> None:
    with pytest.raises(BadClientCertificate) as bad:
        inspect(certificate, key)
    assert bad.value.part == part and reason in str(bad.value)
    assert "BEGIN" not in str(bad.value)


def test_an_expired_certificate_is_taken_and_shows_its_expiry() -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    old = CA.issue_cert("old.example.com", not_before=past - timedelta(days=30), not_after=past)
    info = inspect(old.cert_chain_pems[0].bytes().decode(), old.private_key_pem.bytes().decode())
    assert info.not_after < datetime.now(UTC)


def test_contexts_are_built_once_per_certificate_and_bounded() -> None:
    contexts = TlsContexts(size=1)
    pair = ClientCertificate(CERTIFICATE, KEY)
    first = contexts.context(pair)
    assert contexts.context(ClientCertificate(CERTIFICATE, KEY)) is first
    other = CA.issue_cert("b.example.com")
    contexts.context(
        ClientCertificate(
            other.cert_chain_pems[0].bytes().decode(), other.private_key_pem.bytes().decode()
        )
    )
    assert contexts.context(pair) is not first
    assert KEY not in repr(pair)


def test_the_key_is_sealed_opened_for_sending_and_never_shown() -> None:
    [spec] = [f for f in FIELDS if f.api == "clientCertificate"]
    columns = spec.column_values({"certificate": CERTIFICATE, "key": KEY}, BOX)
    assert KEY.encode() not in columns["client_key"]
    row = {
        "id": "6f1c0c9e-8a43-4a3f-9d0e-3f1d2c4b5a69",
        "tenant_id": "t1",
        "url": "https://hooks.example.com/in",
        "headers": {},
        "encrypted_headers": None,
        "secret": None,
        "enabled": True,
        "enable_cloud_event_delivery": False,
        "rate_limit_per_second": None,
        "rate_limit_burst": None,
        "previous_secret": None,
        "previous_secret_expires_at": None,
        **columns,
    }
    assert spec.value(row) == {
        "subject": columns["client_certificate_subject"],
        "notAfter": NOT_AFTER,
    }
    assert target(row, BOX).client_certificate == ClientCertificate(CERTIFICATE, KEY)
    assert spec.opened(row, BOX) == {"certificate": CERTIFICATE, "key": KEY}
    assert target(row, SecretBox([Fernet.generate_key().decode()])).problem
