"""Keyset paging: sort parameters, opaque cursors, and the `links` of list responses.

A cursor holds the sort and the (value, id) of the row it continues from, never an offset, so
rows inserted or deleted while a client pages neither repeat nor go missing.
"""

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import Query, Request

from hookstream_api.errors import ApiError
from hookstream_api.schemas import MAX_CURSOR

NextCursor = Annotated[
    str | None, Query(max_length=MAX_CURSOR, description="Cursor from `links.next.href`.")
]
PrevCursor = Annotated[
    str | None, Query(max_length=MAX_CURSOR, description="Cursor from `links.prev.href`.")
]
"""The `next` and `prev` query parameters of every paged list."""


@dataclass(frozen=True)
class Sort:
    """`sort=[+|-]field`, resolved to a column."""

    field: str
    column: str
    descending: bool

    @property
    def field_key(self) -> str:
        """The column's name in a result row (`d.status` is `status`)."""
        return self.column.rpartition(".")[2]

    @classmethod
    def parse(cls, value: str | None, columns: dict[str, str], default: str) -> "Sort":
        """Read the `sort` parameter; an unknown field is a 400 that lists the known ones."""
        text = (value or default).strip()
        descending = text.startswith("-")
        name = text.lstrip("+-")
        if name not in columns:
            raise ApiError(
                400,
                "HOOKSTREAM-400",
                f"sort: must be one of {', '.join(columns)}, optionally prefixed by + or -",
                "Invalid input",
            )
        return cls(name, columns[name], descending)


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after (`next`) or before (`prev`) the row with this key."""

    sort: str
    value: Any
    row_id: uuid.UUID
    backwards: bool

    def encode(self) -> str:
        """Opaque to clients."""
        value = self.value.isoformat() if isinstance(self.value, datetime) else self.value
        raw = orjson.dumps([self.sort, value, str(self.row_id), self.backwards])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, param: str, sort: Sort, timestamp: bool) -> "Cursor":
        """Read a cursor this API issued for the same sort; anything else is a 400."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            sort_key, value, row_id, backwards = orjson.loads(raw)
            if timestamp:
                value = datetime.fromisoformat(value)
            cursor = cls(sort_key, value, uuid.UUID(row_id), bool(backwards))
        except (ValueError, TypeError):
            raise ApiError(
                400, "HOOKSTREAM-400", f"{param}: is not a cursor this API issued", "Invalid input"
            ) from None
        if sort_key != _sort_key(sort):
            raise ApiError(
                400,
                "HOOKSTREAM-400",
                f"{param}: was issued for another sort order; start again without it",
                "Invalid input",
            )
        return cursor


def requested_cursor(
    next: str | None, prev: str | None, sort: Sort, timestamp: bool
) -> Cursor | None:
    """The cursor of a list request's `next` or `prev` parameter; both at once is a 400."""
    if next and prev:
        raise ApiError(
            400, "HOOKSTREAM-400", "next, prev: send one of them, not both", "Invalid input"
        )
    if next:
        return Cursor.decode(next, "next", sort, timestamp)
    if prev:
        return Cursor.decode(prev, "prev", sort, timestamp)
    return None


def _sort_key(sort: Sort) -> str:
    return f"{'-' if sort.descending else '+'}{sort.field}"


@dataclass(frozen=True)
class PageQuery:
    """The ORDER BY and keyset condition of one page."""

    order_by: str
    condition: str
    params: list[Any]
    backwards: bool


def page_query(sort: Sort, cursor: Cursor | None, first_param: int) -> PageQuery:
    """SQL for the page after or before the cursor, in the sort order (reversed for `prev`)."""
    backwards = cursor is not None and cursor.backwards
    descending = sort.descending != backwards
    direction = "DESC" if descending else "ASC"
    order_by = f"{sort.column} {direction}, id {direction}"
    if cursor is None:
        return PageQuery(order_by, "TRUE", [], False)
    operator = "<" if descending else ">"
    condition = f"({sort.column}, id) {operator} (${first_param}, ${first_param + 1})"
    return PageQuery(order_by, condition, [cursor.value, cursor.row_id], backwards)


def links(
    request: Request,
    rows: list[Any],
    sort: Sort,
    cursor: Cursor | None,
    has_more: bool,
) -> dict[str, Any]:
    """`self`, and `next`/`prev` as `{href}` when there is a page that way."""
    key = _sort_key(sort)
    base = request.url.remove_query_params(["next", "prev"])
    result: dict[str, Any] = {"self": {"href": str(request.url)}}
    backwards = cursor is not None and cursor.backwards
    more_after = has_more if not backwards else cursor is not None
    more_before = has_more if backwards else cursor is not None
    if rows and more_after:
        last = rows[-1]
        href = base.include_query_params(
            next=Cursor(key, last[sort.field_key], last["id"], False).encode()
        )
        result["next"] = {"href": str(href)}
    if rows and more_before:
        first = rows[0]
        href = base.include_query_params(
            prev=Cursor(key, first[sort.field_key], first["id"], True).encode()
        )
        result["prev"] = {"href": str(href)}
    return result
