from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookstream_common.events import MAX_EVENT_BYTES, Event, InvalidEvent
from hookstream_common.jobs import DeliveryJob, delivery_id_for
from hookstream_dev.events import sample_event

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
WEBHOOK = "9b2f7c1e-3d4a-4e5f-8a6b-7c8d9e0f1a2b"

LEGACY = {
    "cloudEventsVersion": "0.1",
    "source": "com.qlik/engine",
    "contentType": "application/json",
    "eventId": "e-1",
    "eventTime": "2026-11-28T08:00:00.000Z",
    "eventTypeVersion": "1.0.0",
    "eventType": "com.qlik.v1.app.reload.finished",
    "extensions": {
        "tenantId": "t-1",
        "userId": "u-1",
        "ownerId": "u-2",
        "spaceId": "s-1",
        "topLevelResourceId": "app-1",
    },
    "data": {"status": "ok"},
}

CE1 = {
    "specversion": "1.0",
    "id": "e-1",
    "time": "2026-11-28T08:00:00.000Z",
    "type": "com.qlik.v1.app.reload.finished",
    "source": "com.qlik/engine",
    "datacontenttype": "application/json",
    "eventtypeversion": "1.0.0",
    "tenantid": "t-1",
    "userid": "u-1",
    "ownerid": "u-2",
    "spaceid": "s-1",
    "toplevelresourceid": "app-1",
    "data": {"status": "ok"},
}


def test_legacy_round_trips_exactly() -> None:
    event = Event.parse(orjson.dumps(LEGACY))
    assert event.tenant_id == "t-1"
    assert event.user_ids == {"u-1", "u-2"}
    assert event.to_legacy() == LEGACY


def test_cloudevent_parses_to_the_same_event() -> None:
    assert Event.parse(orjson.dumps(CE1)) == Event.parse(orjson.dumps(LEGACY))


def test_legacy_converts_to_cloudevent_and_back() -> None:
    event = Event.parse(orjson.dumps(LEGACY))
    assert event.to_cloudevent() == CE1
    assert Event.parse(orjson.dumps(event.to_cloudevent())).to_legacy() == LEGACY


def test_render_chooses_the_shape() -> None:
    event = Event.parse(orjson.dumps(LEGACY))
    assert orjson.loads(event.render(cloud_event=False))["cloudEventsVersion"] == "0.1"
    assert orjson.loads(event.render(cloud_event=True))["specversion"] == "1.0"


def nested(depth: int) -> Any:
    """A value `depth` arrays deep."""
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"{}", "neither CloudEvents"),
        (orjson.dumps({**LEGACY, "eventId": None}), "eventId is missing"),
        (orjson.dumps({**LEGACY, "extensions": {}}), "extensions.tenantId is missing"),
        (orjson.dumps({**LEGACY, "extensions": "x"}), "extensions must be an object"),
        (orjson.dumps({k: v for k, v in CE1.items() if k != "tenantid"}), "tenantid is missing"),
        (orjson.dumps({**CE1, "type": 7}), "type is missing or not a string"),
        (orjson.dumps({**LEGACY, "eventTime": "2026-11-28T08:00:00"}), "eventTime has no UTC"),
        (orjson.dumps({**CE1, "time": "2026-11-28"}), "time has no UTC offset"),
        (orjson.dumps({**LEGACY, "eventTime": 1764316800}), "eventTime is not an RFC 3339"),
        (orjson.dumps({**LEGACY, "eventTime": ["x"]}), "eventTime is not an RFC 3339"),
        (orjson.dumps({**LEGACY, "eventTime": "yesterday"}), "eventTime is not an RFC 3339"),
        (orjson.dumps({**CE1, "time": "0001-01-01T00:00:00+01:00"}), "time is not an RFC 3339"),
        (orjson.dumps({**CE1, "time": "9999-12-31T23:00:00-01:00"}), "time is not an RFC 3339"),
        (orjson.dumps({**LEGACY, "eventId": "e" * 257}), "eventId is 257 characters"),
        (orjson.dumps({**CE1, "type": "t" * 1000}), "type is 1000 characters"),
        (orjson.dumps({**CE1, "tenantid": "t" * 300}), "tenantid is 300 characters"),
        (orjson.dumps({**CE1, "tenantid": 42}), "tenantid is not a string"),
        (orjson.dumps({**CE1, "userid": {"a": 1}}), "userid is not a string"),
        (orjson.dumps({**LEGACY, "source": ["s"]}), "source is not a string"),
        (orjson.dumps({**LEGACY, "eventTypeVersion": 1}), "eventTypeVersion is not a string"),
        (orjson.dumps({**CE1, "datacontenttype": "x" * 257}), "datacontenttype is 257"),
        (orjson.dumps({**LEGACY, "eventId": "e\u0000"}), "NUL character"),
        (orjson.dumps({**LEGACY, "data": {"note": "a\u0000b"}}), "NUL character"),
        (orjson.dumps({**LEGACY, "data": {"k\u0000": 1}}), "NUL character"),
        (orjson.dumps({**CE1, "data": [[["\u0000"]]]}), "NUL character"),
        (orjson.dumps({**LEGACY, "data": nested(64)}), "nested deeper than 64"),
        (b'{"eventId": "e", "data": ' + b"[" * 300 + b"]" * 300 + b"}", "nested deeper"),
        (b" " * (MAX_EVENT_BYTES + 1), "over the limit of 1048576"),
    ],
)
def test_invalid_events_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        Event.parse(raw)


