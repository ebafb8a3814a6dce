"""Delivery history in Postgres: event bodies (once per event), deliveries and their attempts.

Written in batches, one transaction each, never one autocommit per row. Every table is
partitioned by day on the delivery's trigger time; see migration 0003.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from hookstream_common.delivery import Attempt
from hookstream_common.events import Event


@dataclass(frozen=True)
class Outcome:
    """The result of one attempt of a delivery, and the delivery's state after it."""

    delivery_id: str
    tenant_id: str
    webhook_id: str
    event: Event
    cloud_event: bool
    status: str
    status_message: str
    triggered_at: datetime
    request: dict[str, Any]
    attempt_number: int
    attempt: Attempt


async def store(conn: asyncpg.Connection, outcomes: list[Outcome]) -> None:
    """Insert bodies and attempts, upsert deliveries (a redelivered job overwrites its row).

    Call inside a transaction.
    """
    bodies = {(o.tenant_id, o.event.id, o.triggered_at): o.event for o in outcomes}
    await conn.executemany(
        "INSERT INTO event_bodies (tenant_id, event_id, triggered_at, body)"
        " VALUES ($1, $2, $3, $4::text::jsonb) ON CONFLICT DO NOTHING",
        [(t, e, at, event.legacy_json.decode()) for (t, e, at), event in bodies.items()],
    )
    await conn.executemany(
        "INSERT INTO deliveries (id, tenant_id, webhook_id, event_id, event_type, status,"
        " status_message, triggered_at, cloud_event, request, response, attempts)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        " ON CONFLICT (id, triggered_at) DO UPDATE SET status = EXCLUDED.status,"
        " status_message = EXCLUDED.status_message, request = EXCLUDED.request,"
        " response = EXCLUDED.response,"
        " attempts = GREATEST(deliveries.attempts, EXCLUDED.attempts)",
        [
            (
                o.delivery_id,
                o.tenant_id,
                o.webhook_id,
                o.event.id,
                o.event.type,
                o.status,
                o.status_message,
                o.triggered_at,
                o.cloud_event,
                o.request,
                o.attempt.as_history(),
                o.attempt_number,
            )
            for o in outcomes
        ],
    )
    await conn.executemany(
        "INSERT INTO delivery_attempts (delivery_id, attempt, triggered_at, tenant_id,"
        " webhook_id, started_at, duration_ms, status_code, error_class, error, response_body,"
        " body_truncated) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        " ON CONFLICT (delivery_id, attempt, triggered_at) DO UPDATE SET"
        " started_at = EXCLUDED.started_at, duration_ms = EXCLUDED.duration_ms,"
        " status_code = EXCLUDED.status_code, error_class = EXCLUDED.error_class,"
        " error = EXCLUDED.error, response_body = EXCLUDED.response_body,"
        " body_truncated = EXCLUDED.body_truncated",
        [
            (
                o.delivery_id,
                o.attempt_number,
                o.triggered_at,
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


def delivery_body(body: Any, cloud_event: bool) -> Any:
    """The `request.body` of a stored delivery: the event in the shape the webhook received."""
    if body is None:
        return None
    return orjson.loads(Event.from_legacy(body).render(cloud_event)) if cloud_event else body
