"""Opaque paging cursors and the `links` object of list responses."""

import base64
import uuid
from datetime import datetime
from typing import Any

import orjson
from fastapi import Request

from hookstream_api.errors import ApiError


def encode_cursor(key: tuple[datetime, uuid.UUID]) -> str:
    """Opaque to clients: the keyset position after which the next page starts."""
    raw = orjson.dumps([key[0].isoformat(), str(key[1])])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """The position encoded by `encode_cursor`; a tampered cursor is a 400."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        when, ident = orjson.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(when), uuid.UUID(ident)
    except (ValueError, TypeError):
        raise ApiError(400, "HOOKSTREAM-400", "next: is not a cursor this API issued") from None


def links(request: Request, next_key: tuple[datetime, uuid.UUID] | None) -> dict[str, Any]:
    """`self`, and `next` when there is a next page, as `{href}` objects."""
    result: dict[str, Any] = {"self": {"href": str(request.url)}}
    if next_key is not None:
        result["next"] = {
            "href": str(request.url.include_query_params(next=encode_cursor(next_key)))
        }
    return result
