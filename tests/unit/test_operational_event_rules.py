"""Operational events: their shape, when a batch of outcomes raises them, and how they route."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from hookstream_common.catalogue import DEFAULT_EVENT_TYPES
from hookstream_common.delivery import Attempt
from hookstream_common.events import Event
from hookstream_common.history import Outcome, summarise
from hookstream_common.operational import (
    CERTIFICATE_EXPIRING,
    DELIVERY_EXHAUSTED,
    WEBHOOK_DISABLED,
    WEBHOOK_RECOVERED,
    Subject,
    certificate_expiring,
    delivery_exhausted,
    outcome_notices,
    subject_of,
    webhook_disabled,
    webhook_recovered,
)
from hookstream_common.routing import Route, TenantRoutes
from hookstream_dev.events import sample_event

START = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
FAILING = Subject("w-failing", "t-1", "orders", "u-1")
CREATED = "com.qlik.v1.app.created"


def outcome(
    status_code: int, second: int = 0, webhook_id: str = FAILING.id, **fields: object
) -> Outcome:
    attempt = Attempt(START + timedelta(seconds=second), 1.0, status_code=status_code)
    made = Outcome(
        delivery_id=f"d-{webhook_id}-{second}",
        tenant_id="t-1",
        webhook_id=webhook_id,
        event=Event.from_legacy(sample_event(CREATED, "t-1")),
        cloud_event=False,
        status="success" if attempt.succeeded else "fail",
        status_message=attempt.status_message(),
        triggered_at=START,
        request={"url": "https://user:pass@hooks.example.com/x", "headers": {}},
        attempt_number=4,
        attempt=attempt,
    )
    return replace(made, **fields)  # type: ignore[arg-type]


def route(webhook_id: str, level: str = "tenant", owner_id: str = "admin") -> Route:
    return Route(webhook_id, tuple(t.name for t in DEFAULT_EVENT_TYPES), level, owner_id, True)


def test_the_catalogue_groups_them_under_webhooks_for_both_levels() -> None:
    ours = [t for t in DEFAULT_EVENT_TYPES if t.category == "webhooks"]
    assert [t.name for t in ours] == [
        WEBHOOK_DISABLED,
        DELIVERY_EXHAUSTED,
        WEBHOOK_RECOVERED,
        CERTIFICATE_EXPIRING,
    ]
    assert all(t.levels == ("tenant", "user") and t.title for t in ours)


def test_an_expiring_certificate_is_one_event_per_certificate_about_its_webhook() -> None:
    not_after = START + timedelta(days=9, hours=12)
    event = certificate_expiring(FAILING, "CN=client", not_after, START)
    assert subject_of(event) == "w-failing"
    assert event.data == {
        "id": "w-failing",
        "name": FAILING.name,
        "certificateSubject": "CN=client",
        "notAfter": "2026-12-16T00:00:00.000Z",
        "daysLeft": 9,
    }
    assert certificate_expiring(FAILING, "CN=client", not_after, START + timedelta(days=1)).id == (
        event.id
    ), "raised again on a later pass: the same event id, so delivered once"
    renewed = certificate_expiring(FAILING, "CN=client", not_after + timedelta(days=90), START)
    assert renewed.id != event.id


def test_a_disabled_event_is_a_qlik_style_event_about_its_webhook() -> None:
    event = webhook_disabled(FAILING, "DELIVERY_FAILURES", "Every delivery failed.", START)
    legacy = event.to_legacy()
    assert legacy["eventType"] == WEBHOOK_DISABLED and legacy["cloudEventsVersion"] == "0.1"
    assert legacy["eventTime"] == "2026-12-06T12:00:00.000Z"
    assert legacy["extensions"] == {
        "tenantId": "t-1",
        "ownerId": "u-1",
        "topLevelResourceId": "w-failing",
    }
    assert legacy["data"] == {
        "id": "w-failing",
        "name": "orders",
        "disabledReasonCode": "DELIVERY_FAILURES",
        "disabledReason": "Every delivery failed.",
    }
    assert Event.parse(event.render(cloud_event=True)) == event, "valid in both shapes"
    assert subject_of(event) == "w-failing"


def test_an_exhausted_event_names_the_delivery_and_never_the_request() -> None:
    failed = outcome(503, exhausted=True)
    event = delivery_exhausted(FAILING, failed)
    assert event.data == {
        "id": "w-failing",
        "name": "orders",
        "deliveryId": failed.delivery_id,
        "eventId": failed.event.id,
        "eventType": CREATED,
        "triggeredAt": "2026-12-06T12:00:00.000Z",
        "attempts": 4,
        "lastStatusCode": 503,
        "lastErrorClass": None,
    }
    assert b"hooks.example.com" not in event.legacy_json and b"pass" not in event.legacy_json
    again = delivery_exhausted(FAILING, replace(failed, attempt=replace(failed.attempt)))
    assert again.id == event.id, "one event id per delivery, however often it is stored"


def test_a_batch_raises_exhausted_per_delivery_failed_for_good() -> None:
    batch = [outcome(503, 1, exhausted=True), outcome(503, 2), outcome(503, 3, exhausted=True)]
    notices = outcome_notices(batch, {}, recovered_after=5)
    events = [build(FAILING) for _, build in notices]
    assert [e.type for e in events] == [DELIVERY_EXHAUSTED, DELIVERY_EXHAUSTED]
    assert [e.data["deliveryId"] for e in events] == [batch[0].delivery_id, batch[2].delivery_id]


def test_a_delivery_carrying_an_operational_event_raises_no_exhausted() -> None:
    """Two failing webhooks subscribed to each other's trouble would otherwise trade exhausted
    events forever, each one's failure the other's next delivery."""
    news = webhook_disabled(Subject("w-other", "t-1", "other", "u-1"), "X", "y", START)
    assert outcome_notices([outcome(503, event=news, exhausted=True)], {}, 5) == []


@pytest.mark.parametrize(("ended", "raised"), [(4, False), (5, True), (40, True)])
def test_recovered_needs_a_success_ending_a_run_long_enough(ended: int, raised: bool) -> None:
    batch = [outcome(500, 1), outcome(200, 2), outcome(200, 3)]
    notices = outcome_notices(batch, {FAILING.id: ended}, recovered_after=5)
    assert len(notices) == int(raised)
    if raised:
        [(webhook_id, build)] = notices
        event = build(FAILING)
        assert webhook_id == FAILING.id and event.type == WEBHOOK_RECOVERED
        assert event.data["deliveryId"] == batch[1].delivery_id, "the first success"
        assert event.data["failedAttemptsBefore"] == ended
        assert event == webhook_recovered(FAILING, batch[1], ended)


def test_a_batch_counts_the_failures_before_its_first_success() -> None:
    runs = summarise(
        [outcome(500, 1), outcome(500, 2), outcome(200, 3), outcome(500, 4), outcome(200, 5)]
    )
    assert (runs[FAILING.id].reset, runs[FAILING.id].failures_before_success) == (True, 2)
    assert summarise([outcome(500, 1)])[FAILING.id].failures_before_success == 0


def test_a_webhook_never_receives_an_operational_event_about_itself() -> None:
    routes = TenantRoutes("t-1", (route("w-failing"), route("w-watcher")))
    for event in (
        webhook_disabled(FAILING, "ENDPOINT_GONE", "410", START),
        delivery_exhausted(FAILING, outcome(503, exhausted=True)),
        webhook_recovered(FAILING, outcome(200), 7),
    ):
        assert [r.id for r in routes.matching(event)] == ["w-watcher"], event.type


def test_only_operational_events_are_kept_from_their_subject() -> None:
    doc = sample_event(CREATED, "t-1")
    doc["extensions"]["topLevelResourceId"] = "w-failing"
    event = Event.parse(orjson.dumps(doc))
    assert subject_of(event) is None
    assert route("w-failing").accepts(event)


def test_user_level_webhooks_hear_only_about_webhooks_their_owner_owns() -> None:
    event = webhook_disabled(FAILING, "ENDPOINT_GONE", "410", START)
    assert route("w-mine", level="user", owner_id="u-1").accepts(event)
    assert not route("w-theirs", level="user", owner_id="u-2").accepts(event)
    assert route("w-tenant", level="tenant", owner_id="u-2").accepts(event)
