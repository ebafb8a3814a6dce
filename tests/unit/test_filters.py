from typing import Any

import orjson
import pytest

from hookstream_common.events import Event
from hookstream_common.filters import (
    MAX_COMPARISONS,
    MAX_LENGTH,
    MAX_NESTING,
    RELOAD_FINISHED,
    And,
    Comparison,
    Filter,
    FilterError,
    Or,
    parse_filter,
)
from hookstream_dev.events import sample_event

APP_CREATED = "com.qlik.v1.app.created"
ANY_APP = (APP_CREATED, "com.qlik.v1.app.deleted")


def eq(attribute: str, value: str) -> Comparison:
    return Comparison(attribute, "eq", value)


def ne(attribute: str, value: str) -> Comparison:
    return Comparison(attribute, "ne", value)


def _error(text: str, event_types: tuple[str, ...] = ANY_APP) -> FilterError:
    with pytest.raises(FilterError) as caught:
        parse_filter(text, event_types)
    return caught.value


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ('id eq "a"', eq("id", "a")),
        ('id ne "a"', ne("id", "a")),
        ('spaceId eq "s" and id eq "a"', And((eq("spaceId", "s"), eq("id", "a")))),
        ('spaceId eq "s" or id eq "a"', Or((eq("spaceId", "s"), eq("id", "a")))),
        # and binds tighter than or, on either side
        (
            'id eq "a" or id eq "b" and spaceId eq "s"',
            Or((eq("id", "a"), And((eq("id", "b"), eq("spaceId", "s"))))),
        ),
        (
            'id eq "a" and id eq "b" or spaceId eq "s"',
            Or((And((eq("id", "a"), eq("id", "b"))), eq("spaceId", "s"))),
        ),
        (
            '(id eq "a" or id eq "b") and spaceId eq "s"',
            And((Or((eq("id", "a"), eq("id", "b"))), eq("spaceId", "s"))),
        ),
        # same-kind nesting flattens, redundant parentheses vanish
        (
            'id eq "a" and (id eq "b" and (id eq "c"))',
            And((eq("id", "a"), eq("id", "b"), eq("id", "c"))),
        ),
        ('((id eq "a"))', eq("id", "a")),
        # keywords and operators in any case
        (
            'id EQ "a" AnD topLevelResourceId Ne "t" OR spaceId eQ "s"',
            Or((And((eq("id", "a"), ne("topLevelResourceId", "t"))), eq("spaceId", "s"))),
        ),
        # whitespace is optional between tokens, and may be any of space, tab, newline
        (
            '(id eq"a")and(spaceId ne"s")',
            And((eq("id", "a"), ne("spaceId", "s"))),
        ),
        ('\t id\neq \r\n "a" \n', eq("id", "a")),
        # escapes, and characters that are syntax outside a string
        (r'id eq "say \"hi\" \\ bye"', eq("id", 'say "hi" \\ bye')),
        ("id eq \"(a) and 'b' or c\"", eq("id", "(a) and 'b' or c")),
        ('id eq ""', eq("id", "")),
    ],
)
def test_parse_builds_the_tree(text: str, tree: Filter) -> None:
    assert parse_filter(text, ANY_APP) == tree


def test_data_status_is_allowed_only_for_reload_finished_alone() -> None:
    assert parse_filter('data.status eq "error"', [RELOAD_FINISHED]) == eq("data.status", "error")
    assert parse_filter('data.status eq "ok"', (RELOAD_FINISHED, RELOAD_FINISHED)) == eq(
        "data.status", "ok"
    )


