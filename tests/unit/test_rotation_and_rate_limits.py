"""Hookstream extensions: the secret rotation rule, signatures with two secrets, a lane's rate
limit, and the health a batch of outcomes leaves."""

import asyncio
import base64
import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from hookstream_common.delivery import Attempt, build_request
from hookstream_common.events import Event
from hookstream_common.history import Outcome, summarise
from hookstream_common.secret_rotation import PreviousSecret, after_change
from hookstream_common.signing import qlik_signature
from hookstream_common.webhook_model import DeliveryTarget, RateLimit
from hookstream_dev.events import sample_event
from hookstream_dispatcher.lanes import Lane
from hookstream_dispatcher.rate_limits import Throttle

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
OLD, NEW, NEWER = "o" * 32, "n" * 32, "w" * 32
DAY = 86400
EVENT = Event.parse(orjson.dumps(sample_event("com.qlik.v1.app.created", "t-1")))


# --- the rotation rule ------------------------------------------------------------------------


def test_a_new_secret_keeps_the_one_it_replaces_for_the_grace() -> None:
    kept = after_change(OLD, NEW, None, DAY, NOW)
    assert kept == PreviousSecret(OLD, NOW + timedelta(days=1))


def test_an_unchanged_secret_keeps_a_running_window() -> None:
    window = PreviousSecret(OLD, NOW + timedelta(hours=5))
    assert after_change(NEW, NEW, window, DAY, NOW) == window


def test_a_shorter_grace_shortens_the_window_and_zero_ends_it() -> None:
    window = PreviousSecret(OLD, NOW + timedelta(hours=5))
    shortened = PreviousSecret(OLD, NOW + timedelta(seconds=60))
    assert after_change(NEW, NEW, window, 60, NOW) == shortened
    assert after_change(NEW, NEW, window, 0, NOW) is None
    assert after_change(OLD, NEW, None, 0, NOW) is None


def test_a_second_rotation_keeps_only_the_secret_it_replaced() -> None:
    window = PreviousSecret(OLD, NOW + timedelta(hours=5))
    assert after_change(NEW, NEWER, window, DAY, NOW) == PreviousSecret(NEW, NOW + timedelta(1))
    # rolling back is a rotation too: the secret rolled back from is the previous one now
    assert after_change(NEW, OLD, window, DAY, NOW) == PreviousSecret(NEW, NOW + timedelta(1))


@pytest.mark.parametrize(
    ("current", "new", "kept"),
    [
        (None, NEW, None),  # a first secret replaces nothing
        (OLD, None, PreviousSecret(NEW, NOW + timedelta(hours=1))),  # removed: no signing at all
        (NEW, NEW, PreviousSecret(OLD, NOW - timedelta(seconds=1))),  # the window is over
    ],
    ids=["first secret", "secret removed", "expired"],
)
def test_no_previous_secret(
    current: str | None, new: str | None, kept: PreviousSecret | None
) -> None:
    assert after_change(current, new, kept, DAY, NOW) is None


def test_a_previous_secret_never_shows_in_its_repr() -> None:
    assert OLD not in repr(PreviousSecret(OLD, NOW))


# --- signatures during and after the window ---------------------------------------------------


def _target(previous: PreviousSecret | None) -> DeliveryTarget:
    return DeliveryTarget(
        webhook_id="w-1",
        tenant_id="t-1",
        url="https://hooks.example.com/x",
        headers={},
        encrypted_headers={},
        secret=NEW,
        enabled=True,
        cloud_event=False,
        previous_secret=previous,
    )


def _verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    receiver = StandardWebhook(base64.b64encode(secret.encode()).decode())
    try:
        receiver.verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


def test_during_the_window_both_secrets_verify_and_qlik_signature_uses_the_new() -> None:
    in_window = PreviousSecret(OLD, datetime.now(UTC) + timedelta(hours=1))
    request = build_request(_target(in_window), EVENT, "d-1", "Qlik Webhook")
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert _verifies(NEW, request.headers, request.body)
    assert _verifies(OLD, request.headers, request.body)
    assert request.headers["Qlik-Signature"] == qlik_signature(NEW, request.body)
    assert not _verifies("x" * 32, request.headers, request.body)


