"""`/webhooks`: list, create, get, patch, replace and delete webhooks; the event types."""

from typing import Annotated, Any

import asyncpg
import jsonpatch
from fastapi import APIRouter, Body, Request, Response
from pydantic import ValidationError

from hookstream_api.auth import CurrentPrincipal, Principal
from hookstream_api.dependencies import (
    Catalogue,
    Settings,
    WebhookFilters,
    WebhookPage,
    Webhooks,
    parse_id,
)
from hookstream_api.errors import ERROR_RESPONSES, ApiError, invalid, not_found
from hookstream_api.paging import links
from hookstream_api.routers import NO_CONTENT, WRITE
from hookstream_api.schemas import (
    MAX_PATCH_OPERATIONS,
    READ_ONLY_FIELDS,
    EventTypeList,
    PatchOperation,
    Webhook,
    WebhookCreate,
    WebhookInput,
    WebhookList,
    WebhookReplace,
)
from hookstream_api.validation import (
    InvalidInput,
    check_certificate_revocation,
    check_client_certificate,
    check_event_types,
    check_headers,
    check_owner_id,
    check_url,
)
from hookstream_api.webhook_health import WebhookHealth
from hookstream_common.catalogue import EventType, event_type_names
from hookstream_common.filters import FilterError, parse_filter
from hookstream_common.request_rules import PortSet
from hookstream_common.webhook_fields import ONLY_AT_CREATION
from hookstream_common.webhook_model import WebhookFields, api_form

router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)


def shown(row: asyncpg.Record, health: WebhookHealth | None = None) -> Webhook:
    """The API representation of a webhook row, with its health (Hookstream extensions).

    Routes return the model, which FastAPI serialises once; validated instances are not
    validated again.
    """
    return Webhook.model_validate(api_form(row) | (health or WebhookHealth()).as_fields())


def checked_fields(
    body: WebhookInput,
    principal: Principal,
    ports: PortSet,
    event_types: tuple[EventType, ...],
) -> WebhookFields:
    """Apply the rules JSON schema cannot express; fill the defaults that depend on the caller."""
    try:
        check_url(body.url, ports)
        check_certificate_revocation(body.check_certificate_revocation)
        check_client_certificate(body.client_certificate)
        check_event_types(body.event_types, event_type_names(event_types))
        check_headers("headers", body.headers)
        check_headers("encryptedHeaders", body.encrypted_headers)
        clashes = {n.lower() for n in body.headers} & {n.lower() for n in body.encrypted_headers}
        if clashes:
            raise InvalidInput("encryptedHeaders", f"{', '.join(sorted(clashes))} also in headers")
    except InvalidInput as exc:
        raise invalid(str(exc)) from None
    if body.filter is not None:
        try:
            parse_filter(body.filter, body.event_types)
        except FilterError as exc:
            raise invalid(f"filter: {exc}") from None
    level = body.level or ("tenant" if principal.is_tenant_admin else "user")
    if level == "tenant" and not principal.is_tenant_admin:
        raise ApiError(403, "HOOKSTREAM-403", "level=tenant webhooks need the TenantAdmin role.")
    owner_id = body.owner_id or principal.user_id
    if owner_id != principal.user_id and not principal.is_tenant_admin:
        raise ApiError(403, "HOOKSTREAM-403", "Only a TenantAdmin may set another ownerId.")
    try:
        check_owner_id(owner_id)
    except InvalidInput as exc:
        raise invalid(str(exc)) from None
    return WebhookFields(
        body.model_dump(by_alias=True, exclude=set(ONLY_AT_CREATION))
        | {
            "eventTypes": list(dict.fromkeys(body.event_types)),
            "level": level,
            "ownerId": owner_id,
        }
    )


@router.get("", response_model=WebhookList, response_model_exclude_unset=True)
async def list_webhooks(
    request: Request,
    principal: CurrentPrincipal,
    repo: Webhooks,
    filters: WebhookFilters,
    paging: WebhookPage,
) -> dict[str, Any]:
    """The webhooks the caller may see, filtered, sorted and paged."""
    page = await repo.list(principal, filters, paging)
    return {
        "data": [shown(row, page.health[row["id"]]) for row in page.rows],
        "links": links(request, page.rows, paging.sort, paging.cursor, page.has_more),
    }


@router.post("", status_code=201, response_model=Webhook, **WRITE)
async def create_webhook(
    body: WebhookCreate,
    principal: CurrentPrincipal,
    repo: Webhooks,
    settings: Settings,
    known: Catalogue,
) -> Webhook:
    """Register a webhook; it receives events published from now on."""
    fields = checked_fields(body, principal, ports=settings.port_set, event_types=known)
    row = await repo.create(principal, fields, body.origin, settings.max_webhooks_per_tenant)
    return shown(row)


