from datetime import UTC, datetime, timedelta

from hookstream_common.delivery import Attempt
from hookstream_common.events import Event
from hookstream_common.history import Outcome, summarise
from hookstream_common.sdk import sample_event

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
