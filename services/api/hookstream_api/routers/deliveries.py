"""`/webhooks/{id}/deliveries`: the delivery history of a webhook."""

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query, Request

from hookstream_api.auth import CurrentPrincipal
from hookstream_api.dependencies import Deliveries, Webhooks
from hookstream_api.errors import not_found
from hookstream_api.paging import decode_cursor, links
from hookstream_api.routers.webhooks import parse_id
from hookstream_api.schemas import Delivery, DeliveryList

router = APIRouter(prefix="/webhooks/{webhook_id}/deliveries", tags=["deliveries"])


def delivery_json(row: asyncpg.Record) -> dict[str, Any]:
    """The API representation of a delivery row."""
    return Delivery(
        id=str(row["id"]),
        webhookId=str(row["webhook_id"]),
        eventType=row["event_type"],
        status=row["status"],
        statusMessage=row["status_message"],
        triggeredAt=row["triggered_at"],
        request=row["request"],
        response=row["response"],
    ).model_dump(by_alias=True, mode="json")


@router.get("", response_model=DeliveryList, response_model_exclude_none=True)
async def list_deliveries(
    webhook_id: str,
    request: Request,
    principal: CurrentPrincipal,
    webhooks: Webhooks,
    deliveries: Deliveries,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    next: Annotated[str | None, Query(description="Cursor from `links.next`.")] = None,
) -> dict[str, Any]:
    """The webhook's deliveries, newest first."""
    wid = parse_id(webhook_id)
    if await webhooks.get(principal, wid) is None:
        raise not_found()
    page = await deliveries.list(principal.tenant_id, wid, limit, decode_cursor(next))
    return {"data": [delivery_json(r) for r in page.rows], "links": links(request, page.next_key)}


@router.get("/{delivery_id}", response_model=Delivery, response_model_exclude_none=True)
async def get_delivery(
    webhook_id: str,
    delivery_id: str,
    principal: CurrentPrincipal,
    webhooks: Webhooks,
    deliveries: Deliveries,
) -> dict[str, Any]:
    """One delivery, with the request sent and the response received."""
    wid = parse_id(webhook_id)
    if await webhooks.get(principal, wid) is None:
        raise not_found()
    row = await deliveries.get(principal.tenant_id, wid, parse_id(delivery_id, "delivery"))
    if row is None:
        raise not_found("delivery")
    return delivery_json(row)
