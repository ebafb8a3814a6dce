"""Webhook and delivery SQL of the API. Every statement is scoped to the caller's tenant.

A change to a webhook and its outbox row are written in one transaction (no dual writes); the
relay turns outbox rows into Kafka records.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from hookstream_common.crypto import SecretBox

from hookstream_api.auth import Principal

_WEBHOOK_COLUMNS = (
    "id, tenant_id, name, description, url, event_types, level, owner_id, filter, enabled,"
    " headers, encrypted_header_names, secret IS NOT NULL AS secret_key_added,"
    " enable_cloud_event_delivery, check_certificate_revocation, origin, created_at, updated_at,"
    " created_by_user_id, updated_by_user_id, disabled_reason, disabled_reason_code"
)


@dataclass(frozen=True)
class Page:
    """Rows of one page, and the keys to continue from, if there is more."""

    rows: list[asyncpg.Record]
    next_key: tuple[Any, ...] | None


def _visible(principal: Principal, first_param: int) -> tuple[str, list[Any]]:
    """WHERE clause of what the caller may see: the tenant's, only their own unless admin."""
    if principal.is_tenant_admin:
        return f"tenant_id = ${first_param}", [principal.tenant_id]
    return (
        f"tenant_id = ${first_param} AND owner_id = ${first_param + 1}",
        [principal.tenant_id, principal.user_id],
    )


class WebhookRepository:
    """Reads and writes webhooks for one request."""

    def __init__(self, pool: asyncpg.Pool, box: SecretBox) -> None:
        self._pool = pool
        self._box = box

    async def count(self, tenant_id: str) -> int:
        """How many webhooks the tenant has, for the per-tenant limit."""
        return await self._pool.fetchval(
            "SELECT count(*) FROM webhooks WHERE tenant_id = $1", tenant_id
        )

    async def create(self, principal: Principal, fields: dict[str, Any]) -> asyncpg.Record:
        """Insert the webhook and its outbox row in one transaction."""
        webhook_id = uuid.uuid4()
        encrypted = fields.pop("encrypted_headers")
        secret = fields.pop("secret")
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "INSERT INTO webhooks (id, tenant_id, name, description, url, event_types, level,"
                " owner_id, filter, enabled, headers, encrypted_headers, encrypted_header_names,"
                " secret, enable_cloud_event_delivery, check_certificate_revocation, origin,"
                " created_by_user_id, updated_by_user_id)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
                f" $17, $18, $18) RETURNING {_WEBHOOK_COLUMNS}",
                webhook_id,
                principal.tenant_id,
                fields["name"],
                fields["description"],
                fields["url"],
                fields["event_types"],
                fields["level"],
                fields["owner_id"],
                fields["filter"],
                fields["enabled"],
                fields["headers"],
                self._box.seal(orjson.dumps(encrypted).decode()) if encrypted else None,
                sorted(encrypted),
                self._box.seal(secret) if secret else None,
                fields["enable_cloud_event_delivery"],
                fields["check_certificate_revocation"],
                fields["origin"],
                principal.user_id,
            )
            await _outbox(conn, principal.tenant_id, webhook_id, "created")
        return row

    async def get(self, principal: Principal, webhook_id: uuid.UUID) -> asyncpg.Record | None:
        """One webhook the caller may see, or None."""
        where, params = _visible(principal, 2)
        return await self._pool.fetchrow(
            f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1 AND {where}",
            webhook_id,
            *params,
        )

    async def list(
        self, principal: Principal, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> Page:
        """Newest first, keyset-paged on (createdAt, id) so concurrent inserts never shift pages."""
        where, params = _visible(principal, 1)
        if after is not None:
            n = len(params)
            where += f" AND (created_at, id) < (${n + 1}, ${n + 2})"
            params += list(after)
        rows = await self._pool.fetch(
            f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE {where}"
            f" ORDER BY created_at DESC, id DESC LIMIT {limit + 1}",
            *params,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, (rows[-1]["created_at"], rows[-1]["id"]) if more else None)

    async def delete(self, principal: Principal, webhook_id: uuid.UUID) -> bool:
        """Delete the webhook, remember it for the janitor, and tell the matcher."""
        where, params = _visible(principal, 2)
        async with self._pool.acquire() as conn, conn.transaction():
            tenant_id = await conn.fetchval(
                f"DELETE FROM webhooks WHERE id = $1 AND {where} RETURNING tenant_id",
                webhook_id,
                *params,
            )
            if tenant_id is None:
                return False
            await conn.execute(
                "INSERT INTO deleted_webhooks (webhook_id, tenant_id) VALUES ($1, $2)",
                webhook_id,
                tenant_id,
            )
            await _outbox(conn, tenant_id, webhook_id, "deleted")
        return True


async def _outbox(
    conn: asyncpg.Connection, tenant_id: str, webhook_id: uuid.UUID, kind: str
) -> None:
    """Record the change for the relay and wake it."""
    await conn.execute(
        "INSERT INTO outbox (tenant_id, webhook_id, kind) VALUES ($1, $2, $3)",
        tenant_id,
        webhook_id,
        kind,
    )
    await conn.execute("NOTIFY hookstream_outbox")


class DeliveryRepository:
    """Reads of the delivery history, scoped to a webhook the caller may see."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def list(
        self,
        tenant_id: str,
        webhook_id: uuid.UUID,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> Page:
        """Newest first, keyset-paged on (triggeredAt, id)."""
        params: list[Any] = [tenant_id, webhook_id]
        where = "tenant_id = $1 AND webhook_id = $2"
        if after is not None:
            where += " AND (triggered_at, id) < ($3, $4)"
            params += list(after)
        rows = await self._pool.fetch(
            f"SELECT * FROM deliveries WHERE {where}"
            f" ORDER BY triggered_at DESC, id DESC LIMIT {limit + 1}",
            *params,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, (rows[-1]["triggered_at"], rows[-1]["id"]) if more else None)

    async def get(
        self, tenant_id: str, webhook_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> asyncpg.Record | None:
        """One delivery of the webhook, or None."""
        return await self._pool.fetchrow(
            "SELECT * FROM deliveries WHERE tenant_id = $1 AND webhook_id = $2 AND id = $3",
            tenant_id,
            webhook_id,
            delivery_id,
        )
