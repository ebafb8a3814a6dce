from datetime import UTC, date, datetime, timedelta

from hookstream_janitor.housekeeping import expired, partition_day

WEEK = timedelta(days=7)


def test_partition_names() -> None:
    assert partition_day("deliveries_p20261231") == date(2026, 12, 31)
    assert partition_day("event_bodies_p20270101") == date(2027, 1, 1)
    assert partition_day("delivery_attempts_p20260228") == date(2026, 2, 28)
    assert partition_day("webhooks") is None
    assert partition_day("other_p20260101") is None


def test_a_day_is_dropped_only_when_all_of_it_is_past_retention() -> None:
    days = [date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)]
    # Retention reaches back to 2026-11-21T00:00 exactly: the 20th is wholly older.
    now = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
    assert expired(days, now, WEEK) == [date(2026, 11, 20)]
    # One microsecond earlier, the last moment of the 20th is still inside retention.
    assert expired(days, now - timedelta(microseconds=1), WEEK) == []
    # Late in the day the 21st still holds rows younger than seven days.
    assert expired(days, datetime(2026, 11, 28, 23, 59, tzinfo=UTC), WEEK) == [date(2026, 11, 20)]
    assert expired(days, datetime(2026, 11, 29, 0, 0, tzinfo=UTC), WEEK) == days[:2]


def test_retention_is_configurable() -> None:
    days = [date(2026, 12, 31), date(2027, 1, 1)]
    now = datetime(2027, 1, 2, 12, 0, tzinfo=UTC)
    assert expired(days, now, timedelta(hours=12)) == days
    assert expired(days, now, timedelta(days=1)) == [date(2026, 12, 31)]
