"""The webhook's forms (webhook_model): the columns written from the writable fields read back
as the same fields, as a route, and as a target, and the API form never carries a secret."""

from datetime import UTC, datetime
from typing import Any

import pytest
import trustme
from cryptography.fernet import Fernet

from hookstream_common.crypto import SecretBox, UndecryptableSecret
from hookstream_common.webhook_model import (
    RateLimit,
    WebhookFields,
    api_form,
    route,
    target,
    writable_form,
)

CLIENT = trustme.CA().issue_cert("client.example.com")
BOX = SecretBox([Fernet.generate_key().decode()])
FIELDS = WebhookFields(
    {
        "name": "orders",
        "description": "",
        "url": "https://hooks.example.com/in",
        "eventTypes": ["com.qlik.v1.app.created"],
        "level": "user",
        "ownerId": "u1",
        "filter": None,
        "enabled": True,
        "headers": {"X-Team": "data"},
        "encryptedHeaders": {"Authorization": "Bearer s3cret-header"},
        "secret": "s3cret-signing-key",
        "enableCloudEventDelivery": True,
        "checkCertificateRevocation": False,
        "rateLimit": {"perSecond": 5.0, "burst": 10},
        "secretRotationGraceSeconds": 600,
        "clientCertificate": {
            "certificate": CLIENT.cert_chain_pems[0].bytes().decode(),
            "key": CLIENT.private_key_pem.bytes().decode(),
        },
    }
)
NOW = datetime(2026, 11, 28, tzinfo=UTC)


def stored(fields: WebhookFields) -> dict[str, Any]:
    """The row Postgres would give back for these fields (`SELECT *` plus the API's columns)."""
    return fields.columns(BOX) | {
        "id": "6f1c0c9e-8a43-4a3f-9d0e-3f1d2c4b5a69",
        "tenant_id": "t1",
        "origin": "api",
        "created_at": NOW,
        "updated_at": NOW,
        "created_by_user_id": "u1",
        "updated_by_user_id": "u1",
        "disabled_reason": None,
        "disabled_reason_code": None,
        "secret_key_added": fields["secret"] is not None,
        "previous_secret": None,
        "previous_secret_expires_at": None,
    }


def test_written_columns_read_back_as_the_same_writable_fields() -> None:
    document = writable_form(stored(FIELDS), BOX)
    assert document == FIELDS.values


def test_unset_optional_fields_are_left_out_of_the_writable_form() -> None:
    bare = WebhookFields(
        FIELDS.values | {"secret": None, "rateLimit": None, "clientCertificate": None}
    )
    assert {"secret", "rateLimit", "clientCertificate"}.isdisjoint(writable_form(stored(bare), BOX))


def test_secrets_are_sealed_in_columns_and_absent_from_the_api_form() -> None:
    row = stored(FIELDS)
    assert b"s3cret" not in row["secret"] and b"s3cret" not in row["encrypted_headers"]
    key = FIELDS["clientCertificate"]["key"]
    assert key.encode() not in row["client_key"] and key.splitlines()[1] not in repr(api_form(row))
    shown = api_form(row)
    assert "s3cret" not in repr(shown)
    assert shown["encryptedHeaders"] == ["Authorization"]
    assert shown["secretKeyAdded"] is True


def test_route_and_target_views_of_the_same_row() -> None:
    row = stored(FIELDS)
    matching = route(row)
    assert matching.event_types == ("com.qlik.v1.app.created",) and matching.cloud_event
    sending = target(row, BOX)
    assert sending.signing_secrets(NOW) == ["s3cret-signing-key"]
    assert sending.encrypted_headers == {"Authorization": "Bearer s3cret-header"}
    assert sending.rate_limit == RateLimit(5.0, 10) and sending.problem is None


def test_a_secret_no_key_opens_is_a_problem_for_the_target_and_an_error_for_the_patch() -> None:
    row = stored(FIELDS)
    other = SecretBox([Fernet.generate_key().decode()])
    assert target(row, other).problem and target(row, other).secret is None
    with pytest.raises(UndecryptableSecret):
        writable_form(row, other)
