"""`/webhooks/{id}/actions/recover`: queue a window of failed deliveries again (beyond Qlik).

The request is stored and answered at once (202) with its id and the count it will queue; the
API's recovery worker queues the jobs onto the webhook's delivery topic, where the dispatcher
treats them as fresh attempts of the same deliveries: same ids, a full retry schedule after the
attempts already made. `GET .../actions/recover/{recoveryId}` tells how far it has got.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog
from fastapi import APIRouter, Request, Response

from hookstream_api.auth import CurrentPrincipal
from hookstream_api.dependencies import (
    AuditActor,
    Pool,
    Recoveries,
    RecoveryId,
    Settings,
    VisibleWebhookId,
)
from hookstream_api.errors import ERROR_RESPONSES, ApiError, invalid, not_found
from hookstream_api.recoveries import create_recovery, read_recovery
from hookstream_api.routers import ACTION
from hookstream_api.schemas import RecoverRequest, Recovery

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)


def recovery_json(row: asyncpg.Record) -> dict[str, Any]:
    """The API representation of a recoveries row."""
    return Recovery(
        id=str(row["id"]),
        webhookId=str(row["webhook_id"]),
        state=row["state"],
        since=row["since"],
        until=row["until"],
        total=row["total"],
        queued=row["queued"],
        createdAt=row["created_at"],
        finishedAt=row["finished_at"],
    ).model_dump(by_alias=True, mode="json")


@router.post("/{id}/actions/recover", status_code=202, response_model=Recovery, **ACTION)
async def recover_deliveries(
    webhook_id: VisibleWebhookId,
    body: RecoverRequest,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    settings: Settings,
    pool: Pool,
    worker: Recoveries,
    actor: AuditActor,
) -> dict[str, Any]:
    """Queue every failed delivery triggered in [since, until) again, once.

    Deliveries with a retry still pending are left to it. Recovering a window again while a
    recovery of it is under way queues nothing twice.
    """
    now = datetime.now(UTC)
    if body.until is not None and body.until <= body.since:
        raise invalid("until: must be later than since")
    if body.since >= now:
        raise invalid("since: must be in the past")
    since = max(body.since, now - timedelta(days=settings.retention_days))
    until = min(body.until or now, now)
    row = await create_recovery(
        pool,
        principal.tenant_id,
        webhook_id,
        since,
        until,
        settings.running_recoveries_per_tenant,
        actor,
    )
    if row is None:
        raise ApiError(
            429,
            "HOOKSTREAM-429",
            f"The tenant has {settings.running_recoveries_per_tenant} recoveries under way, as"
            " many as it may; try again when one has finished.",
            "Too many requests",
            headers={"Retry-After": "10"},
        )
    worker.run_soon()
    log.info(
        "recovery requested",
        tenant_id=principal.tenant_id,
        webhook_id=str(webhook_id),
        recovery_id=str(row["id"]),
        total=row["total"],
    )
    response.headers["Location"] = f"{request.url.path}/{row['id']}"
    return recovery_json(row)


@router.get("/{id}/actions/recover/{recoveryId}", response_model=Recovery)
async def get_recovery(
    webhook_id: VisibleWebhookId,
    recovery_id: RecoveryId,
    principal: CurrentPrincipal,
    pool: Pool,
) -> dict[str, Any]:
    """A recovery's state, and how many of its deliveries are queued so far."""
    row = await read_recovery(
        pool,
        principal.tenant_id,
        webhook_id,
        recovery_id,
    )
    if row is None:
        raise not_found("recovery")
    return recovery_json(row)
