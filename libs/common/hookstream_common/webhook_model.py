"""The webhook: each form the services read a row in, derived from its fields (webhook_fields).

A row of `webhooks` becomes the API's document (`api_form`), the document a JSON Patch applies to
(`writable_form`), a route for matching (`route`) or a target for sending (`target`); the written
fields go back as columns (`WebhookFields.columns`). The column lists and the API's forms follow
`webhook_fields.FIELDS`, so a new field is declared there and nowhere else. No I/O: the SQL lives
with its callers.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from hookstream_common.client_certs import ClientCertificate
from hookstream_common.crypto import SecretBox, UndecryptableSecret
from hookstream_common.routing import Route
from hookstream_common.secret_rotation import PreviousSecret
from hookstream_common.webhook_fields import (
    FIELDS,
    SHOWN,
    WRITTEN,
    WebhookField,
    opened_headers,
)


@dataclass(frozen=True)
class RateLimit:
    """At most `per_second` deliveries a second on average, `burst` at once after a quiet spell."""

    per_second: float
    burst: int


@dataclass(frozen=True)
class WebhookFields:
    """The written fields of a webhook in API names, validated, secrets in plain text (never
    logged)."""

    values: dict[str, Any] = field(repr=False)

    def __getitem__(self, api_name: str) -> Any:
        return self.values[api_name]

    def columns(self, box: SecretBox) -> dict[str, Any]:
        """The written columns and their values, secrets sealed with `box`."""
        columns: dict[str, Any] = {}
        for spec in WRITTEN:
            columns |= spec.column_values(self.values[spec.api], box)
        return columns


def _select(fields: Iterable[WebhookField], *extra: str) -> str:
    expressions = [*extra]
    for spec in fields:
        expressions += [spec.select] if spec.select else spec.columns
    return ", ".join(expressions)


API_COLUMNS = _select(SHOWN, "tenant_id")
"""What `api_form` reads: no secret, only whether there is one and when a rotation ends."""


def api_form(row: asyncpg.Record) -> dict[str, Any]:
    """The webhook as the API shows it, in its names (health is added by the API)."""
    return {spec.api: spec.value(row) for spec in SHOWN}


def writable_form(row: asyncpg.Record, box: SecretBox) -> dict[str, Any]:
    """The written fields of a whole row (`SELECT *`) in API names, secrets decrypted, for a
    JSON Patch to apply to. Unset optional fields are left out, so `add` can set them.

    Raises UndecryptableSecret when no configured key opens the secret or the headers.
    """
    document = {}
    for spec in WRITTEN:
        value = spec.opened(row, box)
        if value is not None or not spec.left_out_unset:
            document[spec.api] = value
    return document


ROUTE_COLUMNS = _select(f for f in FIELDS if f.route)
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
    client_certificate: ClientCertificate | None = None
    """Presented to the receiver on every request (client_certs)."""

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


TARGET_COLUMNS = ", ".join(
    ["tenant_id", "previous_secret", *(c for f in FIELDS if f.target for c in f.columns)]
)
"""What `target` reads."""


def target(row: asyncpg.Record, box: SecretBox) -> DeliveryTarget:
    """The sending view of the webhook, decrypted; one whose secrets no key opens gets a
    `problem` instead, so its deliveries fail with a reason rather than go unsigned."""
    try:
        encrypted_headers = opened_headers(row, box)
        secret = box.open(row["secret"]) if row["secret"] else None
        certificate = row["client_certificate"]
        client_certificate = (
            ClientCertificate(certificate, box.open(row["client_key"])) if certificate else None
        )
        problem = None
    except UndecryptableSecret as exc:
        encrypted_headers, secret, client_certificate = {}, None, None
        problem = f"the webhook's secret, encrypted headers or client key cannot be read: {exc}"
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
        client_certificate=client_certificate,
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
