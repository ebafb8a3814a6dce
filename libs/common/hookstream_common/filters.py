"""The webhook filter language: the subset of SCIM filter syntax a webhook's `filter` may use.

A filter narrows the events a webhook receives, e.g.
`spaceId eq "abc" and (id eq "1" or id eq "2")`. Parsing validates it against the webhook's
event types so a bad filter is rejected with a position a person can find, and yields an
immutable tree that the matcher can evaluate against each event without re-parsing.
"""

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

MAX_LENGTH = 2048
MAX_COMPARISONS = 50
# Parentheses are parsed recursively; this keeps a hostile `((((...` a FilterError, not a crash.
MAX_NESTING = 50
RELOAD_FINISHED = "com.qlik.v1.app.reload.finished"

_SPACE = re.compile(r"[ \t\r\n]*")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.]*")
_STRING_BODY = re.compile(r'(?:[^"\\]|\\["\\])*')
_ESCAPE = re.compile(r"\\(.)")


class FilterError(ValueError):
    """A filter that does not parse or validate; `position` is the 0-based index where it broke."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


def _object(value: Any) -> Mapping[str, Any]:
    """Treat a missing or non-object `data`/`extensions` as empty, so lookups just find nothing."""
    return value if isinstance(value, Mapping) else {}


def _space_id(event: Mapping[str, Any]) -> Any:
    """The `spaceId` extension, or `data.spaceId` for producers that only put it in the payload."""
    space_id = _object(event.get("extensions")).get("spaceId")
    return _object(event.get("data")).get("spaceId") if space_id is None else space_id


# How each attribute reads an event in the legacy CloudEvents 0.1 shape (`Event.to_legacy()`).
_READERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "id": lambda event: _object(event.get("data")).get("id"),
    "spaceId": _space_id,
    "topLevelResourceId": lambda event: _object(event.get("extensions")).get("topLevelResourceId"),
    "data.status": lambda event: _object(event.get("data")).get("status"),
}
ATTRIBUTES = tuple(_READERS)


def _as_text(value: Any) -> str | None:
    """Strings compare as they are, integers as decimals; anything else (bools too) never equals."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


