"""The delivery loop: every webhook's topic is a lane of its own, worked in order, one at a time.

A slow or dead receiver holds up only its own lane: lanes run concurrently, a lane whose backlog
reaches `webhook_buffer` has its partition paused (not busy-polled) until it drains, and a failed
attempt goes to a delay-tier topic instead of waiting in the lane. An offset is committed only
after its outcome is stored and any retry is on its tier topic: killed at any moment, the
dispatcher re-delivers (at least once; the delivery id lets receivers drop duplicates).
"""

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime

import aiohttp
import asyncpg
import prometheus_client
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from hookstream_common.delivery import Attempt, build_request, send
from hookstream_common.history import Outcome
from hookstream_common.jobs import DeliveryJob
from hookstream_common.parking import park
from hookstream_common.resilience import TRANSIENT, Backoff, keep_trying
from hookstream_common.webhook_store import DeliveryTarget, disable
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
_COMMIT_INTERVAL = 0.5


class Lane:
    """One webhook's partition: its records, sent one at a time, in offset order.

    A record is finished when its outcome is stored, which happens in the background while the
    lane sends the next one; `completed` is the offset after the last record finished in order.
    """

    def __init__(
        self,
        partition: TopicPartition,
        deliver: Callable[[ConsumerRecord], Awaitable[asyncio.Future[None] | None]],
        on_progress: Callable[["Lane"], None],
        max_unstored: int,
    ) -> None:
        self.partition = partition
        self.backlog: deque[ConsumerRecord] = deque()
        self.unstored: deque[tuple[int, asyncio.Future[None]]] = deque()
        self.committed: int | None = None
        self._finished: int | None = None
        self._max_unstored = max_unstored
        self.paused = False
        self._deliver = deliver
        self._on_progress = on_progress
        self._arrived = asyncio.Event()
        self._closing = False
        self.task = asyncio.create_task(self._work(), name=f"lane {partition.topic}")

    def add(self, records: list[ConsumerRecord]) -> None:
        """Queue records fetched for this partition."""
        self.backlog.extend(records)
        self._arrived.set()

    def close(self) -> None:
        """Finish the record in hand, then stop; the rest is left for the next owner."""
        self._closing = True
        self._arrived.set()

    @property
    def completed(self) -> int | None:
        """The offset to commit: every record before it is stored."""
        while self.unstored and _stored(self.unstored[0][1]):
            self._finished = self.unstored.popleft()[0]
        return self._finished

    async def _work(self) -> None:
        while not self._closing:
            if not self.backlog:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            record = self.backlog.popleft()
            stored = await self._deliver(record)
            if stored is None:
                stored = asyncio.get_running_loop().create_future()
                stored.set_result(None)
            self.unstored.append((record.offset + 1, stored))
            if len(self.unstored) > self._max_unstored:  # Postgres is behind: wait for it
                await asyncio.wait([self.unstored[0][1]])
            self._on_progress(self)
        if self.unstored:
            # `wait`, not `gather`: cancelling the lane must not cancel the writer's futures.
            await asyncio.wait([future for _, future in self.unstored])


def _stored(future: asyncio.Future[None]) -> bool:
    """The outcome is committed; a cancelled or failed write never counts as stored."""
    return future.done() and not future.cancelled() and future.exception() is None


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, dispatcher: "Dispatcher") -> None:
        self._dispatcher = dispatcher

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._dispatcher.release(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned", count=len(assigned))


class Dispatcher:
    """Consumes every delivery topic by pattern in one consumer group and delivers each job."""

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
        self._lanes: dict[TopicPartition, Lane] = {}
        self._stopping = asyncio.Event()
        self._last_commit = 0.0
        self.started = False
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=settings.dispatcher_group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=1000,
            max_poll_interval_ms=600_000,
        )

    def stop(self) -> None:
        """Stop fetching; in-flight requests get the grace period to finish."""
        self._stopping.set()

    async def start(self) -> None:
        """Join the group; raises while the broker is unreachable."""
        self.consumer.subscribe(
            pattern=self._settings.topics.deliveries_pattern, listener=_Rebalance(self)
        )
        await self.consumer.start()
        self.started = True

    async def run(self) -> None:
        """Deliver until `stop()`, then hand the partitions back."""
        backoff = Backoff()
        try:
            while not self._stopping.is_set():
                try:
                    batch = await self.consumer.getmany(timeout_ms=200, max_records=2000)
                    backoff.reset()
                except KafkaError as exc:
                    log.warning("fetching jobs failed; retrying", error=str(exc))
                    await backoff.wait()
                    continue
                for partition, records in batch.items():
                    self._lane(partition).add(records)
                    self._pause_if_full(self._lanes[partition])
                await self._commit(force=False)
            await self._drain(self._settings.shutdown_grace_seconds)
        finally:
            await self.consumer.stop()

    def _lane(self, partition: TopicPartition) -> Lane:
        if partition not in self._lanes:
            self._lanes[partition] = Lane(
                partition,
                self._deliver_record,
                self._resume_if_drained,
                self._settings.webhook_buffer,
            )
        return self._lanes[partition]

    def _pause_if_full(self, lane: Lane) -> None:
        if not lane.paused and len(lane.backlog) >= self._settings.webhook_buffer:
            self.consumer.pause(lane.partition)
            lane.paused = True

    def _resume_if_drained(self, lane: Lane) -> None:
        if lane.paused and len(lane.backlog) <= self._settings.webhook_buffer // 2:
            if lane.partition in self.consumer.assignment():
                self.consumer.resume(lane.partition)
            lane.paused = False

    async def _commit(self, force: bool) -> None:
        """Commit what every lane has finished, at most every `_COMMIT_INTERVAL` seconds."""
        now = time.monotonic()
        if not force and now - self._last_commit < _COMMIT_INTERVAL:
            return
        self._last_commit = now
        assigned = self.consumer.assignment()
        offsets = {
            lane.partition: lane.completed
            for lane in self._lanes.values()
            if lane.partition in assigned
            and lane.completed is not None
            and lane.completed != lane.committed
        }
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            # A rebalance is under way: the next owner re-delivers what was not committed.
            log.warning("commit failed; will retry", error=str(exc))
            return
        for partition, offset in offsets.items():
            if partition in self._lanes:
                self._lanes[partition].committed = offset

    async def release(self, partitions: set[TopicPartition]) -> None:
        """Rebalance: stop the lanes of revoked partitions and commit what they finished."""
        lanes = [self._lanes[p] for p in partitions if p in self._lanes]
        for lane in lanes:
            lane.close()
        await self._wait_for(lanes, self._settings.shutdown_grace_seconds)
        await self._commit(force=True)
        for lane in lanes:
            del self._lanes[lane.partition]

    async def _drain(self, grace: float) -> None:
        """Shutdown: let every lane finish its record in hand, commit, and stop."""
        lanes = list(self._lanes.values())
        for lane in lanes:
            lane.close()
        await self._wait_for(lanes, grace)
        await self._commit(force=True)
        log.info("dispatcher drained", lanes=len(lanes))

    @staticmethod
    async def _wait_for(lanes: list[Lane], grace: float) -> None:
        if not lanes:
            return
        tasks = [lane.task for lane in lanes]
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _deliver_record(self, record: ConsumerRecord) -> asyncio.Future[None] | None:
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
                        job.retried(retry.due_at).dumps(),
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