@pytest.mark.parametrize(
    ("changes", "time"),
    [
        ({"eventTime": "2026-11-28T09:00:00.000+01:00"}, "2026-11-28T09:00:00.000+01:00"),
        ({"eventTime": "2026-11-28T08:00:00Z"}, "2026-11-28T08:00:00Z"),
        ({"data": nested(62)}, LEGACY["eventTime"]),
        ({"data": {"note": "a\\u0000b"}}, LEGACY["eventTime"]),  # an escaped backslash, no NUL
    ],
)
def test_valid_edges_are_kept_as_sent(changes: dict[str, Any], time: str) -> None:
    event = Event.parse(orjson.dumps({**LEGACY, **changes}))
    assert event.time == time
    assert event.to_legacy() == {**LEGACY, **changes}


@pytest.mark.parametrize("missing", [None, ""])
def test_a_missing_time_is_now_and_aware(missing: str | None) -> None:
    event = Event.parse(orjson.dumps({**LEGACY, "eventTime": missing}))
    assert datetime.fromisoformat(event.time).tzinfo is not None


def test_the_size_limit_is_a_parameter() -> None:
    raw = orjson.dumps({**LEGACY, "data": "x" * 2000})
    assert Event.parse(raw, max_bytes=len(raw)).id == "e-1"
    with pytest.raises(InvalidEvent, match=f"{len(raw)} bytes is over the limit of 1024"):
        Event.parse(raw, max_bytes=1024)
    big = orjson.dumps({**LEGACY, "data": "x" * (MAX_EVENT_BYTES - 1000)})
    assert Event.parse(big).data == "x" * (MAX_EVENT_BYTES - 1000)


def parses_or_says_why(raw: bytes) -> Event | None:
    """Parse; only `InvalidEvent` may escape the parser."""
    try:
        return Event.parse(raw)
    except InvalidEvent as exc:
        assert str(exc)
        return None


@settings(deadline=None)
@given(st.binary(max_size=4096))
def test_any_bytes_end_as_an_event_or_invalid_event(raw: bytes) -> None:
    parses_or_says_why(raw)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=300),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
VALUES = st.one_of(JSON, st.datetimes(timezones=st.none() | st.timezones()).map(datetime.isoformat))
EXTENSION_KEYS = [f"extensions.{name}" for name in LEGACY["extensions"]]


def with_changes(shape: dict[str, Any], changes: dict[str, Any], dropped: set[str]) -> Any:
    """`shape` with some attributes (`extensions.X` for a legacy extension) replaced or dropped."""
    doc = {**shape, "extensions": dict(LEGACY["extensions"])} if shape is LEGACY else {**shape}
    for key, value in changes.items():
        *parent, name = key.split(".")
        (doc["extensions"] if parent else doc)[name] = value
    for key in dropped:
        *parent, name = key.split(".")
        (doc["extensions"] if parent else doc).pop(name, None)
    return doc


def event_like(shape: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Documents of the shape with a few attributes replaced by arbitrary JSON, or dropped.

    Mostly valid, so that the checks after parsing are reached as well as the refusals.
    """
    keys = st.sampled_from(
        [key for key in shape if key != "extensions"] + (EXTENSION_KEYS if shape is LEGACY else [])
    )
    return st.builds(
        with_changes,
        st.just(shape),
        st.dictionaries(keys, VALUES, max_size=3),
        st.sets(keys, max_size=2),
    )


@settings(deadline=None, max_examples=300)
@given(st.one_of(event_like(LEGACY), event_like(CE1)))
def test_whatever_is_accepted_can_be_queued_sent_and_stored(doc: dict[str, Any]) -> None:
    event = parses_or_says_why(orjson.dumps(doc))
    if event is None:
        return
    when = datetime.fromisoformat(event.time)
    assert when.tzinfo is not None and when.astimezone(UTC) <= datetime.max.replace(tzinfo=UTC)
    for cloud_event in (False, True):
        assert b"\\u0000" not in event.render(cloud_event)
    job = DeliveryJob.for_event(WEBHOOK, event, NOW)
    assert DeliveryJob.loads(job.dumps()) == job


def test_sample_events_parse_for_every_type() -> None:
    from hookstream_common.catalogue import event_type_names

    for name in event_type_names():
        event = Event.parse(orjson.dumps(sample_event(name, "t-9")))
        assert event.type == name and event.tenant_id == "t-9"


def test_delivery_job_round_trip_and_stable_id() -> None:
    event = Event.parse(orjson.dumps(LEGACY))
    job = DeliveryJob.for_event(WEBHOOK, event, NOW)
    again = DeliveryJob.loads(job.dumps())
    assert again == job
    assert job.delivery_id == delivery_id_for(WEBHOOK, "e-1")
    assert DeliveryJob.for_event(WEBHOOK, event, NOW).delivery_id == job.delivery_id
    assert job.delivery_id != delivery_id_for("w-2", "e-1")
