"""Rows of the delivery history written straight to Postgres, and databases of a test's own."""

import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import orjson

from hookstream_common.db import ensure_partitions, migrate
from hookstream_common.delivery import Attempt
from hookstream_common.events import Event
from hookstream_common.history import Outcome
from hookstream_dev.events import sample_event

CREATED = "com.qlik.v1.app.created"


@contextlib.asynccontextmanager
async def own_database(server_dsn: str, upto: str | None = None) -> AsyncIterator[str]:
    """A database migrated (through `upto`) that no service uses (no janitor, no recovery
    worker), dropped after."""
    name = f"hookstream_own_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{server_dsn.rpartition('/')[0]}/{name}"
    try:
        await migrate(dsn, upto)
        yield dsn
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def insert_webhook(db: asyncpg.Connection, tenant: str) -> str:
    """A bare webhook row, for a database no API serves."""
    webhook_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO webhooks (id, tenant_id, name, url, event_types, level, owner_id,"
        " created_by_user_id, updated_by_user_id)"
        " VALUES ($1, $2, 'w', 'https://x.example.com/h', $3, 'user', 'u1', 'u1', 'u1')",
        webhook_id,
        tenant,
        [CREATED],
    )
    return str(webhook_id)


async def insert_delivery(
    db: asyncpg.Connection,
    tenant: str,
    webhook_id: str,
    triggered_at: datetime,
    status: str,
    next_attempt_at: datetime | None = None,
) -> str:
    """A delivery and its event body, as the dispatcher would have stored them, in its day's
    partition (made here as the writer makes it: just after midnight, "an hour ago" is
    yesterday, which a database migrated today has no partition for)."""
    await ensure_partitions(db, 0, today=triggered_at.astimezone(UTC).date())
    delivery_id, event_id = str(uuid.uuid4()), str(uuid.uuid4())
    event = sample_event(CREATED, tenant, "u1")
    event["eventId"] = event_id
    await db.execute(
        "INSERT INTO event_bodies VALUES ($1, $2, $3, $4::text::json)",
        tenant,
        event_id,
        triggered_at,
        orjson.dumps(event).decode(),
    )
    await db.execute(
        "INSERT INTO deliveries (id, tenant_id, webhook_id, event_id, event_type, status,"
        " triggered_at, request, next_attempt_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9)",
        uuid.UUID(delivery_id),
        tenant,
        uuid.UUID(webhook_id),
        event_id,
        CREATED,
        status,
        triggered_at,
        '{"url": "https://x.example.com", "headers": {}}',
        next_attempt_at,
    )
    return delivery_id


def outcome(
    delivery_id: str,
    webhook_id: str,
    event: Event,
    triggered_at: datetime,
    attempt: int,
    status_code: int,
    next_attempt_at: datetime | None = None,
) -> Outcome:
    """The outcome of attempt `attempt`, answered with `status_code`."""
    answered = Attempt(started_at=datetime.now(UTC), duration_ms=1.0, status_code=status_code)
    return Outcome(
        delivery_id=delivery_id,
        tenant_id=event.tenant_id,
        webhook_id=webhook_id,
        event=event,
        cloud_event=False,
        status="success" if answered.succeeded else "fail",
        status_message=answered.status_message(),
        triggered_at=triggered_at,
        request={"url": "https://x.example.com/h", "headers": {}},
        attempt_number=attempt,
        attempt=answered,
        next_attempt_at=next_attempt_at,
    )


def new_event(tenant: str) -> Event:
    """An event of the tenant, as the matcher parsed it."""
    return Event.from_legacy(sample_event(CREATED, tenant, "u1"))
