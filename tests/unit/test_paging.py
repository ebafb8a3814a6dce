"""Keyset paging: sorts, cursors, the SQL of a page and its links (hookstream_api.paging)."""

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.requests import Request

from hookstream_api.errors import ApiError
from hookstream_api.paging import (
    Cursor,
    Sort,
    Sortable,
    SortKind,
    links,
    page_query,
    requested_cursor,
)

SORTS = Sortable({"name": "name", "createdAt": "created_at", "status": "d.status"}, "-createdAt")
ROW_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
WHEN = datetime(2026, 11, 28, 8, 30, 15, 123456, tzinfo=UTC)


def request(query: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "server": ("api.test", 80),
            "path": "/api/v1/webhooks",
            "query_string": query.encode(),
            "headers": [(b"host", b"api.test")],
        }
    )


def test_sort_reads_direction_and_column() -> None:
    assert SORTS.parse("-name") == Sort("name", "name", True)
    assert SORTS.parse("+name") == Sort("name", "name", False)
    assert SORTS.parse(None) == Sort("createdAt", "created_at", True)
    assert SORTS.parse("status").field_key == "status"


def test_an_unknown_sort_is_a_400_that_lists_the_fields() -> None:
    with pytest.raises(ApiError) as raised:
        SORTS.parse("-colour")
    assert raised.value.status == 400
    assert raised.value.detail.startswith("sort: must be one of name, createdAt, status")


@pytest.mark.parametrize(
    ("value", "kind"),
    [("hook-7", str), (True, bool), (["a", "b"], list), (WHEN, datetime)],
)
def test_a_cursor_comes_back_as_it_was_issued(value: Any, kind: SortKind) -> None:
    sort = Sort("createdAt", "created_at", True)
    cursor = Cursor("-createdAt", value, ROW_ID, backwards=True)
    assert Cursor.decode(cursor.encode(), "prev", sort, kind) == cursor


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (42, str),
        (None, str),
        ({"a": 1}, str),
        ("nul\x00inside", str),
        ("hook", bool),
        (["a", 1], list),
        ("2026-12-06T10:00:00", datetime),  # no time zone
        ("yesterday", datetime),
        (1765000000, datetime),
    ],
)
def test_a_tampered_cursor_value_is_a_400_not_a_database_error(value: Any, kind: SortKind) -> None:
    """Issue 18 item 8: a cursor edited to hold a number where the column holds text reached
    asyncpg, whose DataError was a 500."""
    tampered = Cursor("+name", value, ROW_ID, False).encode()
    with pytest.raises(ApiError) as raised:
        Cursor.decode(tampered, "next", Sort("name", "name", False), kind)
    assert (raised.value.status, raised.value.detail) == (
        400,
        "next: is not a cursor this API issued",
    )


def test_a_cursor_is_opaque_url_safe_text() -> None:
    text = Cursor("+name", "a/b+c?d", ROW_ID, False).encode()
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize("text", ["", "not a cursor", "W10", "WyJhIiwxXQ", "!!!"])
def test_text_that_is_no_cursor_is_a_400_naming_the_parameter(text: str) -> None:
    with pytest.raises(ApiError) as raised:
        Cursor.decode(text, "next", Sort("name", "name", False))
    assert (raised.value.status, raised.value.detail) == (
        400,
        "next: is not a cursor this API issued",
    )


def test_a_cursor_of_another_sort_is_refused() -> None:
    issued = Cursor("+name", "x", ROW_ID, False).encode()
    with pytest.raises(ApiError, match="another sort order"):
        Cursor.decode(issued, "next", Sort("name", "name", True))


def test_next_and_prev_together_are_a_400() -> None:
    sort = Sort("name", "name", False)
    issued = Cursor("+name", "x", ROW_ID, False).encode()
    with pytest.raises(ApiError, match="not both"):
        requested_cursor(issued, issued, sort)
    assert requested_cursor(None, None, sort) is None
    assert requested_cursor(issued, None, sort) == Cursor("+name", "x", ROW_ID, False)


def test_the_first_page_has_no_condition() -> None:
    query = page_query(Sort("createdAt", "created_at", True), None, 3)
    assert query.order_by == "created_at DESC, id DESC"
    assert (query.condition, query.params, query.backwards) == ("TRUE", [], False)


@pytest.mark.parametrize(
    ("descending", "backwards", "order", "operator"),
    [
        (True, False, "DESC", "<"),
        (False, False, "ASC", ">"),
        # `prev` reads the other way from the cursor; the caller reverses the page back.
        (True, True, "ASC", ">"),
        (False, True, "DESC", "<"),
    ],
)
def test_a_page_continues_after_the_cursor_in_its_direction(
    descending: bool, backwards: bool, order: str, operator: str
) -> None:
    cursor = Cursor("x", "hook", ROW_ID, backwards)
    query = page_query(Sort("name", "name", descending), cursor, 4)
    assert query.order_by == f"name {order}, id {order}"
    assert query.condition == f"(name, id) {operator} ($4, $5)"
    assert query.params == ["hook", ROW_ID]
    assert query.backwards is backwards


def rows(*names: str) -> list[dict[str, Any]]:
    return [{"id": uuid.UUID(int=i + 1), "name": name} for i, name in enumerate(names)]


def cursor_in(href: str, param: str) -> Cursor:
    [text] = parse_qs(urlsplit(href).query)[param]
    return Cursor.decode(text, param, Sort("name", "name", False))


def test_a_first_page_with_more_links_only_to_the_next() -> None:
    page = rows("a", "b")
    result = links(request("sort=name&limit=2"), page, Sort("name", "name", False), None, True)
    assert result["self"] == {"href": "http://api.test/api/v1/webhooks?sort=name&limit=2"}
    assert "prev" not in result
    href = result["next"]["href"]
    assert parse_qs(urlsplit(href).query)["limit"] == ["2"]
    assert cursor_in(href, "next") == Cursor("+name", "b", page[-1]["id"], False)


def test_a_middle_page_links_both_ways_from_its_edges_and_drops_the_old_cursor() -> None:
    page = rows("c", "d")
    came_by = Cursor("+name", "b", ROW_ID, False)
    result = links(
        request(f"sort=name&next={came_by.encode()}"),
        page,
        Sort("name", "name", False),
        came_by,
        True,
    )
    assert cursor_in(result["next"]["href"], "next").value == "d"
    assert cursor_in(result["prev"]["href"], "prev") == Cursor("+name", "c", page[0]["id"], True)
    for link in ("next", "prev"):
        query = parse_qs(urlsplit(result[link]["href"]).query)
        assert set(query) == {"sort", link}


def test_the_last_page_links_back_only() -> None:
    came_by = Cursor("+name", "b", ROW_ID, False)
    result = links(request(""), rows("c"), Sort("name", "name", False), came_by, False)
    assert "next" not in result and "prev" in result


def test_a_page_reached_backwards_links_forward_and_back_only_if_more() -> None:
    came_by = Cursor("+name", "c", ROW_ID, True)
    sort = Sort("name", "name", False)
    more_before = links(request(""), rows("a", "b"), sort, came_by, True)
    assert "next" in more_before and "prev" in more_before
    at_start = links(request(""), rows("a", "b"), sort, came_by, False)
    assert "next" in at_start and "prev" not in at_start


def test_an_empty_page_links_nowhere() -> None:
    came_by = Cursor("+name", "z", ROW_ID, False)
    result = links(request(""), [], Sort("name", "name", False), came_by, False)
    assert set(result) == {"self"}
