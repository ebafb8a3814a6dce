"""`DeliveryJob`'s constructors, one per cause: event, retry, resend, recover, test."""

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from hookstream_common.events import Event
from hookstream_common.jobs import LEGACY_ATTEMPT_KEY, DeliveryJob, delivery_id_for
from hookstream_dev.events import sample_event

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
WEBHOOK = "9b2f7c1e-3d4a-4e5f-8a6b-7c8d9e0f1a2b"
EVENT = Event.parse(orjson.dumps(sample_event("com.qlik.v1.app.created", "t-1")))


def test_an_event_makes_a_first_attempt_with_a_stable_id() -> None:
    job = DeliveryJob.for_event(WEBHOOK, EVENT, NOW)
    assert (job.delivery_id, job.tenant_id) == (delivery_id_for(WEBHOOK, EVENT.id), "t-1")
    assert (job.attempt_number, job.retry_base, job.due_at) == (1, 0, None)


def test_a_retry_is_the_same_delivery_one_attempt_on() -> None:
    first = DeliveryJob.for_event(WEBHOOK, EVENT, NOW)
    due = NOW + timedelta(seconds=30)
    retry = DeliveryJob.for_retry(DeliveryJob.for_retry(first, NOW), due)
    assert (retry.delivery_id, retry.triggered_at) == (first.delivery_id, first.triggered_at)
    assert (retry.attempt_number, retry.due_at, retry.retry_base) == (3, due, 0)
    assert DeliveryJob.loads(retry.dumps()) == retry


def test_a_resend_is_a_new_delivery_of_one_attempt() -> None:
    one = DeliveryJob.for_resend(WEBHOOK, "t-1", EVENT, NOW)
    other = DeliveryJob.for_resend(WEBHOOK, "t-1", EVENT, NOW)
    assert one.delivery_id != other.delivery_id
    assert one.delivery_id != delivery_id_for(WEBHOOK, EVENT.id)
    assert (one.attempt_number, one.retry_base, one.triggered_at) == (1, 0, NOW)


def test_a_recovery_restarts_the_schedule_after_the_attempts_made() -> None:
    job = DeliveryJob.for_recovery("d-1", WEBHOOK, "t-1", EVENT, NOW, attempts=7)
    assert (job.delivery_id, job.triggered_at) == ("d-1", NOW)
    assert (job.attempt_number, job.retry_base) == (8, 7)
    assert job.attempt_number - job.retry_base == 1  # the policy sees a first attempt
    assert DeliveryJob.loads(job.dumps()) == job


def test_a_test_is_a_new_event_marked_as_a_test_that_parses_back() -> None:
    one = DeliveryJob.for_test(WEBHOOK, "t-1", "com.qlik.v1.app.created", "u-1", NOW)
    other = DeliveryJob.for_test(WEBHOOK, "t-1", "com.qlik.v1.app.created", "u-1", NOW)
    assert one.event.id != other.event.id and one.delivery_id != other.delivery_id
    assert one.event.data["test"] is True
    assert (one.event.type, one.event.tenant_id, one.event.user_ids) == (
        "com.qlik.v1.app.created",
        "t-1",
        {"u-1"},
    )
    assert one.event.time == "2026-11-28T08:00:00.000Z"
    assert Event.parse(one.event.legacy_json) == one.event
    assert (one.attempt_number, one.retry_base, one.triggered_at) == (1, 0, NOW)


@pytest.mark.parametrize("webhook_id", ["w-1", "", 42, None])
def test_a_job_whose_webhook_id_is_no_webhook_id_is_refused(webhook_id: object) -> None:
    doc = orjson.loads(DeliveryJob.for_event(WEBHOOK, EVENT, NOW).dumps())
    with pytest.raises(ValueError, match="webhookId"):
        DeliveryJob.loads(orjson.dumps(doc | {"webhookId": webhook_id}))


def test_a_job_queued_before_the_rename_loads_with_its_attempt_number() -> None:
    retry = DeliveryJob.for_retry(DeliveryJob.for_event(WEBHOOK, EVENT, NOW), NOW)
    doc = orjson.loads(retry.dumps())
    assert doc["attemptNumber"] == doc[LEGACY_ATTEMPT_KEY] == 2  # what the previous release reads
    del doc["attemptNumber"]
    assert DeliveryJob.loads(orjson.dumps(doc)) == retry