def test_after_the_window_only_the_new_secret_verifies() -> None:
    over = PreviousSecret(OLD, datetime.now(UTC) - timedelta(seconds=1))
    request = build_request(_target(over), EVENT, "d-1", "Qlik Webhook")
    assert " " not in request.headers["webhook-signature"]
    assert _verifies(NEW, request.headers, request.body)
    assert not _verifies(OLD, request.headers, request.body)


# --- the rate limit in a lane -----------------------------------------------------------------


def _record(offset: int) -> ConsumerRecord:
    return ConsumerRecord("t", 0, offset, 0, 0, None, b"", 0, 0, 0, [])


async def _run_lane(limit: RateLimit | None, jobs: int, concurrency: int = 8) -> list[float]:
    """Start times of `jobs` jobs queued at once in a lane limited by `limit`."""
    started: list[float] = []
    finished = asyncio.Event()

    async def deliver(record: ConsumerRecord) -> None:
        started.append(time.monotonic())
        if len(started) == jobs:
            finished.set()

    async def limit_of() -> RateLimit | None:
        return limit

    lane = Lane(
        TopicPartition("t", 0), deliver, lambda _: None, concurrency, 1000, Throttle(limit_of)
    ).start()
    lane.add([_record(i) for i in range(jobs)])
    await asyncio.wait_for(finished.wait(), 10)
    lane.close()
    await lane.task
    return started


async def test_a_lane_starts_a_burst_then_keeps_to_the_rate() -> None:
    started = await _run_lane(RateLimit(per_second=20, burst=5), jobs=25)
    offsets = [t - started[0] for t in started]
    assert offsets[4] < 0.05  # the burst goes at once
    # the other 20 follow at 20/s: the last one 1 s after the burst
    assert 0.9 <= offsets[-1] <= 1.15, offsets
    rate = (len(started) - 5) / (started[-1] - started[4])
    assert 18 <= rate <= 21, rate


async def test_a_lane_without_a_limit_does_not_wait() -> None:
    started = await _run_lane(None, jobs=200)
    assert started[-1] - started[0] < 0.5


async def test_a_limit_change_applies_from_the_next_job() -> None:
    limits = [RateLimit(per_second=2, burst=1)]
    throttle = Throttle(lambda: _now(limits[0]))
    closed = asyncio.Event()
    assert await throttle.wait(closed)
    limits[0] = RateLimit(per_second=1000, burst=100)
    clock = time.monotonic()
    for _ in range(50):
        assert await throttle.wait(closed)
    assert time.monotonic() - clock < 0.2


async def test_closing_the_lane_ends_a_wait_for_a_token() -> None:
    throttle = Throttle(lambda: _now(RateLimit(per_second=0.01, burst=1)))
    closed = asyncio.Event()
    assert await throttle.wait(closed)
    waiting = asyncio.create_task(throttle.wait(closed))
    done, _ = await asyncio.wait({waiting}, timeout=0.05)
    assert not done, "the second token is 100 s away: the task waits for it"
    closed.set()
    assert await asyncio.wait_for(waiting, 1) is False


async def _now(limit: RateLimit | None) -> RateLimit | None:
    return limit


# --- health -----------------------------------------------------------------------------------


def _outcome(webhook_id: str, status_code: int, second: int) -> Outcome:
    attempt = Attempt(NOW + timedelta(seconds=second), 1.0, status_code=status_code)
    return Outcome(
        delivery_id=f"d{second}",
        tenant_id="t",
        webhook_id=webhook_id,
        event=EVENT,
        cloud_event=False,
        status="success" if attempt.succeeded else "fail",
        status_message=attempt.status_message(),
        triggered_at=NOW,
        request={},
        attempt_number=1,
        attempt=attempt,
    )


def test_a_batch_leaves_each_webhooks_latest_attempt_whatever_the_order() -> None:
    runs = summarise(
        [_outcome("a", 500, 3), _outcome("a", 200, 1), _outcome("b", 200, 2), _outcome("b", 503, 4)]
    )
    assert (runs["a"].last_at, runs["a"].last_status) == (NOW + timedelta(seconds=3), "fail")
    assert (runs["b"].last_at, runs["b"].last_status) == (NOW + timedelta(seconds=4), "fail")
    ok = summarise([_outcome("a", 500, 1), _outcome("a", 204, 2)])
    assert (ok["a"].last_status, ok["a"].failures) == ("success", 0)
