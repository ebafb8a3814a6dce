"""`/webhooks`: create, list, get and delete webhooks; the event type catalogue."""

import uuid
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query, Request, Response
from hookstream_common.catalogue import DEFAULT_EVENT_TYPES, event_type_names

from hookstream_api.auth import CurrentPrincipal, Principal
from hookstream_api.dependencies import Webhooks
from hookstream_api.errors import ApiError, not_found
from hookstream_api.paging import decode_cursor, links
from hookstream_api.schemas import EventTypeList, Webhook, WebhookCreate, WebhookList
from hookstream_api.settings import get_settings
from hookstream_api.validation import InvalidInput, check_event_types, check_headers, check_url

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def webhook_json(row: asyncpg.Record) -> dict[str, Any]:
    """The API representation of a webhook row."""
    return Webhook(
        id=str(row["id"]),
        name=row["name"],
        description=row["description"],
        url=row["url"],
        eventTypes=list(row["event_types"]),
        level=row["level"],
        ownerId=row["owner_id"],
        filter=row["filter"],
        enabled=row["enabled"],
        headers=row["headers"],
        encryptedHeaders=list(row["encrypted_header_names"]),
        secretKeyAdded=row["secret_key_added"],
        enableCloudEventDelivery=row["enable_cloud_event_delivery"],
        checkCertificateRevocation=row["check_certificate_revocation"],
        origin=row["origin"],
        createdAt=row["created_at"],
        updatedAt=row["updated_at"],
        createdByUserId=row["created_by_user_id"],
        updatedByUserId=row["updated_by_user_id"],
        disabledReason=row["disabled_reason"],
        disabledReasonCode=row["disabled_reason_code"],
    ).model_dump(by_alias=True, mode="json")


def parse_id(value: str, what: str = "webhook") -> uuid.UUID:
    """Ids are UUIDs; anything else cannot exist, so it is a 404 like any unknown id."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise not_found(what) from None


def _checked_fields(body: WebhookCreate, principal: Principal) -> dict[str, Any]:
    """Apply the rules JSON schema cannot express; fill the defaults that depend on the caller."""
    try:
        check_url(body.url)
        check_event_types(body.event_types, event_type_names())
        check_headers("headers", body.headers)
        check_headers("encryptedHeaders", body.encrypted_headers)
    except InvalidInput as exc:
        raise ApiError(400, "HOOKSTREAM-400", str(exc), "Invalid input") from None
    level = body.level or ("tenant" if principal.is_tenant_admin else "user")
    if level == "tenant" and not principal.is_tenant_admin:
        raise ApiError(403, "HOOKSTREAM-403", "level=tenant webhooks need the TenantAdmin role.")
    owner_id = body.owner_id or principal.user_id
    if owner_id != principal.user_id and not principal.is_tenant_admin:
        raise ApiError(403, "HOOKSTREAM-403", "Only a TenantAdmin may set another ownerId.")
    fields = body.model_dump()
    fields.update(level=level, owner_id=owner_id)
    return fields


@router.get("", response_model=WebhookList, response_model_exclude_none=True)
async def list_webhooks(
    request: Request,
    principal: CurrentPrincipal,
    repo: Webhooks,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    next: Annotated[str | None, Query(description="Cursor from `links.next`.")] = None,
) -> dict[str, Any]:
    """The webhooks the caller may see, newest first."""
    page = await repo.list(principal, limit, decode_cursor(next))
    return {"data": [webhook_json(r) for r in page.rows], "links": links(request, page.next_key)}


@router.post("", status_code=201, response_model=Webhook)
async def create_webhook(
    body: WebhookCreate, principal: CurrentPrincipal, repo: Webhooks
) -> dict[str, Any]:
    """Register a webhook; it receives events published from now on."""
    fields = _checked_fields(body, principal)
    limit = get_settings().max_webhooks_per_tenant
    if await repo.count(principal.tenant_id) >= limit:
        raise ApiError(
            403,
            "HOOKSTREAM-LIMIT",
            f"The tenant already has {limit} webhooks, the most allowed; delete one first.",
            "Limit reached",
        )
    return webhook_json(await repo.create(principal, fields))


@router.get("/event-types", response_model=EventTypeList)
async def list_event_types(_: CurrentPrincipal) -> dict[str, Any]:
    """The event types a webhook can subscribe to."""
    return {"data": [t.as_json() for t in DEFAULT_EVENT_TYPES]}


@router.get("/{webhook_id}", response_model=Webhook)
async def get_webhook(
    webhook_id: str, principal: CurrentPrincipal, repo: Webhooks
) -> dict[str, Any]:
    """One webhook."""
    row = await repo.get(principal, parse_id(webhook_id))
    if row is None:
        raise not_found()
    return webhook_json(row)


@router.delete("/{webhook_id}", status_code=204, response_class=Response)
async def delete_webhook(webhook_id: str, principal: CurrentPrincipal, repo: Webhooks) -> Response:
    """Delete a webhook; its history goes with the retention, its topic with the janitor."""
    if not await repo.delete(principal, parse_id(webhook_id)):
        raise not_found()
    return Response(status_code=204)
