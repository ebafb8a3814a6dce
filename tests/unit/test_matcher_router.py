"""The matcher's routing decisions, without Kafka."""

from datetime import UTC, datetime, timedelta

import orjson

from hookstream_common.jobs import delivery_id_for
from hookstream_common.routing import Route, TenantRoutes
from hookstream_dev.events import sample_event
from hookstream_matcher.router import (
    DeadLetter,
    Matched,
    Rekey,
    RouteTable,
    route,
    trigger_time,
)

APP_CREATED = "com.qlik.v1.app.created"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LIMIT = 1024 * 1024


def _routes(tenant: str, *ids: str) -> bytes:
    return TenantRoutes(
        tenant, tuple(Route(i, (APP_CREATED,), "tenant", "admin", True) for i in ids)
    ).dumps()


def _event(tenant: str = "t-1", time: str | None = None) -> bytes:
    event = sample_event(APP_CREATED, tenant, "u-1")
    if time is not None:
        event["eventTime"] = time
    return orjson.dumps(event)


def test_jobs_for_every_matching_webhook_with_deterministic_ids() -> None:
    table = RouteTable()
    table.learn(0, "t-1", _routes("t-1", "w-1", "w-2"))
    raw = _event()
    decision = route(table, b"t-1", raw, NOW, LIMIT)
    assert isinstance(decision, Matched)
    event_id = orjson.loads(raw)["eventId"]
    assert [j.delivery_id for j in decision.jobs] == [
        delivery_id_for("w-1", event_id),
        delivery_id_for("w-2", event_id),
    ]


def test_the_same_record_routed_twice_gives_the_same_jobs() -> None:
    table = RouteTable()
    table.learn(0, "t-1", _routes("t-1", "w-1"))
    raw = _event(time="2026-11-28T11:59:59.000Z")
    first = route(table, b"t-1", raw, NOW, LIMIT)
    again = route(table, b"t-1", raw, NOW, LIMIT)
    assert isinstance(first, Matched) and isinstance(again, Matched)
    assert first.jobs[0].dumps() == again.jobs[0].dumps()


def test_unknown_tenant_and_tombstone_route_nowhere() -> None:
    table = RouteTable()
    unknown = route(table, b"t-1", _event(), NOW, LIMIT)
    assert isinstance(unknown, Matched) and unknown.jobs == []
    table.learn(1, "t-1", _routes("t-1", "w-1"))
    table.learn(1, "t-1", None)
    removed = route(table, b"t-1", _event(), NOW, LIMIT)
    assert isinstance(removed, Matched) and removed.jobs == []


def test_forgetting_a_partition_drops_its_tenants_only() -> None:
    table = RouteTable()
    table.learn(0, "t-0", _routes("t-0", "w-0"))
    table.learn(1, "t-1", _routes("t-1", "w-1"))
    table.forget({0})
    assert table.routes_of("t-0") is None
    assert table.routes_of("t-1") is not None
    assert len(table) == 1


def test_wrong_key_is_rekeyed_to_the_tenant() -> None:
    assert route(RouteTable(), b"other", _event("t-9"), NOW, LIMIT) == Rekey("t-9")
    assert route(RouteTable(), None, _event("t-9"), NOW, LIMIT) == Rekey("t-9")


def test_bad_records_are_dead_letters_with_a_reason() -> None:
    table = RouteTable()
    assert route(table, b"t", None, NOW, LIMIT) == DeadLetter("empty record (no value)")
    assert isinstance(route(table, b"t", b"{not json", NOW, LIMIT), DeadLetter)
    big = route(table, b"t", b"x" * (LIMIT + 1), NOW, LIMIT)
    assert isinstance(big, DeadLetter) and "over the limit" in big.reason


def test_trigger_time_is_the_events_own_time_near_the_clock() -> None:
    event = route(RouteTable(), b"t-1", _event(time="2026-11-28T11:30:00Z"), NOW, LIMIT)
    assert isinstance(event, Matched)
    assert trigger_time(event.event, NOW) == NOW - timedelta(minutes=30)


def test_trigger_time_falls_back_to_the_clock_far_from_now() -> None:
    decision = route(RouteTable(), b"t-1", _event(time="2020-01-01T00:00:00Z"), NOW, LIMIT)
    assert isinstance(decision, Matched)
    assert trigger_time(decision.event, NOW) == NOW


def test_times_without_an_offset_or_unreadable_are_dead_letters() -> None:
    for odd in ("2026-11-28T11:30:00", "yesterday"):
        assert isinstance(route(RouteTable(), b"t-1", _event(time=odd), NOW, LIMIT), DeadLetter)
