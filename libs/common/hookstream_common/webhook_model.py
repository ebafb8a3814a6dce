"""The webhook: its columns, and each form the services read a row in.

A row of `webhooks` becomes the API's document (`api_form`), the document a JSON Patch applies to
(`writable_form`), a route for matching (`route`) or a target for sending (`target`); the writable
fields go back as columns (`WebhookFields.columns`). Each form's columns sit beside its conversion,
so a new column is added here and nowhere else. No I/O: the SQL lives with its callers.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from hookstream_common.crypto import SecretBox, UndecryptableSecret
from hookstream_common.routing import Route
from hookstream_common.secret_rotation import DEFAULT_GRACE_SECONDS, PreviousSecret


@dataclass(frozen=True)
class RateLimit:
    """At most `per_second` deliveries a second on average, `burst` at once after a quiet spell."""

    per_second: float
    burst: int


@dataclass(frozen=True)
class WebhookFields:
    """The writable fields of a webhook, validated, secrets in plain text (never logged)."""

    name: str
    description: str
    url: str
    event_types: list[str]
    level: str
    owner_id: str
    filter: str | None
    enabled: bool
    headers: dict[str, str]
    encrypted_headers: dict[str, str] = field(repr=False)
    secret: str | None = field(repr=False)
    enable_cloud_event_delivery: bool
    check_certificate_revocation: bool
    rate_limit: RateLimit | None = None
    secret_rotation_grace_seconds: int = DEFAULT_GRACE_SECONDS

    def columns(self, box: SecretBox) -> dict[str, Any]:
        """The writable columns and their values, secrets sealed with `box`."""
        encrypted, limit = self.encrypted_headers, self.rate_limit
        return {
            "name": self.name,
            "description": self.description,
            "url": self.url,
            "event_types": self.event_types,
            "level": self.level,
            "owner_id": self.owner_id,
            "filter": self.filter,
            "enabled": self.enabled,
            "headers": self.headers,
            "encrypted_headers": box.seal(orjson.dumps(encrypted).decode()) if encrypted else None,
            "encrypted_header_names": sorted(encrypted),
            "secret": box.seal(self.secret) if self.secret else None,
            "enable_cloud_event_delivery": self.enable_cloud_event_delivery,
            "check_certificate_revocation": self.check_certificate_revocation,
            "rate_limit_per_second": limit.per_second if limit else None,
            "rate_limit_burst": limit.burst if limit else None,
            "secret_rotation_grace_seconds": self.secret_rotation_grace_seconds,
        }


API_COLUMNS = (
    "id, tenant_id, name, description, url, event_types, level, owner_id, filter, enabled,"
    " headers, encrypted_header_names, secret IS NOT NULL AS secret_key_added,"
    " enable_cloud_event_delivery, check_certificate_revocation, origin, created_at, updated_at,"
    " created_by_user_id, updated_by_user_id, disabled_reason, disabled_reason_code,"
    " rate_limit_per_second, rate_limit_burst, secret_rotation_grace_seconds,"
    " CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END"
    " AS previous_secret_expires_at"
)
"""What `api_form` reads: no secret, only whether there is one and when a rotation ends."""


def _rate_limit_form(row: asyncpg.Record) -> dict[str, Any] | None:
    per_second = row["rate_limit_per_second"]
    return (
        None if per_second is None else {"perSecond": per_second, "burst": row["rate_limit_burst"]}
    )


def _settings_form(row: asyncpg.Record) -> dict[str, Any]:
    """The fields both the API form and the writable form show as stored, in API names."""
    return {
        "name": row["name"],
        "description": row["description"],
        "url": row["url"],
        "eventTypes": list(row["event_types"]),
        "level": row["level"],
        "ownerId": row["owner_id"],
        "filter": row["filter"],
        "enabled": row["enabled"],
        "headers": dict(row["headers"]),
        "enableCloudEventDelivery": row["enable_cloud_event_delivery"],
        "checkCertificateRevocation": row["check_certificate_revocation"],
        "secretRotationGraceSeconds": row["secret_rotation_grace_seconds"],
    }


def api_form(row: asyncpg.Record) -> dict[str, Any]:
    """The webhook as the API shows it, in its names (health is added by the API)."""
    return _settings_form(row) | {
        "id": str(row["id"]),
        "encryptedHeaders": list(row["encrypted_header_names"]),
        "secretKeyAdded": row["secret_key_added"],
        "origin": row["origin"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "createdByUserId": row["created_by_user_id"],
        "updatedByUserId": row["updated_by_user_id"],
        "disabledReason": row["disabled_reason"],
        "disabledReasonCode": row["disabled_reason_code"],
        "rateLimit": _rate_limit_form(row),
        "previousSecretExpiresAt": row["previous_secret_expires_at"],
    }


def writable_form(row: asyncpg.Record, box: SecretBox) -> dict[str, Any]:
    """The writable fields of a whole row (`SELECT *`) in API names, secrets decrypted, for a
    JSON Patch to apply to. Unset optional fields are left out, so `add` can set them.

    Raises UndecryptableSecret when no configured key opens the secret or the headers.
    """
    document = _settings_form(row)
    document["encryptedHeaders"] = _opened_headers(row, box)
    if (rate_limit := _rate_limit_form(row)) is not None:
        document["rateLimit"] = rate_limit
    if row["secret"]:
        document["secret"] = box.open(row["secret"])
    return document


def _opened_headers(row: asyncpg.Record, box: SecretBox) -> dict[str, str]:
    """The encrypted headers in plain text; UndecryptableSecret when no key opens them."""
    sealed = row["encrypted_headers"]
    return orjson.loads(box.open(sealed)) if sealed else {}


ROUTE_COLUMNS = "id, event_types, level, owner_id, enabled, filter, enable_cloud_event_delivery"
"""What `route` reads."""


def route(row: asyncpg.Record) -> Route:
    """The matching view of the webhook."""
    return Route(
        id=str(row["id"]),
        event_types=tuple(row["event_types"]),
        level=row["level"],
        owner_id=row["owner_id"],
        enabled=row["enabled"],
        filter=row["filter"],
        cloud_event=row["enable_cloud_event_delivery"],
    )


@dataclass(frozen=True)
class DeliveryTarget:
    """Everything the dispatcher needs to send to one webhook. Holds secrets: never log it."""

    webhook_id: str
    tenant_id: str
    url: str
    headers: dict[str, str]
    encrypted_headers: dict[str, str]
    secret: str | None
    enabled: bool
    cloud_event: bool
    problem: str | None = None
    """Why nothing can be sent to it (a secret no key decrypts); each delivery fails with it."""
    previous_secret: PreviousSecret | None = None
    """The secret a rotation replaced, signing too until it expires (secret_rotation)."""
    rate_limit: RateLimit | None = None
    """The webhook's own limit; None leaves it to the dispatcher's default."""

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets that sign a request sent at `now`: the current one, then the previous."""
        if not self.secret:
            return []
        previous = self.previous_secret
        if previous is not None and previous.valid_at(now):
            return [self.secret, previous.secret]
        return [self.secret]

    def __repr__(self) -> str:
        return f"DeliveryTarget(webhook_id={self.webhook_id!r}, url={self.url!r})"