@pytest.mark.parametrize(
    ("text", "event_types", "position", "message"),
    [
        ("", ANY_APP, 0, "filter is empty at position 0"),
        (" \t\n ", ANY_APP, 0, "filter is empty at position 0"),
        ('id eq "abc', ANY_APP, 6, "unterminated string starting at position 6"),
        ('id eq "abc\\', ANY_APP, 6, "unterminated string starting at position 6"),
        ('id eq "a\\"', ANY_APP, 6, "unterminated string starting at position 6"),
        ('id eq "a\\nb"', ANY_APP, 8, 'invalid escape "\\n" at position 8'),
        ('id "a"', ANY_APP, 3, 'expected "eq" or "ne" at position 3, found a string'),
        ('id co "a"', ANY_APP, 3, 'expected "eq" or "ne" at position 3, found "co"'),
        ('id = "a"', ANY_APP, 3, 'expected "eq" or "ne" at position 3, found "="'),
        ("id", ANY_APP, 2, 'expected "eq" or "ne" at position 2, found the end of the filter'),
        ("id eq a", ANY_APP, 6, 'expected a double-quoted string at position 6, found "a"'),
        ("id eq 'a'", ANY_APP, 6, 'expected a double-quoted string at position 6, found "\'"'),
        ("id eq 5", ANY_APP, 6, 'expected a double-quoted string at position 6, found "5"'),
        (
            'owner eq "a"',
            ANY_APP,
            0,
            'unknown attribute "owner" at position 0; use one of id, spaceId, topLevelResourceId',
        ),
        ('id eq "a" or ID eq "b"', ANY_APP, 13, 'unknown attribute "ID" at position 13'),
        ('spaceid eq "a"', ANY_APP, 0, 'unknown attribute "spaceid" at position 0'),
        (
            'x eq "a"',
            (RELOAD_FINISHED,),
            0,
            "use one of id, spaceId, topLevelResourceId, data.status",
        ),
        ('"a" eq id', ANY_APP, 0, "expected an attribute name at position 0, found a string"),
        (
            'data.status eq "ok"',
            (APP_CREATED,),
            0,
            'attribute "data.status" at position 0 needs the webhook\'s only event type to be'
            f" {RELOAD_FINISHED}",
        ),
        ('id eq "a" and data.status eq "ok"', (RELOAD_FINISHED, APP_CREATED), 14, "data.status"),
        ('data.status eq "ok"', (), 0, "needs the webhook's only event type"),
        (
            'id eq "a" foo',
            ANY_APP,
            10,
            'expected "and", "or" or the end of the filter at position 10, found "foo"',
        ),
        ('id eq "a" "b"', ANY_APP, 10, "at position 10, found a string"),
        ('id eq "a" andid eq "b"', ANY_APP, 10, 'found "andid"'),
        ('id eq "a";', ANY_APP, 9, 'found ";"'),
        (
            'id eq "a" and',
            ANY_APP,
            13,
            "expected an attribute name at position 13, found the end of the filter",
        ),
        ('id eq "a" or or', ANY_APP, 13, 'unknown attribute "or" at position 13'),
        ('id eq "a")', ANY_APP, 9, 'unbalanced ")" at position 9; no "(" is open'),
        ('(id eq "a"))', ANY_APP, 11, 'unbalanced ")" at position 11'),
        (
            '(id eq "a"',
            ANY_APP,
            10,
            'expected "and", "or" or ")" at position 10, found the end of the filter;'
            ' the "(" at position 0 is not closed',
        ),
        ('((id eq "a") ', ANY_APP, 13, 'the "(" at position 0 is not closed'),
        ('(id eq "a" id eq "b")', ANY_APP, 11, 'found "id"'),
        ("()", ANY_APP, 1, 'expected an attribute name at position 1, found ")"'),
    ],
)
def test_errors_name_the_position(
    text: str, event_types: tuple[str, ...], position: int, message: str
) -> None:
    error = _error(text, event_types)
    assert error.position == position
    assert message in str(error)


def test_filter_error_is_a_value_error() -> None:
    assert isinstance(_error(""), ValueError)


def _comparisons(count: int) -> str:
    return " or ".join(f'id eq "{n}"' for n in range(count))


