"""Bad records on the events topic: the matcher parks them on `<prefix>.events.dlq` with the
reason, counts them, and routes the event behind them; a wrongly keyed event is re-keyed."""

import uuid
from typing import Any

import orjson
import pytest
from poison_harness import (
    CREATED,
    DEAD_LETTERS,
    MATCHER_EVENTS,
    MAX_EVENT_BYTES,
    Poison,
    headers_of,
    legacy_event,
)

TENANT_KEY = object()
"""Stands for the harness tenant's key: the bad record sits in front of the next good event."""


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"next": value}
    return value


def _corpus() -> list[tuple[str, Any, str]]:
    """(name, value: bytes, a dict to encode, or None, the reason's expected fragment).

    Dicts are events of the harness tenant; `{tenant}` is filled in.
    """
    tenant = "{tenant}"
    ce1 = {
        "specversion": "1.0",
        "id": "ce-id",
        "type": CREATED,
        "source": "poison",
        "time": "2024-05-01T10:00:00Z",
    }
    return [
        ("not JSON", b"this is not JSON {", "not JSON"),
        ("invalid UTF-8", b'{"eventId": "\xff\xfe"}', "not JSON"),
        ("empty bytes", b"", "not JSON"),
        ("truncated JSON", orjson.dumps(legacy_event(tenant))[:-7], "not JSON"),
        ("lone surrogate", b'{"eventId": "\\ud800"}', "not JSON"),
        (
            "number beyond a double",
            orjson.dumps(legacy_event(tenant, data={"n": 0})).replace(b'"n":0', b'"n":1e999'),
            "not JSON",
        ),
        ("JSON array", b"[1, 2, 3]", "not a JSON object"),
        ("JSON string", b'"an event"', "not a JSON object"),
        ("JSON number", b"42", "not a JSON object"),
        ("JSON null", b"null", "not a JSON object"),
        ("no version attribute", {"hello": "world"}, "neither CloudEvents"),
        ("missing eventId", legacy_event(tenant, eventId=None), "eventId is missing"),
        ("eventId not a string", legacy_event(tenant, eventId=42), "eventId is missing"),
        ("missing eventType", legacy_event(tenant, eventType=None), "eventType is missing"),
        ("eventType an object", legacy_event(tenant, eventType={"a": 1}), "eventType is missing"),
        ("missing tenant (0.1)", legacy_event(tenant, extensions={"userId": "u1"}), "tenantId"),
        ("missing tenant (1.0)", ce1, "tenantid is missing"),
        ("tenantId a number", legacy_event(tenant, extensions={"tenantId": 7}), "not a string"),
        ("extensions a string", legacy_event(tenant, extensions="x"), "extensions must be"),
        ("eventType too long", legacy_event(tenant, eventType="x" * 300), "characters; at most"),
        ("source a list", legacy_event(tenant, source=["a"]), "source is not a string"),
        (
            "over the size limit",
            legacy_event(tenant, data={"blob": "x" * (MAX_EVENT_BYTES + 1000)}),
            "over the limit",
        ),
        ("NUL in a value", legacy_event(tenant, data={"name": "a\x00b"}), "NUL"),
        ("NUL in a key", legacy_event(tenant, data={"a\x00b": 1}), "NUL"),
        ("nested 100 deep", legacy_event(tenant, data=_nested(100)), "nested deeper"),
        ("nested 5000 deep", b'{"data":' + b"[" * 5000 + b"]" * 5000 + b"}", ""),
        ("eventTime not a time", legacy_event(tenant, eventTime="yesterday"), "eventTime"),
        ("eventTime without offset", legacy_event(tenant, eventTime="2024-05-01T10:00:00"), "UTC"),
        ("eventTime a number", legacy_event(tenant, eventTime=1714557600), "eventTime"),
        ("eventTime beyond UTC", legacy_event(tenant, eventTime="9999-12-31T23:59:59-12:00"), ""),
        ("eventTime year 0", legacy_event(tenant, eventTime="0000-01-01T00:00:00Z"), "eventTime"),
        ("null value (tombstone)", None, "empty record"),
    ]


CORPUS = _corpus()


def _encode(value: Any, tenant: str) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return orjson.dumps(value).replace(b"{tenant}", tenant.encode())


@pytest.mark.parametrize(("name", "value", "reason"), CORPUS, ids=[c[0] for c in CORPUS])
async def test_a_bad_event_is_parked_and_the_next_is_delivered(
    poison: Poison, name: str, value: Any, reason: str
) -> None:
    async with poison.case("events", name) as case:
        before = await poison.scrape("matcher")
        where = await poison.produce(
            poison.topics.events, _encode(value, poison.tenant), poison.tenant.encode()
        )
        await poison.next_good_event_delivered(case)

        parked, why = await poison.parked_from(where)
        assert reason in why, why
        assert headers_of(parked)["hookstream-stage"] == b"events"
        if value is None:
            assert parked.value in (None, b"")
        else:
            sent = _encode(value, poison.tenant) or b""
            assert parked.value == sent[: len(parked.value or b"")]
        case.parked = True

        await poison.counted("matcher", before, DEAD_LETTERS, stage="events")
        await poison.counted("matcher", before, MATCHER_EVENTS, outcome="dead_letter")
        case.counted = True
        poison.services_alive()


WRONG_KEYS = [
    ("another tenant's key", b"tenant-someone-else"),
    ("no key", None),
    ("invalid UTF-8 key", b"\xff\xfe\xfd"),
    ("empty key", b""),
    ("huge key", b"k" * 50_000),
]


@pytest.mark.parametrize(("name", "key"), WRONG_KEYS, ids=[k[0] for k in WRONG_KEYS])
async def test_a_wrongly_keyed_event_is_rekeyed_and_delivered(
    poison: Poison, name: str, key: bytes | None
) -> None:
    """Not parked by design: the matcher publishes it again under its tenant's key."""
    async with poison.case("events", f"wrong key: {name}") as case:
        before = await poison.scrape("matcher")
        event = legacy_event(poison.tenant, eventId=str(uuid.uuid4()))
        where = await poison.produce(poison.topics.events, orjson.dumps(event), key)

        await poison.delivered(event["eventId"])
        await poison.counted("matcher", before, MATCHER_EVENTS, outcome="rekeyed")
        assert not poison.source_parked(where)
        case.other_evidence = case.counted = True
        await poison.next_good_event_delivered(case)
        poison.services_alive()
