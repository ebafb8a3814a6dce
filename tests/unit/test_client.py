"""hookstream_client against docs/openapi.json, and against canned answers (httpx.MockTransport)."""

import inspect
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from hookstream_client import (
    ApiError,
    AsyncClient,
    AuditEvent,
    Client,
    Delivery,
    EventType,
    Recovery,
    Webhook,
    WebhookInput,
)
from hookstream_client.operations import OPERATIONS
from support import repo_root

API = "http://api.test"
OPENAPI = json.loads((repo_root() / "docs" / "openapi.json").read_text())
PREFIXES = ("/api/v1", "/api/core")


def _operations() -> set[tuple[str, str]]:
    found = set()
    for path, item in OPENAPI["paths"].items():
        for method in item:
            for prefix in PREFIXES:
                path = path.removeprefix(prefix)
            found.add((method.upper(), path))
    return found


def test_every_operation_of_the_openapi_document_has_a_client_method() -> None:
    covered = set(OPERATIONS.values())
    assert _operations() - covered == set()
    assert covered - _operations() == set(), "a client method for an operation the API lacks"
    for name in OPERATIONS:
        assert callable(getattr(Client, name, None)), f"Client.{name}"
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name, None)), f"AsyncClient.{name}"


@pytest.mark.parametrize(
    ("model", "schema"),
    [
        (Webhook, "Webhook"),
        (Delivery, "Delivery"),
        (Recovery, "Recovery"),
        (EventType, "EventTypeInfo"),
        (AuditEvent, "AuditEvent"),
    ],
)
def test_models_have_the_fields_of_the_openapi_schemas(model: type[BaseModel], schema: str) -> None:
    wire_names = {field.alias or name for name, field in model.model_fields.items()}
    assert wire_names == set(OPENAPI["components"]["schemas"][schema]["properties"])


def test_writable_fields_are_those_of_create() -> None:
    wire_names = {field.alias or name for name, field in WebhookInput.model_fields.items()}
    assert wire_names == set(OPENAPI["components"]["schemas"]["WebhookCreate"]["properties"])


def webhook_json(number: int) -> dict[str, Any]:
    return {
        "id": f"hook-{number}",
        "name": f"hook {number}",
        "description": "",
        "url": "https://hooks.example.com/q",
        "eventTypes": ["com.qlik.v1.app.created"],
        "level": "user",
        "ownerId": "u1",
        "filter": None,
        "enabled": True,
        "headers": {},
        "encryptedHeaders": [],
        "secretKeyAdded": False,
        "enableCloudEventDelivery": False,
        "checkCertificateRevocation": False,
        "origin": "api",
        "createdAt": "2026-11-28T08:00:00Z",
        "updatedAt": "2026-11-28T08:00:00Z",
        "createdByUserId": "u1",
        "updatedByUserId": "u1",
        "disabledReason": None,
        "disabledReasonCode": None,
    }


Handler = Callable[[httpx.Request], httpx.Response]


def three_pages(seen: list[httpx.Request]) -> Handler:
    """Pages of two, linked by cursors the client must pass back untouched."""
    pages = {None: ([1, 2], "c1"), "c1": ([3, 4], "c2"), "c2": ([5], None)}

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        numbers, after = pages[request.url.params.get("next")]
        links: dict[str, Any] = {"self": {"href": str(request.url)}}
        if after:
            links["next"] = {"href": f"{API}/api/v1/webhooks?limit=2&enabled=true&next={after}"}
        return httpx.Response(
            200, json={"data": [webhook_json(n) for n in numbers], "links": links}
        )

    return answer


def test_the_iterator_follows_the_next_links_to_the_end() -> None:
    seen: list[httpx.Request] = []
    with Client(API, "tok", transport=httpx.MockTransport(three_pages(seen))) as client:
        hooks = list(client.iter_webhooks(limit=2, enabled=True))
    assert [h.id for h in hooks] == [f"hook-{n}" for n in range(1, 6)]
    assert [r.url.params.get("next") for r in seen] == [None, "c1", "c2"]
    assert all(r.headers["Authorization"] == "Bearer tok" for r in seen)
    assert seen[0].url.path == "/api/v1/webhooks"
    assert dict(seen[0].url.params) == {"limit": "2", "enabled": "true"}


