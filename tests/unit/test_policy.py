"""The outcome rules, Retry-After and the retry schedule (hookstream_dispatcher.policy)."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from hookstream_common.delivery import Attempt
from hookstream_dispatcher.policy import RetryPolicy, Verdict, judge, retry_after_seconds

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def answered(status: int, **headers: str) -> Attempt:
    return Attempt(NOW, 12.0, status_code=status, headers=headers)


def failed(error_class: str) -> Attempt:
    return Attempt(NOW, 12.0, error="it broke", error_class=error_class)


@pytest.mark.parametrize(
    ("attempt", "verdict"),
    [
        (answered(200), Verdict.SUCCESS),
        (answered(204), Verdict.SUCCESS),
        (answered(299), Verdict.SUCCESS),
        (answered(301), Verdict.FAIL),
        (answered(302), Verdict.FAIL),
        (answered(400), Verdict.FAIL),
        (answered(404), Verdict.FAIL),
        (answered(408), Verdict.FAIL),
        (answered(410), Verdict.GONE),
        (answered(429), Verdict.RETRY),
        (answered(500), Verdict.RETRY),
        (answered(502), Verdict.RETRY),
        (answered(503), Verdict.RETRY),
        (answered(599), Verdict.RETRY),
        (failed("timeout"), Verdict.RETRY),
        (failed("connection"), Verdict.RETRY),
        (failed("dns"), Verdict.RETRY),
        (failed("tls"), Verdict.RETRY),
        (failed("tls-refused-by-receiver"), Verdict.RETRY),
        (failed("disconnected"), Verdict.RETRY),
        (failed("blocked"), Verdict.FAIL),
        (failed("config"), Verdict.FAIL),
    ],
    ids=lambda value: (
        str(value.status_code or value.error_class) if isinstance(value, Attempt) else None
    ),
)
def test_judge_follows_the_outcome_table(attempt: Attempt, verdict: Verdict) -> None:
    assert judge(attempt) is verdict


@pytest.mark.parametrize(
    ("attempt", "seconds"),
    [
        (answered(429, **{"Retry-After": "120"}), 120.0),
        (answered(503, **{"retry-after": " 7 "}), 7.0),
        (answered(503, **{"Retry-After": "Sat, 28 Nov 2026 12:01:30 GMT"}), 90.0),
        (answered(429, **{"Retry-After": "Sat, 28 Nov 2026 11:00:00 GMT"}), 0.0),
        (answered(429, **{"Retry-After": "soon"}), None),
        (answered(429, **{"Retry-After": "-5"}), None),
        (answered(429, **{"Retry-After": ""}), None),
        (answered(429), None),
        (answered(500, **{"Retry-After": "120"}), None),
        (answered(200, **{"Retry-After": "120"}), None),
        (failed("timeout"), None),
    ],
)
def test_retry_after_is_read_from_429_and_503_only(attempt: Attempt, seconds: float | None) -> None:
    assert retry_after_seconds(attempt, NOW) == seconds


POLICY = RetryPolicy.parse("5s,30s,2m", jitter=0.2)


def test_the_schedule_parses_into_growing_tiers() -> None:
    assert [(t.name, t.seconds) for t in POLICY.tiers] == [("5s", 5), ("30s", 30), ("2m", 120)]
    assert POLICY.max_attempts == 4
    assert [t.seconds for t in RetryPolicy.parse("1h, 3h").tiers] == [3600, 10800]


@pytest.mark.parametrize("schedule", ["5s,5s", "1m,30s", "5", "5d", "", "5s,,30s"])
def test_a_schedule_that_does_not_grow_or_parse_is_refused(schedule: str) -> None:
    with pytest.raises(ValueError, match="retry schedule"):
        RetryPolicy.parse(schedule)


def test_each_attempt_moves_to_the_next_tier_within_its_jitter() -> None:
    rng = random.Random(7)
    for attempt, tier in enumerate(POLICY.tiers, start=1):
        retry = POLICY.next(attempt, NOW, rng=rng)
        assert retry is not None and retry.tier == tier
        delay = (retry.due_at - NOW).total_seconds()
        assert tier.seconds * 0.8 <= delay <= tier.seconds * 1.2


def test_the_jitter_comes_from_the_rng() -> None:
    """Same seed, same times; the seeded draw is the one used, spread both ways."""
    first = [POLICY.next(1, NOW, rng=random.Random(seed)) for seed in range(50)]
    again = [POLICY.next(1, NOW, rng=random.Random(seed)) for seed in range(50)]
    assert first == again
    expected = [
        NOW + timedelta(seconds=5 * (1 + random.Random(seed).uniform(-0.2, 0.2)))
        for seed in range(50)
    ]
    assert [r.due_at for r in first if r] == expected
    assert min(expected) < NOW + timedelta(seconds=5) < max(expected)


def test_the_schedule_is_exhausted_after_the_last_tier() -> None:
    assert POLICY.next(POLICY.max_attempts - 1, NOW, rng=random.Random(1)) is not None
    assert POLICY.next(POLICY.max_attempts, NOW, rng=random.Random(1)) is None
    assert POLICY.next(POLICY.max_attempts + 3, NOW, rng=random.Random(1)) is None


@pytest.mark.parametrize("seed", range(20))
def test_retry_after_moves_up_to_a_long_enough_tier_and_never_earlier(seed: int) -> None:
    retry = POLICY.next(1, NOW, retry_after=40, rng=random.Random(seed))
    assert retry is not None and retry.tier.name == "2m"
    assert NOW + timedelta(seconds=120) <= retry.due_at <= NOW + timedelta(seconds=144)


def test_retry_after_beyond_the_schedule_takes_the_last_tier() -> None:
    retry = POLICY.next(1, NOW, retry_after=86400, rng=random.Random(3))
    assert retry is not None and retry.tier.name == "2m"


def test_a_retry_after_shorter_than_the_tier_changes_nothing() -> None:
    plain = POLICY.next(2, NOW, rng=random.Random(11))
    assert POLICY.next(2, NOW, retry_after=3, rng=random.Random(11)) == plain
    assert plain is not None and plain.tier.name == "30s"