def test_length_limit() -> None:
    at_limit = 'id eq "' + "x" * (MAX_LENGTH - 8) + '"'
    assert len(at_limit) == MAX_LENGTH
    assert parse_filter(at_limit, ANY_APP) == eq("id", "x" * (MAX_LENGTH - 8))
    error = _error(at_limit + " ")
    assert error.position == MAX_LENGTH
    assert f"exceeds {MAX_LENGTH} characters" in str(error)


def test_comparison_limit() -> None:
    tree = parse_filter(_comparisons(MAX_COMPARISONS), ANY_APP)
    assert isinstance(tree, Or)
    assert len(tree.operands) == MAX_COMPARISONS
    text = _comparisons(MAX_COMPARISONS + 1)
    error = _error(text)
    assert error.position == text.rindex("id")
    assert f"more than {MAX_COMPARISONS} comparisons" in str(error)


def test_nesting_limit_turns_deep_parentheses_into_a_filter_error() -> None:
    nested = "(" * MAX_NESTING + 'id eq "a"' + ")" * MAX_NESTING
    assert parse_filter(nested, ANY_APP) == eq("id", "a")
    error = _error("(" * (MAX_NESTING + 1) + 'id eq "a"' + ")" * (MAX_NESTING + 1))
    assert error.position == MAX_NESTING
    # far past the interpreter's recursion limit, were the nesting unchecked
    assert _error("(" * (MAX_LENGTH - 1)).position == MAX_NESTING