async def test_the_async_iterator_follows_the_next_links_to_the_end() -> None:
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(three_pages(seen))
    async with AsyncClient(API, "tok", prefix="/api/core", transport=transport) as client:
        hooks = [h async for h in client.iter_webhooks(limit=2)]
    assert [h.id for h in hooks] == [f"hook-{n}" for n in range(1, 6)]
    assert seen[0].url.path == "/api/core/webhooks" and len(seen) == 3
    assert seen[1].url.path == "/api/v1/webhooks", "a link is followed as the API gave it"


def test_filters_are_sent_by_the_apis_names_and_forms() -> None:
    seen: list[httpx.Request] = []
    with Client(API, "tok", transport=httpx.MockTransport(three_pages(seen))) as client:
        client.list_webhooks(
            owner_id="u1", event_types=["a.b", "c.d"], enabled=False, sort="-name", name=None
        )
    assert dict(seen[0].url.params) == {
        "ownerId": "u1",
        "eventTypes": "a.b,c.d",
        "enabled": "false",
        "sort": "-name",
    }


def test_only_the_fields_set_are_sent() -> None:
    seen: list[httpx.Request] = []

    def created(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=webhook_json(1))

    body = WebhookInput(name="n", url="https://h.example.com/", event_types=["x"], secret="s" * 32)
    with Client(API, "tok", transport=httpx.MockTransport(created)) as client:
        webhook = client.create_webhook(body)
    assert json.loads(seen[0].content) == {
        "name": "n",
        "url": "https://h.example.com/",
        "eventTypes": ["x"],
        "secret": "s" * 32,
    }
    assert webhook.owner_id == "u1" and webhook.created_at.year == 2026


def test_an_error_carries_the_apis_code_and_detail() -> None:
    envelope = {
        "errors": [{"code": "HOOKSTREAM-400", "title": "Invalid input", "detail": "url: https"}],
        "traceId": "t1",
    }

    def refuse(_: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json=envelope)

    client = Client(API, "tok", transport=httpx.MockTransport(refuse))
    with client, pytest.raises(ApiError) as raised:
        client.create_webhook({"name": "n"})
    error = raised.value
    assert (error.status, error.code, error.title, error.detail) == (
        400,
        "HOOKSTREAM-400",
        "Invalid input",
        "url: https",
    )
    assert error.trace_id == "t1" and error.errors == envelope["errors"]
    assert str(error) == "400 HOOKSTREAM-400: url: https"


async def test_an_answer_that_is_no_envelope_is_still_an_api_error() -> None:
    def busy(_: httpx.Request) -> httpx.Response:
        return httpx.Response(429, text="slow down", headers={"Retry-After": "3"})

    async with AsyncClient(API, "tok", transport=httpx.MockTransport(busy)) as client:
        with pytest.raises(ApiError) as raised:
            await client.delete_webhook("hook-1")
    error = raised.value
    assert (error.status, error.code, error.detail, error.retry_after) == (
        429,
        "HTTP-429",
        "slow down",
        3,
    )


def test_enable_and_disable_are_json_patches_of_enabled() -> None:
    seen: list[httpx.Request] = []

    def patched(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    with Client(API, "tok", transport=httpx.MockTransport(patched)) as client:
        assert client.disable_webhook("hook-1") is None
        client.enable_webhook("hook-1")
    assert [(r.method, r.url.path) for r in seen] == [("PATCH", "/api/v1/webhooks/hook-1")] * 2
    assert [json.loads(r.content) for r in seen] == [
        [{"op": "replace", "path": "/enabled", "value": False}],
        [{"op": "replace", "path": "/enabled", "value": True}],
    ]
