"""`POST /webhooks/{id}/actions/recover`: queue a window of failed deliveries again (beyond Qlik).

The answer (202, with the count) comes at once; the jobs are queued in the background onto the
webhook's delivery topic, where the dispatcher treats them as fresh attempts of the same
deliveries: same ids, a full retry schedule after the attempts already made.
"""

import asyncio
from typing import Any

import structlog
from fastapi import APIRouter, Request

from hookstream_api.auth import CurrentPrincipal
from hookstream_api.dependencies import Deliveries, Webhooks
from hookstream_api.errors import ERROR_RESPONSES, invalid
from hookstream_api.routers.webhooks import visible_webhook_id
from hookstream_api.schemas import RecoverRequest, RecoverResult
from hookstream_common.events import Event
from hookstream_common.jobs import DeliveryJob

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)


@router.post("/{id}/actions/recover", status_code=202, response_model=RecoverResult)
async def recover_deliveries(
    id: str,
    body: RecoverRequest,
    request: Request,
    principal: CurrentPrincipal,
    webhooks: Webhooks,
    deliveries: Deliveries,
) -> dict[str, Any]:
    """Queue every failed delivery triggered in [since, until) again; answer with the count."""
    webhook_id = await visible_webhook_id(webhooks, principal, id)
    if body.until is not None and body.until <= body.since:
        raise invalid("until: must be later than since")
    rows = await deliveries.failed_between(principal.tenant_id, webhook_id, body.since, body.until)
    jobs = [
        DeliveryJob(
            delivery_id=str(row["id"]),
            webhook_id=str(webhook_id),
            tenant_id=principal.tenant_id,
            event=Event.from_legacy(row["body"]),
            triggered_at=row["triggered_at"],
            attempt=row["attempts"] + 1,
            retry_base=row["attempts"],
        )
        for row in rows
    ]
    task = asyncio.create_task(_queue(request, str(webhook_id), jobs))
    request.app.state.background.add(task)
    task.add_done_callback(request.app.state.background.discard)
    return {"count": len(jobs)}


async def _queue(request: Request, webhook_id: str, jobs: list[DeliveryJob]) -> None:
    topic = request.app.state.settings.topics.deliveries(webhook_id)
    kafka = request.app.state.kafka
    try:
        sent = [await kafka.send(topic, job.dumps(), key=webhook_id.encode()) for job in jobs]
        await asyncio.gather(*sent)
        log.info("failed deliveries queued again", webhook_id=webhook_id, count=len(jobs))
    except Exception as exc:
        log.error("queueing failed deliveries again failed", webhook_id=webhook_id, error=str(exc))
