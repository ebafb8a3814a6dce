"""Keyset paging: the `sort`, `limit`, `next` and `prev` parameters of every list, opaque
cursors, and the `links` of list responses.

A cursor holds the sort and the (value, id) of the row it continues from, never an offset, so
rows inserted or deleted while a client pages neither repeat nor go missing. A client can edit
a cursor: its value is checked to be of its column's kind before it reaches a query, so a
tampered cursor is a 400, never a database error.
"""

import base64
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, Query, Request

from hookstream_api.errors import invalid
from hookstream_api.schemas import MAX_CURSOR, MAX_SORT_QUERY

SortKind = type[str] | type[datetime] | type[bool] | type[list[str]]
"""What a sort column holds: text unless a Sortable says otherwise."""


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
    def decode(cls, text: str, param: str, sort: Sort, kind: SortKind = str) -> "Cursor":
        """Read a cursor this API issued for the same sort, its value of the sort column's
        `kind`; anything else is a 400."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            sort_key, value, row_id, backwards = orjson.loads(raw)
            cursor = cls(sort_key, _value_of(kind, value), uuid.UUID(row_id), bool(backwards))
        except (ValueError, TypeError):
            raise invalid(f"{param}: is not a cursor this API issued") from None
        if sort_key != _sort_key(sort):
            raise invalid(f"{param}: was issued for another sort order; start again without it")
        return cursor


def _value_of(kind: SortKind, value: Any) -> Any:
    """A cursor's value as its column holds it; ValueError for any other value."""
    if kind is datetime:
        if not isinstance(value, str):
            raise ValueError("not a timestamp")
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("a timestamp without a time zone")
        return moment
    if kind is list:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError("not a list of text")
        return [_text(item) for item in value]
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError("not a boolean")
        return value
    if not isinstance(value, str):
        raise ValueError("not text")
    return _text(value)


def _text(value: str) -> str:
    """Text Postgres can compare: no NUL, which it refuses in every text value."""
    if "\x00" in value:
        raise ValueError("text with a NUL")
    return value


def requested_cursor(
    next: str | None, prev: str | None, sort: Sort, kind: SortKind = str
) -> Cursor | None:
    """The cursor of a list request's `next` or `prev` parameter; both at once is a 400."""
    if next and prev:
        raise invalid("next, prev: send one of them, not both")
    if next:
        return Cursor.decode(next, "next", sort, kind)
    if prev:
        return Cursor.decode(prev, "prev", sort, kind)
    return None


@dataclass(frozen=True)
class Sortable:
    """What one list sorts by: its fields (API name to column), its default, and the kind of
    each field's values that is not text (timestamps, booleans, lists of text)."""

    columns: dict[str, str]
    default: str
    kinds: dict[str, SortKind] = field(default_factory=dict)

    def kind(self, name: str) -> SortKind:
        """What a cursor for this sort field holds."""
        return self.kinds.get(name, str)

    def parse(self, value: str | None) -> Sort:
        """Read `sort=[+|-]field`; an unknown field is a 400 that lists the known ones."""
        text = (value or self.default).strip()
        name = text.lstrip("+-")
        if name not in self.columns:
            raise invalid(
                f"sort: must be one of {', '.join(self.columns)}, optionally prefixed by + or -"
            )
        return Sort(name, self.columns[name], text.startswith("-"))


@dataclass(frozen=True)
class PageRequest:
    """A list request's sort, the cursor it continues from, and its page size."""

    sort: Sort
    cursor: Cursor | None
    limit: int


def page_request(sortable: Sortable) -> Any:
    """The dependency that declares `sort`, `limit`, `next` and `prev` for a list that sorts by
    `sortable`, and reads them into a PageRequest."""
    described = f"One of {', '.join(sortable.columns)}; prefix - for descending."

    async def read(
        sort: Annotated[
            str | None,
            Query(
                description=f"{described} Default {sortable.default}.",
                max_length=MAX_SORT_QUERY,
            ),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        next: Annotated[
            str | None, Query(max_length=MAX_CURSOR, description="Cursor from `links.next.href`.")
        ] = None,
        prev: Annotated[
            str | None, Query(max_length=MAX_CURSOR, description="Cursor from `links.prev.href`.")
        ] = None,
    ) -> PageRequest:
        order = sortable.parse(sort)
        cursor = requested_cursor(next, prev, order, sortable.kind(order.field))
        return PageRequest(order, cursor, limit)

    return Annotated[PageRequest, Depends(read)]


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
