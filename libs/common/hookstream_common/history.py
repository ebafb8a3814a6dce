"""Delivery history in Postgres: the delivery row, its attempts, and per-webhook health.

Written in batches, one transaction each, never one autocommit per row.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from hookstream_common.delivery import Attempt


@dataclass(frozen=True)
class Outcome:
    """The result of one attempt of a delivery, and the delivery's state after it."""

    delivery_id: str
    tenant_id: str
    webhook_id: str
    event_id: str
    event_type: str
    status: str
    status_message: str
    triggered_at: datetime
    request: dict[str, Any]
    attempt_number: int
    attempt: Attempt

    @property
    def response(self) -> dict[str, Any] | None:
        """The `response` of the Delivery."""
        return self.attempt.as_history()


async def store(conn: asyncpg.Connection, outcomes: list[Outcome]) -> None:
    """Upsert the deliveries and insert their attempts; a redelivered job overwrites its row.

    Call inside a transaction.
    """
    await conn.executemany(
        "INSERT INTO deliveries (id, tenant_id, webhook_id, event_id, event_type, status,"
        " status_message, triggered_at, request, response, attempts)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status,"
        " status_message = EXCLUDED.status_message, request = EXCLUDED.request,"
        " response = EXCLUDED.response,"
        " attempts = GREATEST(deliveries.attempts, EXCLUDED.attempts)",
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
                o.attempt_number,
            )
            for o in outcomes
        ],
    )
    await conn.executemany(
        "INSERT INTO delivery_attempts (delivery_id, attempt, tenant_id, webhook_id, started_at,"
        " duration_ms, status_code, error_class, error, response_body, body_truncated)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        " ON CONFLICT (delivery_id, attempt) DO UPDATE SET started_at = EXCLUDED.started_at,"
        " duration_ms = EXCLUDED.duration_ms, status_code = EXCLUDED.status_code,"
        " error_class = EXCLUDED.error_class, error = EXCLUDED.error,"
        " response_body = EXCLUDED.response_body, body_truncated = EXCLUDED.body_truncated",
        [
            (
                o.delivery_id,
                o.attempt_number,
                o.tenant_id,
                o.webhook_id,
                o.attempt.started_at,
                o.attempt.duration_ms,
                o.attempt.status_code,
                o.attempt.error_class,
                o.attempt.error,
                o.attempt.body if o.attempt.status_code is not None else None,
                o.attempt.body_truncated,
            )
            for o in outcomes
        ],
    )
