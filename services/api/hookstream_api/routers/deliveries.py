"""`/webhooks/{id}/deliveries`: the delivery history of a webhook, and resending."""

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from fastapi import APIRouter, Request

from hookstream_api.auth import CurrentPrincipal
from hookstream_api.dependencies import (
    Box,
    Deliveries,
    DeliveryFilters,
    DeliveryId,
    DeliveryPage,
    Pool,
    SendsNow,
    VisibleWebhookId,
)
from hookstream_api.errors import ERROR_RESPONSES, invalid, not_found
from hookstream_api.paging import links
from hookstream_api.routers import SEND_NOW
from hookstream_api.schemas import (
    Delivery,
    DeliveryList,
)
from hookstream_common.events import Event, InvalidEvent
from hookstream_common.history import delivery_body
from hookstream_common.jobs import DeliveryJob
from hookstream_common.webhook_store import load_target

router = APIRouter(
    prefix="/webhooks/{id}/deliveries", tags=["deliveries"], responses=ERROR_RESPONSES
)


def delivery_json(row: asyncpg.Record) -> dict[str, Any]:
    """The API representation of a delivery row."""
    return Delivery(
        id=str(row["id"]),
        webhookId=str(row["webhook_id"]),
        eventType=row["event_type"],
        status=row["status"],
        statusMessage=row["status_message"],
        triggeredAt=row["triggered_at"],
        request={**row["request"], "body": delivery_body(row["body"], row["cloud_event"])},
        response=row["response"],
        traceId=row["trace_id"],
    ).model_dump(by_alias=True, mode="json")


@router.get("", response_model=DeliveryList, response_model_exclude_none=True)
async def list_deliveries(
    webhook_id: VisibleWebhookId,
    request: Request,
    principal: CurrentPrincipal,
    deliveries: Deliveries,
    filters: DeliveryFilters,
    paging: DeliveryPage,
) -> dict[str, Any]:
    """The webhook's deliveries, filtered, sorted and paged; newest first by default."""
    page = await deliveries.list(principal.tenant_id, webhook_id, filters, paging)
    return {
        "data": [delivery_json(r) for r in page.rows],
        "links": links(request, page.rows, paging.sort, paging.cursor, page.has_more),
    }


@router.get("/{deliveryId}", response_model=Delivery, response_model_exclude_none=True)
async def get_delivery(
    webhook_id: VisibleWebhookId,
    delivery_id: DeliveryId,
    principal: CurrentPrincipal,
    deliveries: Deliveries,
) -> dict[str, Any]:
    """One delivery, with the request sent and the response received."""
    row = await deliveries.get(principal.tenant_id, webhook_id, delivery_id)
    if row is None:
        raise not_found("delivery")
    return delivery_json(row)


@router.post("/{deliveryId}/actions/resend", **SEND_NOW)
async def resend_delivery(
    webhook_id: VisibleWebhookId,
    delivery_id: DeliveryId,
    principal: CurrentPrincipal,
    deliveries: Deliveries,
    send: SendsNow,
    pool: Pool,
    box: Box,
) -> dict[str, Any]:
    """Send the event again now, with the webhook's current URL, headers and secret.

    Recorded as a new delivery, which may have status `fail`: the answer is 201 either way. It
    is stored like every other attempt, so it counts towards the webhook's health too.
    """
    original = await deliveries.get(principal.tenant_id, webhook_id, delivery_id)
    if original is None:
        raise not_found("delivery")
    target = await load_target(pool, box, str(webhook_id))
    if target is None:
        raise not_found()
    if original["body"] is None:
        raise invalid("deliveryId: the event of this delivery is no longer stored")
    try:
        event = Event.from_legacy(original["body"])
    except InvalidEvent as exc:
        raise invalid(f"deliveryId: the stored event cannot be sent again ({exc})") from None
    job = DeliveryJob.for_resend(str(webhook_id), principal.tenant_id, event, datetime.now(UTC))
    await send(job, target, action="resend", details={"resentDeliveryId": str(delivery_id)})
    row = await deliveries.get(principal.tenant_id, webhook_id, uuid.UUID(job.delivery_id))
    return delivery_json(row)