TARGET_COLUMNS = (
    "id, tenant_id, url, headers, encrypted_headers, secret, enabled, enable_cloud_event_delivery,"
    " rate_limit_per_second, rate_limit_burst, previous_secret, previous_secret_expires_at"
)
"""What `target` reads."""


def target(row: asyncpg.Record, box: SecretBox) -> DeliveryTarget:
    """The sending view of the webhook, decrypted; one whose secrets no key opens gets a
    `problem` instead, so its deliveries fail with a reason rather than go unsigned."""
    try:
        encrypted_headers = _opened_headers(row, box)
        secret = box.open(row["secret"]) if row["secret"] else None
        problem = None
    except UndecryptableSecret as exc:
        encrypted_headers, secret = {}, None
        problem = f"the webhook's secret or encrypted headers cannot be read: {exc}"
    per_second = row["rate_limit_per_second"]
    return DeliveryTarget(
        webhook_id=str(row["id"]),
        tenant_id=row["tenant_id"],
        url=row["url"],
        headers=dict(row["headers"]),
        encrypted_headers=encrypted_headers,
        secret=secret,
        enabled=row["enabled"],
        cloud_event=row["enable_cloud_event_delivery"],
        problem=problem,
        previous_secret=previous_secret(row, box),
        rate_limit=RateLimit(per_second, row["rate_limit_burst"]) if per_second else None,
    )


def previous_secret(row: asyncpg.Record, box: SecretBox) -> PreviousSecret | None:
    """The rotated-out secret while its window lasts; one no key opens just stops signing."""
    expires_at = row["previous_secret_expires_at"]
    if expires_at is None or expires_at <= datetime.now(UTC):
        return None
    secret = opened_or_none(row["previous_secret"], box)
    return None if secret is None else PreviousSecret(secret, expires_at)


def opened_or_none(sealed: bytes | None, box: SecretBox) -> str | None:
    """A sealed secret in plain text; None when there is none or no configured key opens it."""
    if sealed is None:
        return None
    try:
        return box.open(sealed)
    except UndecryptableSecret:
        return None
