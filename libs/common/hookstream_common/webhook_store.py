"""Webhook configuration that more than the API reads or writes.

Every write of a webhook goes with an outbox row in the same transaction (`record_change`), so the
relay publishes it to the matcher; the dispatcher's auto-disable writes through here too.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import orjson

from hookstream_common.crypto import SecretBox, UndecryptableSecret
from hookstream_common.routing import Route, TenantRoutes
from hookstream_common.secret_rotation import PreviousSecret


@dataclass(frozen=True)
class RateLimit:
    """At most `per_second` deliveries a second on average, `burst` at once after a quiet spell."""

    per_second: float
    burst: int


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


async def load_target(
    conn: asyncpg.Connection | asyncpg.Pool, box: SecretBox, webhook_id: str
) -> DeliveryTarget | None:
    """The webhook's current delivery settings, decrypted, or None if it was deleted."""
    row = await conn.fetchrow(
        "SELECT id, tenant_id, url, headers, encrypted_headers, secret, enabled,"
        " enable_cloud_event_delivery, rate_limit_per_second, rate_limit_burst,"
        " previous_secret, previous_secret_expires_at FROM webhooks WHERE id = $1",
        webhook_id,
    )
    if row is None:
        return None
    encrypted, sealed_secret = row["encrypted_headers"], row["secret"]
    try:
        encrypted_headers = orjson.loads(box.open(encrypted)) if encrypted else {}
        secret = box.open(sealed_secret) if sealed_secret else None
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
        previous_secret=_previous_secret(box, row),
        rate_limit=RateLimit(per_second, row["rate_limit_burst"]) if per_second else None,
    )


def _previous_secret(box: SecretBox, row: asyncpg.Record) -> PreviousSecret | None:
    """The rotated-out secret while its window lasts; one no key opens just stops signing."""
    sealed, expires_at = row["previous_secret"], row["previous_secret_expires_at"]
    if sealed is None or expires_at is None or expires_at <= datetime.now(UTC):
        return None
    try:
        return PreviousSecret(box.open(sealed), expires_at)
    except UndecryptableSecret:
        return None


async def load_tenant_routes(
    conn: asyncpg.Connection | asyncpg.Pool, tenant_id: str
) -> TenantRoutes:
    """The tenant's complete current webhook set, as the matcher needs it."""
    rows = await conn.fetch(
        "SELECT id, event_types, level, owner_id, enabled, filter, enable_cloud_event_delivery"
        " FROM webhooks WHERE tenant_id = $1 ORDER BY id",
        tenant_id,
    )
    return TenantRoutes(
        tenant_id=tenant_id,
        routes=tuple(
            Route(
                id=str(row["id"]),
                event_types=tuple(row["event_types"]),
                level=row["level"],
                owner_id=row["owner_id"],
                enabled=row["enabled"],
                filter=row["filter"],
                cloud_event=row["enable_cloud_event_delivery"],
            )
            for row in rows
        ),
    )


OUTBOX_CHANNEL = "hookstream_outbox"
"""NOTIFY channel of webhook changes; the payload is the webhook id."""


async def record_change(
    conn: asyncpg.Connection, tenant_id: str, webhook_id: str | uuid.UUID, kind: str
) -> None:
    """Add the outbox row of a change and notify at commit (relay and dispatcher caches)."""
    await conn.execute(
        "INSERT INTO outbox (tenant_id, webhook_id, kind) VALUES ($1, $2, $3)",
        tenant_id,
        uuid.UUID(str(webhook_id)),
        kind,
    )
    await conn.execute("SELECT pg_notify($1, $2)", OUTBOX_CHANNEL, str(webhook_id))


async def disable(pool: asyncpg.Pool, webhook_id: str, code: str, reason: str) -> bool:
    """Disable an enabled webhook with a reason, as the API would; False if it was not enabled."""
    async with pool.acquire() as conn, conn.transaction():
        tenant_id = await conn.fetchval(
            "UPDATE webhooks SET enabled = false, disabled_reason = $2, disabled_reason_code = $3,"
            " updated_at = now() WHERE id = $1 AND enabled RETURNING tenant_id",
            uuid.UUID(webhook_id),
            reason,
            code,
        )
        if tenant_id is None:
            return False
        await record_change(conn, tenant_id, webhook_id, "disabled")
    return True
