"""One job, one attempt, in named steps: prepare → send → judge → schedule retry → record →
side effects (issue 21; the way Svix's worker reads).

Each step handles its own failures, and where it stands decides how:
- before the send (prepare), nothing has been sent: an outage (Postgres or Kafka unreachable)
  holds the job until it passes, and a job that can never be processed is parked on the
  dead-letter topic;
- from the send on, the job is never parked and never sent again: sending and judging do not
  raise (an unexpected error is a failed attempt, retried like a lost connection), scheduling a
  retry waits out outages (a retry that still cannot be queued makes the delivery fail for
  good, and says so), and a failure to record or of a side effect (metrics, the log line,
  disabling a gone webhook) is logged and counted, never raised.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import prometheus_client
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext

from hookstream_common import tracing
from hookstream_common.delivery import Attempt, OutboundRequest, Sender, build_request
from hookstream_common.history import Outcome
from hookstream_common.jobs import DeliveryJob
from hookstream_common.parking import park
from hookstream_common.resilience import TRANSIENT, Backoff, keep_trying
from hookstream_common.webhook_model import DeliveryTarget, RateLimit
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
STEP_FAILURES = prometheus_client.Counter(
    "hookstream_dispatcher_step_failures_total",
    "Errors in a step after the send (the job is neither parked nor sent again), by step.",
    ["step"],
)

Disabler = Callable[[str, str, str], Awaitable[bool]]
"""Disables a webhook with a code and reason (`webhook_store.disable` on the pool)."""


@dataclass(frozen=True)
class Prepared:
    """A job ready to send: the webhook's target and the request built for it."""

    job: DeliveryJob
    target: DeliveryTarget
    request: OutboundRequest
    log: structlog.BoundLogger
    trace: Context | None = None
    """The trace the job's record carries (None while tracing is off)."""


@dataclass(frozen=True)
class Judged:
    """What the send produced, and what it means."""

    attempt: Attempt
    verdict: Verdict


class Attempts:
    """Turns delivery-topic records into attempts; `run(record)` is what a lane calls."""

    def __init__(
        self,
        settings: DispatcherSettings,
        targets: TargetCache,
        writer: HistoryWriter,
        producer: AIOKafkaProducer,
        send: Sender,
        disable: Disabler,
    ) -> None:
        self._settings = settings
        self._policy: RetryPolicy = settings.retry_policy
        self._targets = targets
        self._writer = writer
        self._producer = producer
        self._send = send
        self._disable = disable
        self._slots = asyncio.Semaphore(settings.max_in_flight)

    async def rate_limit(self, webhook_id: str) -> RateLimit | None:
        """The webhook's own rate limit, else the configured default (None: no limit)."""
        target = await self._targets.get(webhook_id)
        own = target.rate_limit if target is not None else None
        return own or self._settings.default_rate_limit

    async def run(self, record: ConsumerRecord) -> asyncio.Future[None] | None:
        """Deliver one job; the future resolves when its outcome is stored (None: nothing
        was sent, the job was dropped or parked)."""
        prepared = await self.prepare(record)
        return await self.deliver(prepared) if prepared is not None else None

    # --- before the send --------------------------------------------------------------------

    async def prepare(self, record: ConsumerRecord) -> Prepared | None:
        """The job and its request; None when it was dropped (its webhook is deleted or
        disabled) or parked. An outage holds the job until it passes."""
        backoff = Backoff()
        while True:
            try:
                return await self._prepare(record)
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
                await self._park(record, exc)
                return None

    async def _prepare(self, record: ConsumerRecord) -> Prepared | None:
        try:
            job = DeliveryJob.loads(record.value)
        except (ValueError, KeyError, TypeError) as exc:
            await self._park(record, exc)
            return None
        target = await self._targets.get(job.webhook_id)
        bound = log.bind(
            tenant_id=job.tenant_id,
            webhook_id=job.webhook_id,
            delivery_id=job.delivery_id,
            event_id=job.event.id,
            attempt=job.attempt_number,
        )
        if target is None or not target.enabled:
            bound.info("job dropped: the webhook is deleted or disabled")
            return None
        request = build_request(target, job.event, job.delivery_id, self._settings.user_agent)
        return Prepared(job, target, request, bound, tracing.extract(record.headers))

    async def _park(self, record: ConsumerRecord, error: BaseException) -> None:
        await park(self._producer, self._settings.topics.dispatch_dlq, record, error, "delivery")

    # --- from the send on: never parked, never sent again ----------------------------------

    async def deliver(self, prepared: Prepared) -> asyncio.Future[None]:
        """Send, judge, schedule a retry, record, then the side effects: in one HTTP client
        span, which the retry and the history row carry on."""
        job = prepared.job
        ids = {"hookstream.delivery.id": job.delivery_id, "hookstream.attempt": job.attempt_number}
        with tracing.http_attempt(prepared.trace, prepared.request.url, ids) as span:
            judged = await self.send(prepared)
            retry = await self.schedule_retry(prepared, judged)
            attempt, tier = judged.attempt, retry.tier.name if retry else None
            tracing.http_result(
                span, attempt.status_code, attempt.error_class, judged.verdict.value, tier
            )
            stored = self.record(prepared, judged, retry)
            await self.side_effects(prepared, judged, retry)
        return stored

    async def send(self, prepared: Prepared) -> Judged:
        """POST once and judge the answer; an unexpected error is a failed attempt."""
        async with self._slots:
            IN_FLIGHT.inc()
            try:
                attempt = await self._send(prepared.request)
            except Exception as exc:
                prepared.log.exception("the send failed unexpectedly; the job will be retried")
                STEP_FAILURES.labels("send").inc()
                attempt = Attempt(
                    started_at=utcnow(),
                    duration_ms=0.0,
                    error=f"Internal error ({type(exc).__name__})",
                    error_class="internal",
                )
            finally:
                IN_FLIGHT.dec()
        return Judged(attempt, judge(attempt))

    async def schedule_retry(self, prepared: Prepared, judged: Judged) -> Retry | None:
        """The retry a retryable failure is due, queued on its tier's topic; None when none is
        due, or when it cannot be queued for another reason than an outage (which is waited
        out): the delivery then fails for good."""
        if judged.verdict is not Verdict.RETRY:
            return None
        job = prepared.job
        now = utcnow()
        retry = self._policy.next(
            job.attempt_number - job.retry_base, now, retry_after_seconds(judged.attempt, now)
        )
        if retry is None:
            return None
        try:
            await keep_trying(
                lambda: self._producer.send_and_wait(
                    self._settings.topics.retry(retry.tier.name),
                    DeliveryJob.for_retry(job, retry.due_at).dumps(),
                    key=job.webhook_id.encode(),
                    headers=tracing.headers(),
                ),
                "Kafka (scheduling a retry)",
            )
        except Exception:
            prepared.log.exception("retry not scheduled: the delivery fails for good")
            STEP_FAILURES.labels("schedule_retry").inc()
            return None
        return retry

    def record(
        self, prepared: Prepared, judged: Judged, retry: Retry | None
    ) -> asyncio.Future[None]:
        """Submit the outcome to the history writer; the future resolves once it is stored.
        If it cannot even be submitted, the delivery stands unrecorded (logged and counted)."""
        try:
            trace = tracing.current_span_context()
            return self._writer.submit(outcome(prepared, judged, retry, self._policy, trace))
        except Exception:
            prepared.log.exception("outcome not recorded")
            STEP_FAILURES.labels("record").inc()
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

    async def side_effects(self, prepared: Prepared, judged: Judged, retry: Retry | None) -> None:
        """Metrics, the log line, and disabling a webhook whose endpoint is gone."""
        attempt, verdict = judged.attempt, judged.verdict
        with _contained("metrics", prepared.log):
            _observe(prepared.job, attempt, verdict)
        with _contained("log", prepared.log):
            prepared.log.info(
                "delivery attempted",
                verdict=verdict.value,
                status_code=attempt.status_code,
                error_class=attempt.error_class,
                duration_ms=round(attempt.duration_ms, 1),
                retry_tier=retry.tier.name if retry else None,
            )
        if verdict is Verdict.GONE:
            with _contained("disable", prepared.log):
                await self._disable_gone(prepared)

    async def _disable_gone(self, prepared: Prepared) -> None:
        reason = f"The endpoint answered 410 Gone on {utcnow():%Y-%m-%d %H:%M} UTC."
        webhook_id = prepared.job.webhook_id
        gone = await keep_trying(
            lambda: self._disable(webhook_id, "ENDPOINT_GONE", reason),
            "Postgres (disabling a gone webhook)",
        )
        if gone:
            DISABLED.labels("ENDPOINT_GONE").inc()
            prepared.log.warning("webhook disabled", code="ENDPOINT_GONE")


