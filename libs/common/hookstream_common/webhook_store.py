"""Webhook reads and writes that more than the API makes (the forms are in webhook_model).

Every write of a webhook goes with an outbox row in the same transaction (`record_change`), so the
relay publishes it to the matcher; the dispatcher's auto-disable writes through here too, with its
audit row (actor `system`).
"""

import uuid

import asyncpg

from hookstream_common import audit
from hookstream_common.crypto import SecretBox
from hookstream_common.operational import Subject, announce, webhook_disabled
from hookstream_common.routing import TenantRoutes
from hookstream_common.webhook_model import (
    ROUTE_COLUMNS,
    TARGET_COLUMNS,
    DeliveryTarget,
    route,
    target,
)


async def load_target(
    conn: asyncpg.Connection | asyncpg.Pool, box: SecretBox, webhook_id: str
) -> DeliveryTarget | None:
    """The webhook's current delivery settings, decrypted, or None if it was deleted."""
    row = await conn.fetchrow(f"SELECT {TARGET_COLUMNS} FROM webhooks WHERE id = $1", webhook_id)
    return None if row is None else target(row, box)


async def load_tenant_routes(
    conn: asyncpg.Connection | asyncpg.Pool, tenant_id: str
) -> TenantRoutes:
    """The tenant's complete current webhook set, as the matcher needs it."""
    rows = await conn.fetch(
        f"SELECT {ROUTE_COLUMNS} FROM webhooks WHERE tenant_id = $1 ORDER BY id", tenant_id
    )
    return TenantRoutes(tenant_id=tenant_id, routes=tuple(route(row) for row in rows))


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
    """Disable an enabled webhook with a reason, as the API would, audit it as the system's act
    and raise the operational event `webhook.disabled`, all in one transaction; False if it was
    not enabled."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "UPDATE webhooks SET enabled = false, disabled_reason = $2, disabled_reason_code = $3,"
            " updated_at = now() WHERE id = $1 AND enabled"
            " RETURNING tenant_id, name, owner_id, updated_at",
            uuid.UUID(webhook_id),
            reason,
            code,
        )
        if row is None:
            return False
        await record_change(conn, row["tenant_id"], webhook_id, "disabled")
        await audit.record(
            conn, audit.SYSTEM, "disable", webhook_id, ["enabled"], {"reasonCode": code}
        )
        subject = Subject(webhook_id, row["tenant_id"], row["name"], row["owner_id"])
        await announce(conn, [webhook_disabled(subject, code, reason, row["updated_at"])])
    return True
