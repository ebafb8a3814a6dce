"""Webhook, delivery and audit SQL of the API. Every statement is scoped to the caller's tenant
in SQL.

A change to a webhook, its outbox row and its audit row are written in one transaction (no dual
writes); the relay turns outbox rows into Kafka records.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from hookstream_api.auth import Principal
from hookstream_api.errors import ApiError
from hookstream_api.paging import PageQuery, PageRequest, page_query
from hookstream_api.schemas import AuditQuery, DeliveryQuery, WebhookQuery
from hookstream_api.webhook_health import WebhookHealth, load_health
from hookstream_common import audit
from hookstream_common.crypto import SecretBox, UndecryptableSecret
from hookstream_common.db import advisory_lock_key
from hookstream_common.secret_rotation import PreviousSecret, after_change
from hookstream_common.webhook_model import (
    API_COLUMNS,
    WebhookFields,
    opened_or_none,
    previous_secret,
    writable_form,
)
from hookstream_common.webhook_store import record_change

log = structlog.get_logger(__name__)

_UNREADABLE = object()
"""Stands for a stored secret no key opens: equal to no value a change can write."""


@dataclass(frozen=True)
class Page:
    """One page of rows, and whether more rows follow it in the direction it was read."""

    rows: list[asyncpg.Record]
    has_more: bool


@dataclass(frozen=True)
class WebhookPage(Page):
    """A page of webhooks with their health, read on one connection."""

    health: dict[uuid.UUID, WebhookHealth]


class _Where:
    """Builds a WHERE clause with numbered parameters."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []

    def add(self, sql: str, *values: Any) -> None:
        """`sql` uses `{}` for each value, in order."""
        numbers = [f"${len(self.params) + i + 1}" for i in range(len(values))]
        self.parts.append(sql.format(*numbers))
        self.params.extend(values)

    @classmethod
    def webhook(cls, principal: Principal, webhook_id: uuid.UUID) -> "_Where":
        """The one webhook, if the caller may see it."""
        where = cls()
        where.add("id = {}", webhook_id)
        where.visible_to(principal)
        return where

    def visible_to(self, principal: Principal) -> None:
        """The tenant's rows; only the caller's own unless a TenantAdmin."""
        self.add("tenant_id = {}", principal.tenant_id)
        if not principal.is_tenant_admin:
            self.add("owner_id = {}", principal.user_id)

    def page(self, request: PageRequest) -> PageQuery:
        """Add the keyset condition of the page and return its ORDER BY."""
        query = page_query(request.sort, request.cursor, len(self.params) + 1)
        self.parts.append(query.condition)
        self.params.extend(query.params)
        return query

    @property
    def sql(self) -> str:
        """The conditions joined, or TRUE."""
        return " AND ".join(self.parts) or "TRUE"


