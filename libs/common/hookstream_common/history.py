"""Writes delivery outcomes to Postgres in batches, never one autocommit per row."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


@dataclass(frozen=True)
class Outcome:
    """The stored result of a delivery: one row of the history."""

    delivery_id: str
    tenant_id: str
    webhook_id: str
    event_id: str
    event_type: str
    status: str
    status_message: str
    triggered_at: datetime
    request: dict[str, Any]
    response: dict[str, Any] | None


async def store(pool: asyncpg.Pool, outcomes: list[Outcome]) -> None:
    """Upsert a batch in one transaction; a redelivered job overwrites its earlier outcome."""
    if not outcomes:
        return
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            "INSERT INTO deliveries (id, tenant_id, webhook_id, event_id, event_type, status,"
            " status_message, triggered_at, request, response)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status,"
            " status_message = EXCLUDED.status_message, request = EXCLUDED.request,"
            " response = EXCLUDED.response",
            [
                (
                    o.delivery_id,
                    o.tenant_id,
                    o.webhook_id,
                    o.event_id,
                    o.event_type,
                    o.status,
                    o.status_message,
                    o.triggered_at,
                    o.request,
                    o.response,
                )
                for o in outcomes
            ],
        )
