"""Shared per-request dependencies: settings, the pool and secret box, repositories, the
visible webhook, the delivery client, the recovery worker, who acts (for the audit trail), and the
query parameters of the lists.

Only this module reads `request.app.state`; routers take what they need as parameters.
Every dependency is `async def`, even those that never wait: FastAPI runs a plain `def` one in a
worker thread, a hop there and back on every request that cost the list a sixth of its CPU.
"""

import functools
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated

import asyncpg
from fastapi import Depends, Query, Request

from hookstream_api.auth import CurrentPrincipal, Principal
from hookstream_api.errors import ApiError, not_found
from hookstream_api.paging import Sortable, page_request
from hookstream_api.rate_limits import InFlight, Limit, Rate, take_all
from hookstream_api.recoveries import RecoveryWorker
from hookstream_api.repository import AuditRepository, DeliveryRepository, WebhookRepository
from hookstream_api.request_context import request_trace_id
from hookstream_api.schemas import AuditQuery, DeliveryQuery, TenantAuditQuery, WebhookQuery
from hookstream_api.sending import SendNow, send_now
from hookstream_api.settings import ApiSettings
from hookstream_common.audit import Actor
from hookstream_common.catalogue import EventType
from hookstream_common.crypto import SecretBox
from hookstream_common.delivery import Sender


async def app_settings(request: Request) -> ApiSettings:
    """The settings the app was created with."""
    return request.app.state.settings


def _connected(request: Request) -> None:
    """Until start-up has reached Postgres and migrated it, data requests answer 503."""
    if not request.app.state.connected:
        raise ApiError(
            503,
            "HOOKSTREAM-503",
            "The service is starting and waits for its database; try again in a few seconds.",
        )


async def db_pool(request: Request) -> asyncpg.Pool:
    """The app's Postgres pool, once start-up has connected it."""
    _connected(request)
    return request.app.state.pool


async def secret_box(request: Request) -> SecretBox:
    """The keys that open webhooks' secrets and encrypted headers."""
    return request.app.state.box


async def recovery_worker(request: Request) -> RecoveryWorker:
    """The app's recovery worker, told to start at once when a recovery is requested."""
    return request.app.state.recovery_worker


async def audit_actor(request: Request, principal: CurrentPrincipal) -> Actor:
    """Who makes this request, for the audit trail: the token's subject, the client address
    (the forwarded one from a trusted proxy, `forwarded_allow_ips`) and the trace id."""
    address = request.client.host if request.client else None
    return Actor(principal.user_id, address, request_trace_id(request.scope))


AuditActor = Annotated[Actor, Depends(audit_actor)]


async def webhook_repository(request: Request, actor: AuditActor) -> WebhookRepository:
    """Repository over the app's pool and secret box, auditing writes as the caller's."""
    _connected(request)
    return WebhookRepository(request.app.state.pool, request.app.state.box, actor)


async def audit_repository(request: Request) -> AuditRepository:
    """Repository over the app's pool."""
    _connected(request)
    return AuditRepository(request.app.state.pool)


async def delivery_repository(request: Request) -> DeliveryRepository:
    """Repository over the app's pool."""
    _connected(request)
    settings = request.app.state.settings
    return DeliveryRepository(request.app.state.pool, timedelta(days=settings.retention_days))


async def _within(request: Request, principal: Principal, limit: Limit, what: str) -> None:
    """Take one request from the caller's buckets of `limit`, or answer 429 with when to try
    again."""
    _connected(request)
    wait = await take_all(request.app.state.pool, limit, principal.tenant_id, principal.user_id)
    if wait is not None:
        rate = limit.tenant
        raise ApiError(
            429,
            "HOOKSTREAM-429",
            f"Too many {what}: a tenant may make {rate.per_second:g} a second (bursts of"
            f" {rate.burst}), one user a share of that; try again in {wait} s.",
            "Too many requests",
            headers={"Retry-After": str(wait)},
        )


async def write_allowed(request: Request, principal: CurrentPrincipal) -> None:
    """Take one webhook write from the caller's buckets, or answer 429."""
    settings: ApiSettings = request.app.state.settings
    rate = Rate(settings.write_rate_per_second, settings.write_burst)
    await _within(request, principal, Limit("write", rate, settings.user_rate_share), "writes")


async def action_allowed(request: Request, principal: CurrentPrincipal) -> None:
    """Take one action (resend, recover, test) from the caller's buckets, or answer 429."""
    settings: ApiSettings = request.app.state.settings
    rate = Rate(settings.action_rate_per_second, settings.action_burst)
    limit = Limit("action", rate, settings.user_rate_share)
    await _within(request, principal, limit, "resends, recoveries and tests")


async def catalogue(request: Request) -> tuple[EventType, ...]:
    """The event types webhooks may subscribe to, loaded when the app was created."""
    return request.app.state.event_types


async def delivery_client(request: Request) -> Sender:
    """Sends with the SSRF-safe client (through the egress proxy, if one is set), as resend
    and the test event do."""
    return request.app.state.send


