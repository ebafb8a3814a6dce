"""`/webhooks/audit` and `/webhooks/{id}/audit`: the audit trail (a Hookstream extension).

Who created, changed, enabled, disabled, deleted a webhook, rotated its secret, or resent,
recovered or tested its deliveries; when, and from which address (hookstream_common.audit).
Visible as the webhooks are. Include this router before the webhooks router: `/webhooks/audit`
would otherwise be taken for the webhook with id `audit`.
"""

import uuid
from typing import Any

import asyncpg
from fastapi import APIRouter, Request

from hookstream_api.auth import CurrentPrincipal
from hookstream_api.dependencies import (
    AuditFilters,
    AuditPage,
    AuditTrail,
    TenantAuditFilters,
    parse_id,
)
from hookstream_api.errors import ERROR_RESPONSES, ApiError, not_found
from hookstream_api.paging import links
from hookstream_api.schemas import AuditEvent, AuditEventList

router = APIRouter(prefix="/webhooks", tags=["audit"], responses=ERROR_RESPONSES)


def audit_json(row: asyncpg.Record) -> dict[str, Any]:
    """The API representation of an audit row."""
    return AuditEvent(
        id=str(row["id"]),
        webhookId=str(row["webhook_id"]),
        action=row["action"],
        actor=row["actor"],
        sourceAddress=row["source_address"],
        changedFields=list(row["changed"]),
        details=row["details"],
        traceId=row["trace_id"],
        createdAt=row["created_at"],
    ).model_dump(by_alias=True, mode="json")


@router.get("/audit", response_model=AuditEventList, response_model_exclude_unset=True)
async def list_tenant_audit(
    request: Request,
    principal: CurrentPrincipal,
    trail: AuditTrail,
    filters: TenantAuditFilters,
    paging: AuditPage,
) -> dict[str, Any]:
    """Hookstream extension, not in the Qlik API: the audit trail of every webhook the caller
    may see (a TenantAdmin: the tenant's; anyone else: their own), deleted ones included,
    filtered and paged; newest first by default."""
    page = await trail.list(principal, filters, paging, filters.webhook_uuid)
    return {
        "data": [audit_json(row) for row in page.rows],
        "links": links(request, page.rows, paging.sort, paging.cursor, page.has_more),
    }


@router.api_route("/audit", methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def audit_read_only() -> None:
    """`audit` is no webhook id: without this, the `/{id}` routes would answer 404."""
    raise ApiError(405, "HOOKSTREAM-405", "The audit trail is read-only.", headers={"Allow": "GET"})


@router.get("/{id}/audit", response_model=AuditEventList, response_model_exclude_unset=True)
async def list_webhook_audit(
    id: str,
    request: Request,
    principal: CurrentPrincipal,
    trail: AuditTrail,
    filters: AuditFilters,
    paging: AuditPage,
) -> dict[str, Any]:
    """Hookstream extension, not in the Qlik API: one webhook's audit trail, filtered and
    paged; newest first by default. It outlives the webhook: a deleted webhook's trail stays
    readable, by whoever could see it, until the retention."""
    webhook_id: uuid.UUID = parse_id(id)
    if not await trail.has_subject(principal, webhook_id):
        raise not_found()
    page = await trail.list(principal, filters, paging, webhook_id)
    return {
        "data": [audit_json(row) for row in page.rows],
        "links": links(request, page.rows, paging.sort, paging.cursor, page.has_more),
    }