@router.get("/event-types", response_model=EventTypeList)
async def list_event_types(_: CurrentPrincipal, known: Catalogue) -> dict[str, Any]:
    """The event types a webhook can subscribe to.

    Besides Qlik's, the category `webhooks` holds Hookstream's operational events (a Hookstream
    extension): `com.hookstream.v1.webhook.disabled`, `com.hookstream.v1.delivery.exhausted`
    and `com.hookstream.v1.webhook.recovered`, sent about the tenant's other webhooks.
    """
    return {"data": [t.as_json() for t in known]}


@router.api_route(
    "/event-types", methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
async def event_types_read_only() -> None:
    """`event-types` is no webhook id: without this, the `/{id}` routes would answer 404."""
    raise ApiError(
        405, "HOOKSTREAM-405", "The event types are read-only.", headers={"Allow": "GET"}
    )


@router.get("/{id}", response_model=Webhook)
async def get_webhook(id: str, principal: CurrentPrincipal, repo: Webhooks) -> Webhook:
    """One webhook."""
    found = await repo.get_with_health(principal, parse_id(id))
    if found is None:
        raise not_found()
    return shown(*found)


@router.patch("/{id}", **NO_CONTENT, **WRITE)
async def patch_webhook(
    id: str,
    operations: Annotated[
        list[PatchOperation], Body(min_length=1, max_length=MAX_PATCH_OPERATIONS)
    ],
    principal: CurrentPrincipal,
    repo: Webhooks,
    settings: Settings,
    known: Catalogue,
) -> Response:
    """Change some fields with a JSON Patch; the result is validated as a whole."""
    for operation in operations:
        top = operation.path.lstrip("/").split("/", 1)[0]
        if top in READ_ONLY_FIELDS or top in ONLY_AT_CREATION:
            raise ApiError(409, "HOOKSTREAM-409", f"{top} is read-only.", "Conflict")

    def apply(current: dict[str, Any]) -> WebhookFields:
        patched = _patched(current, operations)
        try:
            body = WebhookCreate.model_validate(patched)
        except ValidationError as exc:
            raise invalid(_first_error(exc)) from None
        return checked_fields(body, principal, ports=settings.port_set, event_types=known)

    if await repo.patch(principal, parse_id(id), apply) is None:
        raise not_found()
    return Response(status_code=204)


@router.put("/{id}", response_model=Webhook, **WRITE)
async def replace_webhook(
    id: str,
    body: WebhookReplace,
    principal: CurrentPrincipal,
    repo: Webhooks,
    settings: Settings,
    known: Catalogue,
) -> Webhook:
    """Replace every writable field; omitted ones return to their defaults."""
    fields = checked_fields(body, principal, ports=settings.port_set, event_types=known)
    replaced = await repo.replace(principal, parse_id(id), fields)
    if replaced is None:
        raise not_found()
    return shown(*replaced)


@router.delete("/{id}", **NO_CONTENT, **WRITE)
async def delete_webhook(id: str, principal: CurrentPrincipal, repo: Webhooks) -> Response:
    """Delete a webhook; its history goes with the retention, its topic with the janitor."""
    if not await repo.delete(principal, parse_id(id)):
        raise not_found()
    return Response(status_code=204)


def _patched(current: dict[str, Any], operations: list[PatchOperation]) -> dict[str, Any]:
    """`current` with the operations applied in order; a 400 naming the failing operation.

    The error never carries the library's message: jsonpointer's prints the whole document,
    and `current` holds the decrypted secret and encrypted header values.
    """
    document = current
    for number, operation in enumerate(operations):
        op = _lenient(operation, document)
        try:
            document = jsonpatch.apply_patch(document, [op])
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException):
            raise invalid(
                f"patch[{number}]: cannot {op['op']} {operation.path}: the path does not exist"
                " or is not a valid JSON Pointer into the webhook"
            ) from None
    return document


def _lenient(operation: PatchOperation, current: dict[str, Any]) -> dict[str, Any]:
    """As Qlik's clients expect, `replace` of an unset top-level field (say /secret) sets it."""
    op = operation.model_dump(exclude={"value"} if operation.op == "remove" else set())
    top = operation.path.lstrip("/")
    if operation.op == "replace" and "/" not in top and top not in current:
        op["op"] = "add"
    return op


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"])
    return f"{location}: {error['msg']}" if location else error["msg"]
