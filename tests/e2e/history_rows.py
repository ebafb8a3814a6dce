"""Rows of the delivery history, written by the one store-outcome step (`record_outcomes`),
and databases of a test's own."""

import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg

from hookstream_common.db import json_codecs, migrate
from hookstream_common.delivery import Attempt
from hookstream_common.events import Event
from hookstream_common.history import Outcome, record_outcomes
from hookstream_dev.events import sample_event
from support import fresh_database

CREATED = "com.qlik.v1.app.created"


@contextlib.asynccontextmanager
async def own_database(server_dsn: str, upto: str | None = None) -> AsyncIterator[str]:
    """A database migrated (through `upto`) that no service uses (no janitor, no recovery
    worker), dropped after."""
    async with fresh_database(server_dsn, f"hookstream_own_{secrets.token_hex(4)}") as dsn:
        await migrate(dsn, upto)
        yield dsn


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
    """A delivery of one attempt (answered 200 for "success", else 500), stored by the
    store-outcome step every path uses (`record_outcomes`), so it is a row the dispatcher could
    have written; returns its id."""
    event = new_event(tenant)
    code = 200 if status == "success" else 500
    stored = outcome(
        str(uuid.uuid4()), webhook_id, event, triggered_at, 1, code, next_attempt_at, triggered_at
    )
    await json_codecs(db)  # the caller's connection reads json as text again after
    try:
        async with db.transaction():
            await record_outcomes(db, [stored])
    finally:
        for name in ("json", "jsonb"):
            await db.reset_type_codec(name, schema="pg_catalog")
    return stored.delivery_id


def outcome(
    delivery_id: str,
    webhook_id: str,
    event: Event,
    triggered_at: datetime,
    attempt: int,
    status_code: int,
    next_attempt_at: datetime | None = None,
    started_at: datetime | None = None,
) -> Outcome:
    """The outcome of attempt `attempt`, answered with `status_code` (at `started_at`, or now)."""
    answered = Attempt(
        started_at=started_at or datetime.now(UTC), duration_ms=1.0, status_code=status_code
    )
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