class Filter(ABC):
    """A parsed filter: an immutable tree whose `str` is canonical text that parses back to it."""

    @abstractmethod
    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether an event, as a legacy CloudEvents 0.1 dict, passes the filter."""

    @abstractmethod
    def __str__(self) -> str:
        """Canonical text: lowercase operators, single spaces, only the parentheses needed."""


@dataclass(frozen=True)
class Comparison(Filter):
    """`attribute eq "value"` or `ne`; a missing attribute equals nothing, so `ne` holds for it."""

    attribute: str
    operator: Literal["eq", "ne"]
    value: str

    def matches(self, event: Mapping[str, Any]) -> bool:
        equal = _as_text(_READERS[self.attribute](event)) == self.value
        return equal if self.operator == "eq" else not equal

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.attribute} {self.operator} "{escaped}"'


@dataclass(frozen=True)
class And(Filter):
    """True when every operand is; the parser flattens nested `And`s, keeping the tree canonical."""

    operands: tuple[Filter, ...]

    def matches(self, event: Mapping[str, Any]) -> bool:
        return all(operand.matches(event) for operand in self.operands)

    def __str__(self) -> str:
        return " and ".join(f"({op})" if isinstance(op, Or) else str(op) for op in self.operands)


@dataclass(frozen=True)
class Or(Filter):
    """True when any operand is; `and` binds tighter, so operands never need parentheses."""

    operands: tuple[Filter, ...]

    def matches(self, event: Mapping[str, Any]) -> bool:
        return any(operand.matches(event) for operand in self.operands)

    def __str__(self) -> str:
        return " or ".join(str(operand) for operand in self.operands)


def _join(kind: type[And] | type[Or], operands: list[Filter]) -> Filter:
    """One operand stands alone; otherwise build `kind`, absorbing operands of the same kind."""
    if len(operands) == 1:
        return operands[0]
    flat = [op.operands if isinstance(op, kind) else (op,) for op in operands]
    return kind(tuple(item for group in flat for item in group))


class _Parser:
    """Recursive descent straight over the text, so every error knows its exact position."""

    def __init__(self, text: str, attributes: tuple[str, ...]) -> None:
        self.text = text
        self.attributes = attributes
        self.pos = 0
        self.comparisons = 0

    def parse(self) -> Filter:
        tree = self._or(0)
        self._skip()
        if self._at(")"):
            raise FilterError(f'unbalanced ")" at position {self.pos}; no "(" is open', self.pos)
        if self.pos < len(self.text):
            raise self._expected('"and", "or" or the end of the filter')
        return tree

    def _or(self, depth: int) -> Filter:
        operands = [self._and(depth)]
        while self._keyword("or"):
            operands.append(self._and(depth))
        return _join(Or, operands)

    def _and(self, depth: int) -> Filter:
        operands = [self._factor(depth)]
        while self._keyword("and"):
            operands.append(self._factor(depth))
        return _join(And, operands)

    def _factor(self, depth: int) -> Filter:
        self._skip()
        if not self._at("("):
            return self._comparison()
        opened = self.pos
        if depth == MAX_NESTING:
            raise FilterError(
                f"parentheses nested deeper than {MAX_NESTING} at position {opened}", opened
            )
        self.pos += 1
        inner = self._or(depth + 1)
        self._skip()
        if not self._at(")"):
            raise self._expected(
                '"and", "or" or ")"', f'; the "(" at position {opened} is not closed'
            )
        self.pos += 1
        return inner

    def _comparison(self) -> Comparison:
        start = self.pos
        attribute = self._word()
        if attribute is None:
            raise self._expected("an attribute name")
        if attribute not in self.attributes:
            if attribute in ATTRIBUTES:
                raise FilterError(
                    f'attribute "{attribute}" at position {start} needs the webhook\'s only'
                    f" event type to be {RELOAD_FINISHED}",
                    start,
                )
            raise FilterError(
                f'unknown attribute "{attribute}" at position {start};'
                f" use one of {', '.join(self.attributes)}",
                start,
            )
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise FilterError(f"more than {MAX_COMPARISONS} comparisons at position {start}", start)
        self.pos += len(attribute)
        self._skip()
        operator = (self._word() or "").lower()
        if operator not in ("eq", "ne"):
            raise self._expected('"eq" or "ne"')
        self.pos += len(operator)
        self._skip()
        return Comparison(attribute, "eq" if operator == "eq" else "ne", self._string())

    def _string(self) -> str:
        """A double-quoted value in which only `\\"` and `\\\\` are escapes."""
        if not self._at('"'):
            raise self._expected("a double-quoted string")
        start = self.pos
        end = _STRING_BODY.match(self.text, start + 1).end()  # type: ignore[union-attr]
        # The body stops at the closing quote, at the end, or at a backslash it cannot accept.
        if self.text[end : end + 1] == '"':
            self.pos = end + 1
            return _ESCAPE.sub(r"\1", self.text[start + 1 : end])
        if end + 1 < len(self.text):
            raise FilterError(
                f'invalid escape "{self.text[end : end + 2]}" at position {end};'
                ' only \\" and \\\\ are allowed',
                end,
            )
        raise FilterError(f"unterminated string starting at position {start}", start)

    def _skip(self) -> None:
        self.pos = _SPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def _at(self, char: str) -> bool:
        return self.text.startswith(char, self.pos)

    def _word(self) -> str | None:
        """The word at the cursor, without consuming it."""
        match = _WORD.match(self.text, self.pos)
        return match.group() if match else None

    def _keyword(self, keyword: str) -> bool:
        """Consume `keyword` (any case) if it is the next word."""
        self._skip()
        word = self._word()
        if word is None or word.lower() != keyword:
            return False
        self.pos += len(word)
        return True

    def _expected(self, what: str, note: str = "") -> FilterError:
        if self.pos == len(self.text):
            found = "the end of the filter"
        elif self._at('"'):
            found = "a string"
        else:
            found = f'"{self._word() or self.text[self.pos]}"'
        return FilterError(f"expected {what} at position {self.pos}, found {found}{note}", self.pos)


def parse_filter(text: str, event_types: Sequence[str]) -> Filter:
    """Parse and validate a webhook's filter for its event types; raise `FilterError`.

    An empty filter is an error, not "match everything": a webhook without one stores None.
    `data.status` is only meaningful for app reloads, so it needs that to be the sole event type.
    """
    if len(text) > MAX_LENGTH:
        raise FilterError(
            f"filter exceeds {MAX_LENGTH} characters at position {MAX_LENGTH}", MAX_LENGTH
        )
    if _SPACE.fullmatch(text):
        raise FilterError("filter is empty at position 0; omit it to receive every event", 0)
    reload_only = set(event_types) == {RELOAD_FINISHED}
    allowed = tuple(a for a in ATTRIBUTES if reload_only or a != "data.status")
    return _Parser(text, allowed).parse()