def outcome(
    prepared: Prepared,
    judged: Judged,
    retry: Retry | None,
    policy: RetryPolicy,
    trace: SpanContext | None = None,
) -> Outcome:
    """The outcome of an attempt, as the history stores it (`trace`: the attempt's span)."""
    job, attempt, verdict = prepared.job, judged.attempt, judged.verdict
    return Outcome.of_attempt(
        job,
        prepared.target.cloud_event,
        prepared.request,
        attempt,
        succeeded=verdict is Verdict.SUCCESS,
        status_message=status_message(job, attempt, verdict, retry, policy),
        next_attempt_at=retry.due_at if retry else None,
        exhausted=verdict is Verdict.RETRY and retry is None,
        trace=trace,
    )


def status_message(
    job: DeliveryJob, attempt: Attempt, verdict: Verdict, retry: Retry | None, policy: RetryPolicy
) -> str:
    """The delivery's `statusMessage`: what happened, and what comes next."""
    message = attempt.status_message()
    if verdict is Verdict.GONE:
        return f"{message} The webhook was disabled: the endpoint is gone."
    if retry is not None:
        total = policy.max_attempts + job.retry_base
        next_in = retry.tier.name
        return f"{message} Attempt {job.attempt_number} of {total}; next in about {next_in}."
    if verdict is Verdict.RETRY:
        return f"{message} Failed for good after {job.attempt_number} attempts."
    return message


@contextlib.contextmanager
def _contained(step: str, bound: structlog.BoundLogger) -> Iterator[None]:
    """Log and count an error of a step after the send, instead of raising it."""
    try:
        yield
    except Exception:
        bound.exception("a step after the send failed", step=step)
        STEP_FAILURES.labels(step).inc()


def _observe(job: DeliveryJob, attempt: Attempt, verdict: Verdict) -> None:
    ATTEMPTS.labels(verdict.value).inc()
    ATTEMPT_SECONDS.observe(attempt.duration_ms / 1000)
    if job.attempt_number == 1 and attempt.status_code is not None:
        with contextlib.suppress(ValueError):
            event_time = datetime.fromisoformat(job.event.time)
            END_TO_END_SECONDS.observe((utcnow() - event_time).total_seconds())
