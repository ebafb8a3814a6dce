"""The health rollups' pure logic: which changes a write makes, and how they are bucketed."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hookstream_common.delivery import Attempt
from hookstream_common.events import Event
from hookstream_common.health_counts import (
    HORIZON,
    Change,
    Counts,
    attempt_changes,
    buckets,
    due_changes,
)
from hookstream_common.history import Outcome, rounds
from hookstream_dev.events import sample_event

NOW = datetime(2026, 12, 6, 10, 30, 15, tzinfo=UTC)


def test_an_attempt_stored_again_moves_its_count() -> None:
    earlier, later = NOW - timedelta(minutes=5), NOW
    rows = [
        {"webhook_id": "w", "started_at": earlier, "status_code": 200, "old_started_at": None,
         "old_status_code": None},
        {"webhook_id": "w", "started_at": later, "status_code": 500, "old_started_at": earlier,
         "old_status_code": 200},
    ]  # fmt: skip
    sums = buckets(attempt_changes(rows), NOW)
    assert sums == {
        ("w", "hour", datetime(2026, 12, 6, 10, tzinfo=UTC)): Counts(attempts=1),
        ("w", "minute", datetime(2026, 12, 6, 10, 30, tzinfo=UTC)): Counts(attempts=1),
    }, "the success at 10:25 is undone, the failure at 10:30 counted; 10:25 sums to nothing"


def test_a_failed_delivery_is_pending_where_its_next_attempt_is_due() -> None:
    due, later = NOW + timedelta(hours=2), NOW + timedelta(hours=3)
    rows = [
        {"webhook_id": "w", "status": "fail", "next_attempt_at": due, "old_status": None,
         "old_next_attempt_at": None},
        {"webhook_id": "w", "status": "fail", "next_attempt_at": later, "old_status": "fail",
         "old_next_attempt_at": due},
        {"webhook_id": "v", "status": "success", "next_attempt_at": None, "old_status": "fail",
         "old_next_attempt_at": due},
    ]  # fmt: skip
    sums = buckets(due_changes(rows), NOW)
    assert sums == {
        ("v", "hour", datetime(2026, 12, 6, 12, tzinfo=UTC)): Counts(retries_due=-1),
        ("v", "minute", datetime(2026, 12, 6, 12, 30, tzinfo=UTC)): Counts(retries_due=-1),
        ("w", "hour", datetime(2026, 12, 6, 13, tzinfo=UTC)): Counts(retries_due=1),
        ("w", "minute", datetime(2026, 12, 6, 13, 30, tzinfo=UTC)): Counts(retries_due=1),
    }


def test_buckets_are_sorted_in_utc_and_leave_out_what_no_window_reads() -> None:
    kolkata = (NOW - timedelta(minutes=1)).astimezone(ZoneInfo("Asia/Kolkata"))
    changes = [
        Change("b", NOW, Counts(attempts=1, succeeded=1)),
        Change("a", kolkata, Counts(attempts=1)),
        Change("a", NOW - HORIZON - timedelta(seconds=1), Counts(attempts=-1)),
    ]
    assert list(buckets(changes, NOW)) == [
        ("a", "hour", datetime(2026, 12, 6, 10, tzinfo=UTC)),
        ("a", "minute", datetime(2026, 12, 6, 10, 29, tzinfo=UTC)),
        ("b", "hour", datetime(2026, 12, 6, 10, tzinfo=UTC)),
        ("b", "minute", datetime(2026, 12, 6, 10, 30, tzinfo=UTC)),
    ]


def _outcome(delivery_id: str, number: int) -> Outcome:
    attempt = Attempt(started_at=NOW, duration_ms=1.0, status_code=500)
    return Outcome(
        delivery_id=delivery_id,
        tenant_id="t",
        webhook_id="w",
        event=Event.from_legacy(sample_event("com.qlik.v1.app.created", "t", "u1")),
        cloud_event=False,
        status="fail",
        status_message="",
        triggered_at=NOW,
        request={},
        attempt_number=number,
        attempt=attempt,
    )


def test_rounds_hold_each_row_once_and_keep_its_order() -> None:
    a1, b1, a2, a3, c1 = (
        _outcome(d, n) for d, n in (("a", 1), ("b", 1), ("a", 2), ("a", 3), ("c", 1))
    )
    split = rounds([a1, b1, a2, a3, c1], lambda o: o.delivery_id)
    assert split == [[a1, b1, c1], [a2], [a3]]
    assert rounds([a1, a2], lambda o: (o.delivery_id, o.attempt_number)) == [[a1, a2]]