async def _fetch_page(
    conn: asyncpg.Pool | asyncpg.Connection,
    select: str,
    where: _Where,
    request: PageRequest,
) -> Page:
    query = where.page(request)
    limit = request.limit
    rows = await conn.fetch(
        f"{select} WHERE {where.sql} ORDER BY {query.order_by} LIMIT {limit + 1}", *where.params
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    if query.backwards:
        rows.reverse()
    return Page(rows, has_more)


async def _fetch_webhook(
    conn: asyncpg.Pool | asyncpg.Connection, principal: Principal, webhook_id: uuid.UUID
) -> asyncpg.Record | None:
    """The webhook's API columns, if the caller may see it."""
    where = _Where.webhook(principal, webhook_id)
    return await conn.fetchrow(
        f"SELECT {API_COLUMNS} FROM webhooks WHERE {where.sql}", *where.params
    )


class WebhookRepository:
    """Reads and writes webhooks for one request; each write is audited as `actor`'s."""

    def __init__(self, pool: asyncpg.Pool, box: SecretBox, actor: audit.Actor) -> None:
        self._pool = pool
        self._box = box
        self._actor = actor

    async def create(
        self, principal: Principal, fields: WebhookFields, origin: str, limit: int
    ) -> asyncpg.Record:
        """Insert the webhook and its outbox row in one transaction; a 403 at `limit` webhooks.

        Creates of one tenant take turns on an advisory lock held to commit, so concurrent ones
        never count the same total and go past the limit together.
        """
        webhook_id = uuid.uuid4()
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1)",
                advisory_lock_key(f"hookstream.webhooks.{principal.tenant_id}"),
            )
            count = await conn.fetchval(
                "SELECT count(*) FROM webhooks WHERE tenant_id = $1", principal.tenant_id
            )
            if count >= limit:
                raise ApiError(
                    403,
                    "HOOKSTREAM-LIMIT",
                    f"The tenant already has {limit} webhooks, the most allowed; delete one first.",
                    "Limit reached",
                )
            columns = {
                "id": webhook_id,
                "tenant_id": principal.tenant_id,
                "origin": origin,
                "created_by_user_id": principal.user_id,
                "updated_by_user_id": principal.user_id,
                **fields.columns(self._box),
            }
            numbers = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
            row = await conn.fetchrow(
                f"INSERT INTO webhooks ({', '.join(columns)}) VALUES ({numbers})"
                f" RETURNING {API_COLUMNS}",
                *columns.values(),
            )
            await record_change(conn, principal.tenant_id, webhook_id, "created")
            created = await self._document(conn, webhook_id)
            await audit.record(
                conn, self._actor, "create", webhook_id, audit.changed_fields({}, created)
            )
        return row

    async def get(self, principal: Principal, webhook_id: uuid.UUID) -> asyncpg.Record | None:
        """One webhook the caller may see, or None."""
        return await _fetch_webhook(self._pool, principal, webhook_id)

    async def get_with_health(
        self, principal: Principal, webhook_id: uuid.UUID
    ) -> tuple[asyncpg.Record, WebhookHealth] | None:
        """One webhook the caller may see and its health, on one connection; or None."""
        async with self._pool.acquire() as conn:
            row = await _fetch_webhook(conn, principal, webhook_id)
            if row is None:
                return None
            return row, (await load_health(conn, [webhook_id]))[webhook_id]

    async def list(
        self,
        principal: Principal,
        filters: WebhookQuery,
        request: PageRequest,
    ) -> WebhookPage:
        """The webhooks the caller may see that pass every filter, one keyset page, with their
        health: one connection for both, as the list is the console's most frequent read."""
        where = _Where()
        where.visible_to(principal)
        if filters.name:
            where.add("strpos(lower(name), lower({})) > 0", filters.name)
        if filters.url:
            where.add("strpos(lower(url), lower({})) > 0", filters.url)
        if filters.enabled is not None:
            where.add("enabled = {}", filters.enabled)
        if filters.event_type_list:
            where.add("event_types @> {}::text[]", filters.event_type_list)
        if filters.origin_list:
            where.add("origin = ANY({}::text[])", filters.origin_list)
        for column in ("level", "owner_id", "created_by_user_id", "updated_by_user_id"):
            value = getattr(filters, column)
            if value is not None:
                where.add(f"{column} = {{}}", value)
        if filters.event_types_contains:
            where.add(
                "EXISTS (SELECT 1 FROM unnest(event_types) AS t"
                " WHERE strpos(lower(t), lower({})) > 0)",
                filters.event_types_contains,
            )
        if filters.owner_id_contains:
            where.add("strpos(lower(owner_id), lower({})) > 0", filters.owner_id_contains)
        if filters.updated_since:
            where.add("updated_at >= {}", filters.updated_since)
        if filters.updated_until:
            where.add("updated_at < {}", filters.updated_until)
        if filters.last_status:
            where.add(
                "EXISTS (SELECT 1 FROM webhook_health h"
                " WHERE h.webhook_id = webhooks.id AND h.last_status = {})",
                filters.last_status,
            )
        async with self._pool.acquire() as conn:
            page = await _fetch_page(conn, f"SELECT {API_COLUMNS} FROM webhooks", where, request)
            health = await load_health(conn, [row["id"] for row in page.rows])
        return WebhookPage(page.rows, page.has_more, health)

    async def patch(
        self,
        principal: Principal,
        webhook_id: uuid.UUID,
        change: Callable[[dict[str, Any]], WebhookFields],
    ) -> asyncpg.Record | None:
        """Replace the writable fields with `change(current)`, atomically; None if not found.

        `current` is the writable document in API names, secrets decrypted, so a JSON Patch can
        be applied to it; a 409 if they cannot be decrypted.
        """
        async with self._pool.acquire() as conn:
            return await self._modify(
                conn, principal, webhook_id, lambda row: change(self._writable(row))
            )

    async def replace(
        self, principal: Principal, webhook_id: uuid.UUID, fields: WebhookFields
    ) -> tuple[asyncpg.Record, WebhookHealth] | None:
        """Replace every writable field; the webhook as written and its health, read on one
        connection after the commit; None if not found. A secret or encrypted headers no
        configured key opens do not stop it (the old secret is read only to keep it for a
        rotation), so it also mends such a webhook."""
        async with self._pool.acquire() as conn:
            row = await self._modify(conn, principal, webhook_id, lambda _: fields)
            if row is None:
                return None
            return row, (await load_health(conn, [webhook_id]))[webhook_id]

    async def _modify(
        self,
        conn: asyncpg.Connection,
        principal: Principal,
        webhook_id: uuid.UUID,
        change: Callable[[asyncpg.Record], WebhookFields],
    ) -> asyncpg.Record | None:
        """Write `change(row)` over the row, locked, in a transaction of its own; enabling
        clears why it was disabled."""
        where = _Where.webhook(principal, webhook_id)
        async with conn.transaction():
            row = await conn.fetchrow(
                f"SELECT * FROM webhooks WHERE {where.sql} FOR UPDATE", *where.params
            )
            if row is None:
                return None
            _check_may_manage(principal, row)
            fields = change(row)
            previous = self._previous_after(row, fields)
            columns = {
                **fields.columns(self._box),
                "previous_secret": self._box.seal(previous.secret) if previous else None,
                "previous_secret_expires_at": previous.expires_at if previous else None,
                "updated_by_user_id": principal.user_id,
            }
            if fields["enabled"]:
                columns |= {"disabled_reason": None, "disabled_reason_code": None}
            assignments = ", ".join(f"{name} = ${n}" for n, name in enumerate(columns, start=2))
            updated = await conn.fetchrow(
                f"UPDATE webhooks SET {assignments}, updated_at = now()"
                f" WHERE id = $1 RETURNING {API_COLUMNS}",
                webhook_id,
                *columns.values(),
            )
            if previous is not None and previous.expires_at != row["previous_secret_expires_at"]:
                log.info(
                    "webhook secret rotated",
                    tenant_id=row["tenant_id"],
                    webhook_id=str(webhook_id),
                    previous_secret_expires_at=previous.expires_at.isoformat(),
                )
            if fields["enabled"] and not row["enabled"]:
                # The run of failures starts again; the last delivery stays on show.
                await conn.execute(
                    "UPDATE webhook_health SET consecutive_failures = 0, failing_since = NULL"
                    " WHERE webhook_id = $1",
                    webhook_id,
                )
            await record_change(conn, row["tenant_id"], webhook_id, "updated")
            changed = audit.changed_fields(
                self._audited_form(row), await self._document(conn, webhook_id)
            )
            action = audit.update_action(changed, fields["enabled"])
            await audit.record(conn, self._actor, action, webhook_id, changed)
        return updated

    def _writable(self, row: asyncpg.Record) -> dict[str, Any]:
        """The row as the writable API document, secrets decrypted; a 409 if no key opens them
        (their key was dropped before the row was saved again)."""
        try:
            return writable_form(row, self._box)
        except UndecryptableSecret:
            log.warning(
                "stored secret cannot be decrypted",
                tenant_id=row["tenant_id"],
                webhook_id=str(row["id"]),
            )
            raise ApiError(
                409,
                "HOOKSTREAM-409",
                "The stored secret or encrypted headers cannot be decrypted; replace the webhook"
                " with PUT.",
                "Conflict",
            ) from None

    async def _document(self, conn: asyncpg.Connection, webhook_id: uuid.UUID) -> dict[str, Any]:
        """The writable document of the row as just written (its key opens it), to audit."""
        row = await conn.fetchrow("SELECT * FROM webhooks WHERE id = $1", webhook_id)
        return writable_form(row, self._box)

    def _audited_form(self, row: asyncpg.Record) -> dict[str, Any]:
        """The writable document of the row before a change, to audit. When no key opens the
        sealed values (a PUT mends such a webhook), each one stored compares as changed,
        whatever replaces it."""
        try:
            return writable_form(row, self._box)
        except UndecryptableSecret:
            unsealed = {"secret": None, "encrypted_headers": None, "client_certificate": None}
            readable = writable_form({**row, **unsealed}, self._box)
            sealed = {
                "secret": row["secret"],
                "encryptedHeaders": row["encrypted_headers"],
                "clientCertificate": row["client_certificate"],
            }
            return readable | {name: _UNREADABLE for name, value in sealed.items() if value}

    def _previous_after(self, row: asyncpg.Record, fields: WebhookFields) -> PreviousSecret | None:
        """The previous secret the webhook keeps after this change (secret_rotation).

        A secret no configured key opens cannot sign, so it is not kept: a PUT that mends such
        a webhook starts without a window.
        """
        return after_change(
            opened_or_none(row["secret"], self._box),
            fields["secret"],
            previous_secret(row, self._box),
            fields["secretRotationGraceSeconds"],
            datetime.now(UTC),
        )

    async def delete(self, principal: Principal, webhook_id: uuid.UUID) -> bool:
        """Delete the webhook, remember it for the janitor, and tell the matcher."""
        where = _Where.webhook(principal, webhook_id)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT tenant_id, level FROM webhooks WHERE {where.sql} FOR UPDATE",
                *where.params,
            )
            if row is None:
                return False
            _check_may_manage(principal, row)
            tenant_id = row["tenant_id"]
            await audit.record(conn, self._actor, "delete", webhook_id)
            await conn.execute("DELETE FROM webhooks WHERE id = $1", webhook_id)
            await conn.execute(
                "INSERT INTO deleted_webhooks (webhook_id, tenant_id) VALUES ($1, $2)",
                webhook_id,
                tenant_id,
            )
            await record_change(conn, tenant_id, webhook_id, "deleted")
        return True