def _event(
    event_type: str = APP_CREATED,
    data: dict[str, Any] | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    """An event as the matcher sees it: parsed from the producer's JSON, rendered legacy."""
    raw = sample_event(event_type, "t-1", "u-1", data)
    raw["extensions"].update(topLevelResourceId="app-1", **extensions)
    return Event.parse(orjson.dumps(raw)).to_legacy()


APP = _event(data={"id": "app-1", "name": "Sales"}, spaceId="space-1")
# the reloads service's event: the reload's own id in data, the app as top-level resource
RELOAD_RECORD = _event("com.qlik.v1.reload.finished", {"id": "reload-7", "status": "SUCCEEDED"})
APP_NO_SPACE = _event(data={"id": "app-2", "name": "Personal"})
APP_SPACE_IN_DATA = _event(data={"id": "app-3", "spaceId": "space-2"})
APP_BOTH_SPACES = _event(data={"id": "app-4", "spaceId": "space-data"}, spaceId="space-ext")
RELOAD_OK = _event(RELOAD_FINISHED, {"id": "app-1", "status": "ok"}, spaceId="space-1")
RELOAD_FAILED = _event(RELOAD_FINISHED, {"id": "app-1", "status": "error"}, spaceId="space-1")
NUMERIC_ID = _event(data={"id": 42})
ODD_IDS = [_event(data={"id": value}) for value in (True, 4.0, None, {"x": 1}, ["a"])]
NO_DATA = _event(data={}) | {"data": None}
BAD_SHAPES = {"data": "app-1", "extensions": ["spaceId"]}


@pytest.mark.parametrize(
    ("text", "event", "expected"),
    [
        ('id eq "app-1"', APP, True),
        ('id eq "app-2"', APP, False),
        ('id eq "APP-1"', APP, False),
        ('id ne "app-1"', APP, False),
        ('id ne "app-2"', APP, True),
        ('spaceId eq "space-1"', APP, True),
        ('spaceId eq "space-2"', APP_SPACE_IN_DATA, True),
        ('spaceId eq "space-ext"', APP_BOTH_SPACES, True),
        ('spaceId eq "space-data"', APP_BOTH_SPACES, False),
        ('topLevelResourceId eq "app-1"', APP, True),
        ('topLevelResourceId eq "app-2"', APP, False),
        ('topLevelResourceId eq "app-1"', RELOAD_RECORD, True),
        ('id eq "app-1"', RELOAD_RECORD, False),
        ('id eq "reload-7"', RELOAD_RECORD, True),
        ('data.status eq "error"', RELOAD_FAILED, True),
        ('data.status eq "error"', RELOAD_OK, False),
        ('data.status ne "error"', RELOAD_OK, True),
        # a missing attribute equals nothing, not even the empty string
        ('spaceId eq ""', APP_NO_SPACE, False),
        ('spaceId ne "space-1"', APP_NO_SPACE, True),
        ('data.status eq ""', APP, False),
        ('id eq "app-1"', NO_DATA, False),
        ('id ne "app-1"', NO_DATA, True),
        ('id eq "app-1"', BAD_SHAPES, False),
        ('spaceId ne "x"', BAD_SHAPES, True),
        ('topLevelResourceId ne "x"', {}, True),
        # integers compare by their decimal text
        ('id eq "42"', NUMERIC_ID, True),
        ('id eq "42.0"', NUMERIC_ID, False),
        # combinations
        ('spaceId eq "space-1" and id eq "app-1"', APP, True),
        ('spaceId eq "space-1" and id eq "app-2"', APP, False),
        ('id eq "app-2" or id eq "app-1"', APP, True),
        ('id eq "app-2" or id eq "app-3"', APP, False),
        ('id eq "app-1" or id eq "app-9" and spaceId eq "nowhere"', APP, True),
        ('(id eq "app-1" or id eq "app-9") and spaceId eq "nowhere"', APP, False),
        (
            'spaceId eq "space-1" and (data.status eq "error" or id ne "app-1")',
            RELOAD_FAILED,
            True,
        ),
        ('spaceId eq "space-1" and (data.status eq "error" or id ne "app-1")', RELOAD_OK, False),
    ],
)
def test_matches(text: str, event: dict[str, Any], expected: bool) -> None:
    assert parse_filter(text, [RELOAD_FINISHED]).matches(event) is expected


@pytest.mark.parametrize("event", ODD_IDS)
def test_values_that_are_neither_str_nor_int_never_equal(event: dict[str, Any]) -> None:
    for text in ('id eq "True"', 'id eq "4.0"', 'id eq "None"', "id eq \"{'x': 1}\""):
        assert not parse_filter(text, ANY_APP).matches(event)
        assert parse_filter(text.replace(" eq ", " ne "), ANY_APP).matches(event)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ('id  EQ\t"a"', 'id eq "a"'),
        ('(id Ne "a")', 'id ne "a"'),
        (r'id eq "q\"b\\"', r'id eq "q\"b\\"'),
        ('id eq "a" OR (id eq "b" AND id eq "c")', 'id eq "a" or id eq "b" and id eq "c"'),
        ('(id eq "a" or id eq "b") and id eq "c"', '(id eq "a" or id eq "b") and id eq "c"'),
        ('id eq "a" and (id eq "b" and id eq "c")', 'id eq "a" and id eq "b" and id eq "c"'),
        ('(id eq "a" or (id eq "b" or id eq "c"))', 'id eq "a" or id eq "b" or id eq "c"'),
        (
            'spaceId eq "s" and (id eq "a" or (id eq "b" and (id ne "c" or id ne "d")))',
            'spaceId eq "s" and (id eq "a" or id eq "b" and (id ne "c" or id ne "d"))',
        ),
        (
            '(data.status eq "error" or data.status eq "warn")and(topLevelResourceId ne"x")',
            '(data.status eq "error" or data.status eq "warn") and topLevelResourceId ne "x"',
        ),
    ],
)
def test_str_is_canonical_and_round_trips(text: str, canonical: str) -> None:
    tree = parse_filter(text, [RELOAD_FINISHED])
    assert str(tree) == canonical
    assert parse_filter(str(tree), [RELOAD_FINISHED]) == tree


def test_trees_are_immutable() -> None:
    tree = parse_filter('id eq "a"', ANY_APP)
    with pytest.raises(AttributeError):
        tree.value = "b"  # type: ignore[attr-defined]
