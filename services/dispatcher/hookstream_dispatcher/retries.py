"""The delay tiers: holds failed attempts until they are due, then queues them again.

Each tier topic holds retries with (about) the same delay, so its records come due roughly in
order: a partition whose head is not due yet is paused until it is, then resumed; nothing is
busy-polled. A due retry goes back to the end of its webhook's delivery topic, behind first
attempts, so a retry never holds up other deliveries, and its shard's owner is woken.
"""

import asyncio

import prometheus_client
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from hookstream_common import tracing
from hookstream_common.jobs import DeliveryJob
from hookstream_common.kafka import FRESH_METADATA, client_options, new_topic
from hookstream_common.kafka_failover import with_failover
from hookstream_common.parking import park
from hookstream_common.resilience import TRANSIENT, Backoff
from hookstream_common.shards import JobQueue
from hookstream_dispatcher.policy import RetryPolicy, utcnow
from hookstream_dispatcher.settings import DispatcherSettings
from hookstream_dispatcher.targets import TargetCache

log = structlog.get_logger(__name__)

RETRY_DEPTH = prometheus_client.Gauge(
    "hookstream_dispatcher_retry_depth", "Retries waiting in each delay tier.", ["tier"]
)
RETRY_DEPTH_FAILURES = prometheus_client.Counter(
    "hookstream_dispatcher_retry_depth_failures_total",
    "Failed reads of the retry depth (the gauge keeps its last value), by reason: outage or error.",
    ["reason"],
)
for _reason in ("outage", "error"):
    RETRY_DEPTH_FAILURES.labels(_reason)
TIER_PARTITIONS = 4


def dispatcher_topics(settings: DispatcherSettings) -> list[NewTopic]:
    """One topic per tier of the schedule, and the dead-letter topic."""
    return [
        *(
            new_topic(settings, settings.topics.retry(t.name), TIER_PARTITIONS)
            for t in settings.retry_policy.tiers
        ),
        new_topic(settings, settings.topics.dispatch_dlq, dead_letters=True),
    ]


class RetryScheduler:
    """Consumes the tier topics and re-queues each retry when it is due."""

    def __init__(
        self, settings: DispatcherSettings, producer: AIOKafkaProducer, targets: TargetCache
    ) -> None:
        policy: RetryPolicy = settings.retry_policy
        self._topics = settings.topics
        self._tier_of = {settings.topics.retry(t.name): t.name for t in policy.tiers}
        self._longest_wait = max(t.seconds for t in policy.tiers) * (1 + policy.jitter) + 60
        """No retry the dispatcher wrote waits longer; one that does would hold its partition."""
        self._producer = producer
        self._shards = settings.dispatch_shards
        self._targets = targets
        self._stopping = asyncio.Event()
        self._timers: dict[TopicPartition, asyncio.TimerHandle] = {}
        self.consumer = with_failover(
            AIOKafkaConsumer(
                *self._tier_of,
                **client_options(settings.kafka_bootstrap_servers, settings.kafka_security),
                group_id=f"{settings.dispatcher_group_id}-retries",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                **FRESH_METADATA,
            )
        )

    def stop(self) -> None:
        """Stop after the batch in hand."""
        self._stopping.set()

    async def start(self) -> None:
        """Join the tiers' group; raises while the broker is unreachable."""
        await self.consumer.start()

    async def run(self) -> None:
        """Re-queue due retries until `stop()`; an outage pauses it, never ends it."""
        depth = asyncio.create_task(self._report_depth())
        backoff = Backoff()
        try:
            while not self._stopping.is_set():
                try:
                    batch = await self.consumer.getmany(timeout_ms=500, max_records=1000)
                    for partition, records in batch.items():
                        await self._release_due_or_rewind(partition, records)
                    backoff.reset()
                except TRANSIENT as exc:
                    log.warning(
                        "re-queueing retries failed; will try again",
                        error_class=type(exc).__name__,
                        error=str(exc),
                        retry_in=backoff.delay,
                    )
                    await backoff.wait()
        finally:
            depth.cancel()
            for timer in self._timers.values():
                timer.cancel()
            await self.consumer.stop()

    async def _release_due_or_rewind(
        self, partition: TopicPartition, records: list[ConsumerRecord]
    ) -> None:
        """On an outage, seek back to the first record so none is skipped, and re-raise."""
        try:
            await self._release_due(partition, records)
        except TRANSIENT:
            if partition in self.consumer.assignment() and partition not in self._timers:
                self.consumer.seek(partition, records[0].offset)
            raise

    async def _release_due(self, partition: TopicPartition, records: list[ConsumerRecord]) -> None:
        """Queue the due head of the partition, commit it, and sleep until the next is due."""
        committed = None
        jobs = JobQueue(self._producer, self._topics, self._shards)
        for record in records:
            try:
                job = DeliveryJob.loads(record.value)
                wait = (job.due_at - utcnow()).total_seconds() if job.due_at else 0.0
                if wait > self._longest_wait:
                    raise ValueError(f"due in {wait:.0f} s, beyond any tier of the schedule")
            except Exception as exc:  # whatever the record holds, it can never be queued
                await park(self._producer, self._topics.dispatch_dlq, record, exc, "retry")
                committed = record.offset + 1
                continue
            if wait > 0:
                self._sleep(partition, record.offset, wait)
                break
            if await self._targets.get(job.webhook_id) is not None:
                await jobs.send(job.webhook_id, record.value, tracing.extract(record.headers))
            committed = record.offset + 1
        await jobs.wake()
        if committed is not None:
            try:
                await self.consumer.commit({partition: committed})
            except KafkaError as exc:
                log.warning("commit failed; the retries may be queued twice", error=str(exc))

    def _sleep(self, partition: TopicPartition, offset: int, seconds: float) -> None:
        """Pause the partition at `offset` and resume it when that record is due."""
        self.consumer.seek(partition, offset)
        self.consumer.pause(partition)
        loop = asyncio.get_running_loop()
        self._timers[partition] = loop.call_later(seconds, self._due, partition)

    def _due(self, partition: TopicPartition) -> None:
        """The partition's head is due: read it again."""
        self._timers.pop(partition, None)
        if partition in self.consumer.assignment():
            self.consumer.resume(partition)

    async def _report_depth(self) -> None:
        """Retries waiting per tier, every few seconds. A failed read leaves the gauge at its
        last value, so it is logged and counted (`..._retry_depth_failures_total`)."""
        while True:
            await asyncio.sleep(5)
            try:
                depths = await self._depths()
            except TRANSIENT as exc:
                RETRY_DEPTH_FAILURES.labels("outage").inc()
                log.warning("retry depth not read", error_class=type(exc).__name__, error=str(exc))
                continue
            except Exception:
                RETRY_DEPTH_FAILURES.labels("error").inc()
                log.exception("retry depth not read")
                continue
            for tier, count in depths.items():
                RETRY_DEPTH.labels(tier).set(count)

    async def _depths(self) -> dict[str, int]:
        """Per tier: end offsets minus committed offsets of the assigned partitions."""
        assigned = list(self.consumer.assignment())
        ends = await self.consumer.end_offsets(assigned)
        waiting: dict[str, int] = dict.fromkeys(self._tier_of.values(), 0)
        for partition in assigned:
            done = await self.consumer.committed(partition) or 0
            waiting[self._tier_of[partition.topic]] += ends[partition] - done
        return waiting
