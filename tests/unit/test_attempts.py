"""The dispatcher's attempt steps without Kafka or Postgres: what each step does with a failure,
and that nothing after the send parks a job or sends it again."""

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY

from hookstream_common.delivery import Attempt, OutboundRequest
from hookstream_common.events import Event
from hookstream_common.history import Outcome
from hookstream_common.jobs import DeliveryJob
from hookstream_common.webhook_model import DeliveryTarget
from hookstream_dev.events import sample_event
from hookstream_dispatcher.attempts import Attempts
from hookstream_dispatcher.settings import DispatcherSettings

WEBHOOK = str(uuid.uuid4())
SETTINGS = DispatcherSettings()
DLQ = SETTINGS.topics.dispatch_dlq


class Producer:
    """Keeps what was sent, by topic; `failing` topics raise instead."""

    def __init__(self, failing: dict[str, Exception] | None = None) -> None:
        self.sent: dict[str, list[bytes]] = {}
        self.failing = failing or {}

    async def send_and_wait(self, topic: str, value: bytes, **_: Any) -> None:
        for prefix, error in self.failing.items():
            if topic.startswith(prefix):
                raise error
        self.sent.setdefault(topic, []).append(value)


class Writer:
    def __init__(self, error: Exception | None = None) -> None:
        self.outcomes: list[Outcome] = []
        self.error = error

    def submit(self, outcome: Outcome) -> asyncio.Future[None]:
        if self.error:
            raise self.error
        self.outcomes.append(outcome)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class Targets:
    def __init__(self, enabled: bool = True) -> None:
        self.target = DeliveryTarget(
            webhook_id=WEBHOOK,
            tenant_id="t",
            url="https://receiver.example.com/hook",
            headers={},
            encrypted_headers={},
            secret=None,
            enabled=enabled,
            cloud_event=False,
        )

    async def get(self, webhook_id: str) -> DeliveryTarget | None:
        return self.target if webhook_id == WEBHOOK else None


class Receiver:
    """Answers each request with `status`, or raises `error`; counts the sends."""

    def __init__(self, status: int = 200, error: Exception | None = None) -> None:
        self.status, self.error, self.sends = status, error, 0

    async def __call__(self, request: OutboundRequest) -> Attempt:
        self.sends += 1
        if self.error:
            raise self.error
        return Attempt(started_at=datetime.now(UTC), duration_ms=1.0, status_code=self.status)


class Disabler:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.error = error

    async def __call__(self, webhook_id: str, code: str, reason: str) -> bool:
        self.calls.append((webhook_id, code))
        if self.error:
            raise self.error
        return True


def record(value: bytes | None = None) -> ConsumerRecord:
    if value is None:
        event = Event.from_legacy(sample_event("com.qlik.v1.app.created", "t", "u1"))
        value = DeliveryJob.for_event(WEBHOOK, event, datetime.now(UTC)).dumps()
    topic = SETTINGS.topics.deliveries(WEBHOOK)
    return ConsumerRecord(topic, 0, 7, 0, 0, WEBHOOK.encode(), value, None, 0, len(value), [])


def attempts(
    receiver: Receiver,
    producer: Producer | None = None,
    writer: Writer | None = None,
    disabler: Disabler | None = None,
    targets: Targets | None = None,
) -> Attempts:
    return Attempts(
        SETTINGS,
        targets or Targets(),  # type: ignore[arg-type]
        writer or Writer(),  # type: ignore[arg-type]
        producer or Producer(),  # type: ignore[arg-type]
        send=receiver,
        disable=disabler or Disabler(),
    )


def failures(step: str) -> float:
    value = REGISTRY.get_sample_value("hookstream_dispatcher_step_failures_total", {"step": step})
    return value or 0.0


async def test_a_success_is_recorded_and_nothing_else_is_queued() -> None:
    producer, writer = Producer(), Writer()
    stored = await attempts(Receiver(200), producer, writer).run(record())
    assert stored is not None and stored.done()
    assert [o.status for o in writer.outcomes] == ["success"]
    assert writer.outcomes[0].next_attempt_at is None and producer.sent == {}


async def test_a_retryable_failure_is_scheduled_then_recorded_with_its_due_time() -> None:
    producer, writer = Producer(), Writer()
    await attempts(Receiver(503), producer, writer).run(record())
    [retry_topic] = producer.sent
    assert retry_topic.startswith(f"{SETTINGS.topics.prefix}.retry.")
    [stored] = writer.outcomes
    assert stored.status == "fail" and stored.next_attempt_at is not None
    assert "Attempt 1 of" in stored.status_message


async def test_a_failing_side_effect_after_the_send_neither_parks_nor_resends() -> None:
    receiver, producer, writer = Receiver(410), Producer(), Writer()
    disabler = Disabler(RuntimeError("boom"))
    before = failures("disable")
    stored = await attempts(receiver, producer, writer, disabler).run(record())
    assert stored is not None, "the job is done, not parked"
    assert disabler.calls == [(WEBHOOK, "ENDPOINT_GONE")]
    assert receiver.sends == 1 and DLQ not in producer.sent
    assert [o.status for o in writer.outcomes] == ["fail"]
    assert failures("disable") == before + 1


async def test_an_unexpected_error_in_the_send_is_a_failed_attempt_that_is_retried() -> None:
    producer, writer = Producer(), Writer()
    await attempts(Receiver(error=RuntimeError("bug")), producer, writer).run(record())
    [stored] = writer.outcomes
    assert stored.attempt.error_class == "internal" and stored.next_attempt_at is not None
    assert "bug" not in stored.status_message, "the error's text is not shown"
    assert DLQ not in producer.sent and len(producer.sent) == 1


async def test_a_retry_that_cannot_be_queued_fails_the_delivery_for_good() -> None:
    retry_prefix = f"{SETTINGS.topics.prefix}.retry."
    producer, writer = Producer({retry_prefix: ValueError("too large")}), Writer()
    receiver = Receiver(500)
    stored = await attempts(receiver, producer, writer).run(record())
    assert stored is not None and receiver.sends == 1
    [outcome] = writer.outcomes
    assert outcome.next_attempt_at is None
    assert "Failed for good after 1 attempts" in outcome.status_message
    assert producer.sent == {}, "not parked either"


async def test_an_outcome_that_cannot_be_submitted_leaves_the_job_done() -> None:
    receiver, producer = Receiver(200), Producer()
    before = failures("record")
    stored = await attempts(receiver, producer, Writer(RuntimeError("full"))).run(record())
    assert stored is not None and stored.done()
    assert receiver.sends == 1 and producer.sent == {}
    assert failures("record") == before + 1


@pytest.mark.parametrize("value", [b"not json", b'{"webhookId": "x"}'])
async def test_a_malformed_job_is_parked_before_anything_is_sent(value: bytes) -> None:
    receiver, producer = Receiver(), Producer()
    assert await attempts(receiver, producer).run(record(value)) is None
    assert receiver.sends == 0 and len(producer.sent[DLQ]) == 1


async def test_a_job_of_a_disabled_webhook_is_dropped_unsent() -> None:
    receiver, producer, writer = Receiver(), Producer(), Writer()
    stored = await attempts(receiver, producer, writer, targets=Targets(enabled=False)).run(
        record()
    )
    assert stored is None and receiver.sends == 0
    assert producer.sent == {} and writer.outcomes == []
