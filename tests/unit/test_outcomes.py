"""The history writer's run of failures per webhook, and the auto-disable decision on it."""

from datetime import UTC, datetime, timedelta

import pytest

from hookstream_common.delivery import Attempt
from hookstream_common.events import Event
from hookstream_common.history import FailureRun, Outcome, summarise
from hookstream_dev.events import sample_event
from hookstream_dispatcher.policy import utcnow
from hookstream_dispatcher.writer import HistoryWriter

START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def outcome(webhook_id: str, status_code: int, second: int) -> Outcome:
    attempt = Attempt(START + timedelta(seconds=second), 1.0, status_code=status_code)
    return Outcome(
        delivery_id=f"d{second}",
        tenant_id="t",
        webhook_id=webhook_id,
        event=Event.from_legacy(sample_event("com.qlik.v1.app.created", "t")),
        cloud_event=False,
        status="success" if attempt.succeeded else "fail",
        status_message=attempt.status_message(),
        triggered_at=START,
        request={},
        attempt_number=1,
        attempt=attempt,
    )


def test_a_batch_counts_the_failures_after_each_webhooks_last_success() -> None:
    runs = summarise(
        [
            outcome("a", 500, 1),
            outcome("a", 200, 2),
            outcome("a", 503, 3),
            outcome("a", 400, 4),
            outcome("b", 500, 5),
            outcome("b", 500, 6),
        ]
    )
    assert (runs["a"].reset, runs["a"].failures) == (True, 2)
    assert runs["a"].failing_since == START + timedelta(seconds=3)
    assert (runs["b"].reset, runs["b"].failures) == (False, 2)
    assert runs["b"].failing_since == START + timedelta(seconds=5)


def test_a_success_alone_resets_the_run() -> None:
    runs = summarise([outcome("a", 204, 1)])
    assert (runs["a"].reset, runs["a"].failures, runs["a"].failing_since) == (True, 0, None)


def test_webhooks_in_one_batch_keep_runs_of_their_own() -> None:
    runs = summarise(
        [outcome("a", 500, 1), outcome("b", 200, 2), outcome("a", 410, 3), outcome("b", 302, 4)]
    )
    assert (runs["a"].reset, runs["a"].failures) == (False, 2)
    assert runs["a"].failing_since == START + timedelta(seconds=1)
    assert (runs["b"].reset, runs["b"].failures) == (True, 1)
    assert runs["b"].failing_since == START + timedelta(seconds=4)


@pytest.mark.parametrize(
    ("failures", "failing_for", "disabled"),
    [
        (10, timedelta(hours=25), True),
        (10, timedelta(hours=24), True),
        (9, timedelta(hours=25), False),
        (10, timedelta(hours=23), False),
        (500, timedelta(minutes=1), False),
    ],
)
def test_a_run_disables_its_webhook_only_when_long_and_long_enough(
    failures: int, failing_for: timedelta, disabled: bool
) -> None:
    writer = HistoryWriter(pool=None, disable_after=timedelta(hours=24), min_failures=10)  # type: ignore[arg-type]
    run = FailureRun("w", failures, utcnow() - failing_for)
    assert writer._should_disable(run) is disabled
    assert writer._should_disable(FailureRun("w", failures, None)) is False
