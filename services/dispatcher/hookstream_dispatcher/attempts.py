"""One job, one attempt: send it, judge the answer, schedule a retry, submit the outcome.

Errors never escape to the lane: an outage (Postgres or Kafka unreachable) holds the job until
it passes, and a job that can never be processed is parked on the dead-letter topic.
"""

import asyncio
import contextlib
from datetime import datetime

import aiohttp
import asyncpg
import prometheus_client
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from hookstream_common.delivery import Attempt, build_request, send
from hookstream_common.history import Outcome
from hookstream_common.jobs import DeliveryJob
from hookstream_common.parking import park
from hookstream_common.resilience import TRANSIENT, Backoff, keep_trying
from hookstream_common.webhook_model import DeliveryTarget, RateLimit
from hookstream_common.webhook_store import disable
from hookstream_dispatcher.policy import (
    Retry,
    RetryPolicy,
    Verdict,
    judge,
    retry_after_seconds,
    utcnow,
)
from hookstream_dispatcher.settings import DispatcherSettings
from hookstream_dispatcher.targets import TargetCache
from hookstream_dispatcher.writer import DISABLED, HistoryWriter

log = structlog.get_logger(__name__)

ATTEMPTS = prometheus_client.Counter(
    "hookstream_dispatcher_attempts_total", "Delivery attempts, by outcome class.", ["outcome"]
)
ATTEMPT_SECONDS = prometheus_client.Histogram(
    "hookstream_dispatcher_attempt_seconds",
    "Duration of one delivery request.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
END_TO_END_SECONDS = prometheus_client.Histogram(
    "hookstream_dispatcher_end_to_end_seconds",
    "From the event's time to the receiver's answer, first attempts.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
IN_FLIGHT = prometheus_client.Gauge(
    "hookstream_dispatcher_in_flight", "Delivery requests waiting for an answer."
)


class Attempts:
    """Turns delivery-topic records into attempts; `run(record)` is what a lane calls."""

    def __init__(
        self,
        settings: DispatcherSettings,
        pool: asyncpg.Pool,
        targets: TargetCache,
        writer: HistoryWriter,
        session: aiohttp.ClientSession,
        producer: AIOKafkaProducer,
    ) -> None:
        self._settings = settings
        self._policy: RetryPolicy = settings.retry_policy
        self._pool = pool
        self._targets = targets
        self._writer = writer
        self._session = session
        self._producer = producer
        self._slots = asyncio.Semaphore(settings.max_in_flight)

    async def rate_limit(self, webhook_id: str) -> RateLimit | None:
        """The webhook's own rate limit, else the configured default (None: no limit)."""
        target = await self._targets.get(webhook_id)
        own = target.rate_limit if target is not None else None
        return own or self._settings.default_rate_limit

    async def run(self, record: ConsumerRecord) -> asyncio.Future[None] | None:
        """Deliver one job; the future resolves when its outcome is stored.

        An outage (Postgres or Kafka unreachable) holds the job until it passes; a job that can
        never be processed is parked on the dead-letter topic and the lane moves on.
        """
        backoff = Backoff()
        while True:
            try:
                return await self._process(record)
            except TRANSIENT as exc:
                log.warning(
                    "job waits: a dependency is unavailable",
                    topic=record.topic,
                    offset=record.offset,
                    error_class=type(exc).__name__,
                    retry_in=backoff.delay,
                )
                await backoff.wait()
            except Exception as exc:
                log.exception("job parked: it cannot be processed", topic=record.topic)
                await park(
                    self._producer, self._settings.topics.dispatch_dlq, record, exc, "delivery"
                )
                return None

    async def _process(self, record: ConsumerRecord) -> asyncio.Future[None] | None:
        try:
            job = DeliveryJob.loads(record.value)
        except (ValueError, KeyError, TypeError) as exc:
            await park(self._producer, self._settings.topics.dispatch_dlq, record, exc, "delivery")
            return None
        target = await self._targets.get(job.webhook_id)
        bound = log.bind(
            tenant_id=job.tenant_id,
            webhook_id=job.webhook_id,
            delivery_id=job.delivery_id,
            event_id=job.event.id,
            attempt=job.attempt,
        )
        if target is None or not target.enabled:
            bound.info("job dropped: the webhook is deleted or disabled")
            return None
        return await self.deliver(job, target, bound)

    async def deliver(
        self, job: DeliveryJob, target: DeliveryTarget, bound: structlog.BoundLogger
    ) -> asyncio.Future[None]:
        """One attempt: send, schedule a retry if due, submit the outcome, apply 410."""
        request = build_request(target, job.event, job.delivery_id, self._settings.user_agent)
        async with self._slots:
            IN_FLIGHT.inc()
            try:
                attempt = await send(self._session, request)
            finally:
                IN_FLIGHT.dec()
        verdict = judge(attempt)
        retry = None
        if verdict is Verdict.RETRY:
            retry = self._policy.next(
                job.attempt - job.retry_base, utcnow(), retry_after_seconds(attempt, utcnow())
            )
            if retry is not None:
                await keep_trying(
                    lambda: self._producer.send_and_wait(
                        self._settings.topics.retry(retry.tier.name),
                        DeliveryJob.for_retry(job, retry.due_at).dumps(),
                        key=job.webhook_id.encode(),
                    ),
                    "Kafka (scheduling a retry)",
                )
        self._observe(job, attempt, verdict)
        stored = self._writer.submit(
            Outcome(
                delivery_id=job.delivery_id,
                tenant_id=job.tenant_id,
                webhook_id=job.webhook_id,
                event=job.event,
                cloud_event=target.cloud_event,
                status="success" if verdict is Verdict.SUCCESS else "fail",
                status_message=self._message(job, attempt, verdict, retry),
                triggered_at=job.triggered_at,
                request=request.as_history(),
                attempt_number=job.attempt,
                attempt=attempt,
                next_attempt_at=retry.due_at if retry else None,
            )
        )
        bound.info(
            "delivery attempted",
            verdict=verdict.value,
            status_code=attempt.status_code,
            error_class=attempt.error_class,
            duration_ms=round(attempt.duration_ms, 1),
            retry_tier=retry.tier.name if retry else None,
        )
        if verdict is Verdict.GONE:
            reason = f"The endpoint answered 410 Gone on {utcnow():%Y-%m-%d %H:%M} UTC."
            gone = await keep_trying(
                lambda: disable(self._pool, job.webhook_id, "ENDPOINT_GONE", reason),
                "Postgres (disabling a gone webhook)",
            )
            if gone:
                DISABLED.labels("ENDPOINT_GONE").inc()
                bound.warning("webhook disabled", code="ENDPOINT_GONE")
        return stored

    def _message(
        self, job: DeliveryJob, attempt: Attempt, verdict: Verdict, retry: Retry | None
    ) -> str:
        message = attempt.status_message()
        if verdict is Verdict.GONE:
            return f"{message} The webhook was disabled: the endpoint is gone."
        if retry is not None:
            total = self._policy.max_attempts + job.retry_base
            return f"{message} Attempt {job.attempt} of {total}; next in about {retry.tier.name}."
        if verdict is Verdict.RETRY:
            return f"{message} Failed for good after {job.attempt} attempts."
        return message

    @staticmethod
    def _observe(job: DeliveryJob, attempt: Attempt, verdict: Verdict) -> None:
        ATTEMPTS.labels(verdict.value).inc()
        ATTEMPT_SECONDS.observe(attempt.duration_ms / 1000)
        if job.attempt == 1 and attempt.status_code is not None:
            with contextlib.suppress(ValueError):
                event_time = datetime.fromisoformat(job.event.time)
                END_TO_END_SECONDS.observe((utcnow() - event_time).total_seconds())