Settings = Annotated[ApiSettings, Depends(app_settings)]
Pool = Annotated[asyncpg.Pool, Depends(db_pool)]
Box = Annotated[SecretBox, Depends(secret_box)]
Recoveries = Annotated[RecoveryWorker, Depends(recovery_worker)]
Webhooks = Annotated[WebhookRepository, Depends(webhook_repository)]
Deliveries = Annotated[DeliveryRepository, Depends(delivery_repository)]
AuditTrail = Annotated[AuditRepository, Depends(audit_repository)]
Catalogue = Annotated[tuple[EventType, ...], Depends(catalogue)]
WriteAllowed = Depends(write_allowed)
"""Add to `dependencies=` of every route that writes a webhook."""


async def sending_slot(request: Request, principal: CurrentPrincipal) -> AsyncIterator[None]:
    """Hold one of the tenant's slots for a request sent while the caller waits, or 429."""
    in_flight: InFlight = request.app.state.in_flight
    if not in_flight.enter(principal.tenant_id):
        raise ApiError(
            429,
            "HOOKSTREAM-429",
            "The tenant has as many resends and tests waiting on receivers as it may;"
            " try again when one has finished.",
            "Too many requests",
            headers={"Retry-After": "1"},
        )
    try:
        yield
    finally:
        in_flight.leave(principal.tenant_id)


ActionAllowed = Depends(action_allowed)
"""Add to `dependencies=` of every route that sends or queues deliveries on request."""
SendingSlot = Depends(sending_slot)
"""Add to `dependencies=` of every route that sends a request while its caller waits."""
DeliveryClient = Annotated[Sender, Depends(delivery_client)]


async def sending_now(
    settings: Settings, client: DeliveryClient, pool: Pool, actor: AuditActor
) -> SendNow:
    """`send_now` with what resend and the test event share: this request's sender, the pool,
    the user agent, the recovered-after count and the acting user."""
    return functools.partial(
        send_now,
        client=client,
        user_agent=settings.user_agent,
        pool=pool,
        recovered_after=settings.recovered_after_failures,
        actor=actor,
    )


SendsNow = Annotated[SendNow, Depends(sending_now)]


def parse_id(value: str, what: str = "webhook") -> uuid.UUID:
    """Ids are UUIDs; anything else cannot exist, so it is a 404 like any unknown id."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise not_found(what) from None


async def visible_webhook_id(id: str, principal: CurrentPrincipal, repo: Webhooks) -> uuid.UUID:
    """The `{id}` of the path, a webhook the caller may see; a 404 for anything else."""
    webhook_id = parse_id(id)
    if await repo.get(principal, webhook_id) is None:
        raise not_found()
    return webhook_id


async def delivery_id(deliveryId: str) -> uuid.UUID:
    """The `{deliveryId}` of the path (a 404 if it is no id)."""
    return parse_id(deliveryId, "delivery")


async def recovery_id(recoveryId: str) -> uuid.UUID:
    """The `{recoveryId}` of the path (a 404 if it is no id)."""
    return parse_id(recoveryId, "recovery")


VisibleWebhookId = Annotated[uuid.UUID, Depends(visible_webhook_id)]
"""The id of the path's webhook, which the caller may see (else a 404)."""
DeliveryId = Annotated[uuid.UUID, Depends(delivery_id)]
RecoveryId = Annotated[uuid.UUID, Depends(recovery_id)]
"""Declare these after `VisibleWebhookId`: the webhook's 404 comes first, as the path reads."""


WEBHOOK_SORTS = Sortable(
    columns={
        "name": "name",
        "url": "url",
        "createdAt": "created_at",
        "updatedAt": "updated_at",
        # Beyond Qlik: the other columns of the console's table sort on the server too.
        "eventTypes": "event_types",
        "enabled": "enabled",
        "level": "level",
        "ownerId": "owner_id",
    },
    default="-createdAt",
    kinds={"createdAt": datetime, "updatedAt": datetime, "eventTypes": list, "enabled": bool},
)
DELIVERY_SORTS = Sortable(
    columns={"status": "d.status", "triggeredAt": "d.triggered_at"},
    default="-triggeredAt",
    kinds={"triggeredAt": datetime},
)

WebhookFilters = Annotated[WebhookQuery, Query()]
WebhookPage = page_request(WEBHOOK_SORTS)
"""`GET /webhooks`: its filters, and its sort, limit and cursors."""
DeliveryFilters = Annotated[DeliveryQuery, Query()]
DeliveryPage = page_request(DELIVERY_SORTS)
"""`GET /webhooks/{id}/deliveries`: its filters, and its sort, limit and cursors."""
AUDIT_SORTS = Sortable(
    columns={"createdAt": "created_at"}, default="-createdAt", kinds={"createdAt": datetime}
)
AuditFilters = Annotated[AuditQuery, Query()]
TenantAuditFilters = Annotated[TenantAuditQuery, Query()]
AuditPage = page_request(AUDIT_SORTS)
"""`GET /webhooks/{id}/audit` and `GET /webhooks/audit`: filters, sort, limit and cursors."""
