"""A cursor a client edited is a 400, never a 500 (issue 18 item 8: a number where the sort
column holds text reached asyncpg, and its DataError was answered 500)."""

import base64
import uuid
from collections.abc import Callable

import httpx
import orjson
import pytest

from hookstream_dev.stack import ServiceSet
from support import bearer, new_tenant


def forged(sort: str, value: object) -> str:
    raw = orjson.dumps([sort, value, str(uuid.uuid4()), False])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("sort", "value"),
    [
        ("+name", 42),
        ("+name", {"a": 1}),
        ("+name", "nul\x00"),
        ("-createdAt", "2026-01-01"),
        ("+enabled", "yes"),
        ("+eventTypes", [1, 2]),
    ],
)
async def test_a_forged_webhook_cursor_is_a_400(
    stack: ServiceSet, token: Callable[..., str], sort: str, value: object
) -> None:
    auth = bearer(token(new_tenant(), "u1"))
    async with httpx.AsyncClient(base_url=stack.url("api"), headers=auth) as api:
        response = await api.get(
            "/api/v1/webhooks", params={"sort": sort, "next": forged(sort, value)}
        )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["detail"] == "next: is not a cursor this API issued"
