from datetime import UTC, datetime

import orjson
import pytest

from hookstream_common.events import Event, InvalidEvent
from hookstream_common.jobs import DeliveryJob, delivery_id_for
from hookstream_common.sdk import sample_event

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)

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
    ],
)
def test_invalid_events_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        Event.parse(raw)


def test_sample_events_parse_for_every_type() -> None:
    from hookstream_common.catalogue import event_type_names

    for name in event_type_names():
        event = Event.parse(orjson.dumps(sample_event(name, "t-9")))
        assert event.type == name and event.tenant_id == "t-9"


def test_delivery_job_round_trip_and_stable_id() -> None:
    event = Event.parse(orjson.dumps(LEGACY))
    job = DeliveryJob.for_event("w-1", event, NOW)
    again = DeliveryJob.loads(job.dumps())
    assert again == job
    assert job.delivery_id == delivery_id_for("w-1", "e-1")
    assert DeliveryJob.for_event("w-1", event, NOW).delivery_id == job.delivery_id
    assert job.delivery_id != delivery_id_for("w-2", "e-1")
