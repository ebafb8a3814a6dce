"""Reads of webhook configuration that more than the API needs."""

from dataclasses import dataclass

import asyncpg
import orjson

from hookstream_common.crypto import SecretBox
from hookstream_common.routing import Route, TenantRoutes


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

    def __repr__(self) -> str:
        return f"DeliveryTarget(webhook_id={self.webhook_id!r}, url={self.url!r})"


async def load_target(
    conn: asyncpg.Connection | asyncpg.Pool, box: SecretBox, webhook_id: str
) -> DeliveryTarget | None:
    """The webhook's current delivery settings, decrypted, or None if it was deleted."""
    row = await conn.fetchrow(
        "SELECT id, tenant_id, url, headers, encrypted_headers, secret, enabled,"
        " enable_cloud_event_delivery FROM webhooks WHERE id = $1",
        webhook_id,
    )
    if row is None:
        return None
    encrypted = row["encrypted_headers"]
    return DeliveryTarget(
        webhook_id=str(row["id"]),
        tenant_id=row["tenant_id"],
        url=row["url"],
        headers=dict(row["headers"]),
        encrypted_headers=orjson.loads(box.open(encrypted)) if encrypted else {},
        secret=box.open(row["secret"]) if row["secret"] else None,
        enabled=row["enabled"],
        cloud_event=row["enable_cloud_event_delivery"],
    )


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
