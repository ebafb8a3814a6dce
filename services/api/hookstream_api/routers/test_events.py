"""`/webhooks/{id}/actions/test`: send a test event now (beyond Qlik).

Like GitHub's ping or Svix's "send example": a signed sample of one of the webhook's event types,
marked as a test in its data, sent at once with the webhook's current URL, headers and secret,
and stored in the history like a resend.
"""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body

from hookstream_api.auth import CurrentPrincipal
from hookstream_api.dependencies import (
    Box,
    Deliveries,
    Pool,
    SendsNow,
    VisibleWebhookId,
    Webhooks,
)
from hookstream_api.errors import ERROR_RESPONSES, invalid, not_found
from hookstream_api.routers import SEND_NOW
from hookstream_api.routers.deliveries import delivery_json
from hookstream_api.schemas import TestEventRequest
from hookstream_common.jobs import DeliveryJob
from hookstream_common.webhook_store import load_target

router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)


@router.post("/{id}/actions/test", **SEND_NOW)
async def send_test_event(
    webhook_id: VisibleWebhookId,
    principal: CurrentPrincipal,
    webhooks: Webhooks,
    deliveries: Deliveries,
    send: SendsNow,
    pool: Pool,
    box: Box,
    body: Annotated[TestEventRequest | None, Body()] = None,
) -> dict[str, Any]:
    """Hookstream extension, not in the Qlik API: send a test event to the webhook now.

    A sample of one of the webhook's event types (`eventType`, default its first), with
    `data.test` set to `true` and a new event id, signed with the webhook's current secret and
    sent with its current URL and headers, also when the webhook is disabled. It is recorded in
    the history like a resend, and may have status `fail`: the answer is 201 either way. Rate
    limited like resend.
    """
    webhook = await webhooks.get(principal, webhook_id)
    target = await load_target(pool, box, str(webhook_id))
    if webhook is None or target is None:
        raise not_found()
    event_types: list[str] = webhook["event_types"]
    event_type = body.event_type if body and body.event_type else event_types[0]
    if event_type not in event_types:
        raise invalid("eventType: is not one of the webhook's event types")
    job = DeliveryJob.for_test(
        str(webhook_id), principal.tenant_id, event_type, webhook["owner_id"], datetime.now(UTC)
    )
    await send(job, target, action="test", details={"eventType": event_type})
    row = await deliveries.get(principal.tenant_id, webhook_id, uuid.UUID(job.delivery_id))
    return delivery_json(row)