def _check_may_manage(principal: Principal, row: asyncpg.Record) -> None:
    """A level=tenant webhook receives the whole tenant's events: only a TenantAdmin changes or
    deletes it, whoever owns it (its owner may still see it)."""
    if row["level"] == "tenant" and not principal.is_tenant_admin:
        raise ApiError(
            403, "HOOKSTREAM-403", "level=tenant webhooks are managed by a TenantAdmin only."
        )


_DELIVERY_SELECT = (
    "SELECT d.*, b.body FROM deliveries d LEFT JOIN event_bodies b"
    " ON b.tenant_id = d.tenant_id AND b.event_id = d.event_id"
    " AND b.triggered_at = d.triggered_at"
)


class DeliveryRepository:
    """Reads of the delivery history, scoped to the caller's tenant and to the retention.

    Rows past the retention are never shown, even before the janitor drops their partition.
    """

    def __init__(self, pool: asyncpg.Pool, retention: timedelta) -> None:
        self._pool = pool
        self._retention = retention

    async def list(
        self,
        tenant_id: str,
        webhook_id: uuid.UUID,
        filters: DeliveryQuery,
        request: PageRequest,
    ) -> Page:
        """The webhook's deliveries that pass every filter, one keyset page."""
        where = self._scoped(tenant_id, webhook_id)
        if filters.event_type:
            where.add("d.event_type = {}", filters.event_type)
        if filters.status:
            where.add("d.status = {}", filters.status)
        if filters.since:
            where.add("d.triggered_at >= {}", filters.since)
        if filters.until:
            where.add("d.triggered_at < {}", filters.until)
        return await _fetch_page(self._pool, _DELIVERY_SELECT, where, request)

    def _scoped(self, tenant_id: str, webhook_id: uuid.UUID) -> _Where:
        where = _Where()
        where.add("d.tenant_id = {}", tenant_id)
        where.add("d.webhook_id = {}", webhook_id)
        where.add("d.triggered_at >= now() - {}::interval", self._retention)
        return where

    async def get(
        self, tenant_id: str, webhook_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> asyncpg.Record | None:
        """One delivery of the webhook, or None."""
        where = self._scoped(tenant_id, webhook_id)
        where.add("d.id = {}", delivery_id)
        return await self._pool.fetchrow(f"{_DELIVERY_SELECT} WHERE {where.sql}", *where.params)


class AuditRepository:
    """Reads of the audit trail, visible as the webhooks are: the caller's tenant, and only the
    rows of webhooks the caller owned when the action happened unless a TenantAdmin."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def list(
        self,
        principal: Principal,
        filters: AuditQuery,
        request: PageRequest,
        webhook_id: uuid.UUID | None = None,
    ) -> Page:
        """The visible rows (of one webhook, or all) that pass every filter, one keyset page."""
        where = _Where()
        where.visible_to(principal)
        if webhook_id is not None:
            where.add("webhook_id = {}", webhook_id)
        if filters.action_list:
            where.add("action = ANY({}::text[])", filters.action_list)
        if filters.actor:
            where.add("actor = {}", filters.actor)
        if filters.since:
            where.add("created_at >= {}", filters.since)
        if filters.until:
            where.add("created_at < {}", filters.until)
        return await _fetch_page(self._pool, "SELECT * FROM audit_events", where, request)

    async def has_subject(self, principal: Principal, webhook_id: uuid.UUID) -> bool:
        """Whether the caller may see the webhook, or the trail it left when deleted."""
        where = _Where.webhook(principal, webhook_id)
        if await self._pool.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM webhooks WHERE {where.sql})", *where.params
        ):
            return True
        trail = _Where()
        trail.add("webhook_id = {}", webhook_id)
        trail.visible_to(principal)
        return await self._pool.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM audit_events WHERE {trail.sql})", *trail.params
        )
