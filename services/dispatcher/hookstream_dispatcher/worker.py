"""The delivery loop: read jobs from every webhook's topic, POST them, store, then commit.

Offsets are committed only after the outcomes of the whole batch are stored, so a crash at any
point re-delivers instead of losing (at least once; the delivery id lets receivers de-duplicate).
Each partition is one webhook: its jobs go out in order while different webhooks run in parallel.
"""

import asyncio
import time

import aiohttp
import asyncpg
import prometheus_client
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from hookstream_common.crypto import SecretBox
from hookstream_common.delivery import build_request, send
from hookstream_common.history import Outcome, store
from hookstream_common.jobs import DeliveryJob
from hookstream_common.webhook_store import load_target

from hookstream_dispatcher.settings import DispatcherSettings

log = structlog.get_logger(__name__)

ATTEMPTS = prometheus_client.Counter(
    "hookstream_dispatcher_attempts_total", "Delivery attempts, by outcome.", ["outcome"]
)
ATTEMPT_SECONDS = prometheus_client.Histogram(
    "hookstream_dispatcher_attempt_seconds", "Duration of one delivery request."
)
IN_FLIGHT = prometheus_client.Gauge(
    "hookstream_dispatcher_in_flight", "Delivery requests waiting for an answer."
)


class Dispatcher:
    """Consumes delivery topics by pattern in one consumer group and delivers each job."""

    def __init__(
        self,
        settings: DispatcherSettings,
        pool: asyncpg.Pool,
        box: SecretBox,
        session: aiohttp.ClientSession,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._box = box
        self._session = session
        self._slots = asyncio.Semaphore(settings.max_in_flight)
        self._stopping = asyncio.Event()
        self.started = False
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=1000,
            max_poll_records=500,
        )

    def stop(self) -> None:
        """Finish the batch in hand, commit it, and return from `run`."""
        self._stopping.set()

    async def run(self) -> None:
        """Deliver until `stop()`."""
        self.consumer.subscribe(pattern=self._settings.topics.deliveries_pattern)
        await self.consumer.start()
        self.started = True
        try:
            while not self._stopping.is_set():
                batch = await self.consumer.getmany(timeout_ms=500)
                if batch:
                    await self._deliver_batch(batch)
        finally:
            await self.consumer.stop()

    async def _deliver_batch(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        results = await asyncio.gather(*(self._deliver_partition(m) for m in batch.values()))
        await self._store([outcome for outcomes in results for outcome in outcomes])
        await self.consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})

    async def _store(self, outcomes: list[Outcome]) -> None:
        """Store the batch, retrying until Postgres takes it: the offsets wait for it."""
        delay = 0.5
        while True:
            try:
                await store(self._pool, outcomes)
                return
            except (asyncpg.PostgresError, OSError) as exc:
                log.error("storing outcomes failed; retrying", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _deliver_partition(self, records: list[ConsumerRecord]) -> list[Outcome]:
        outcomes = []
        for record in records:
            outcome = await self._deliver(record)
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    async def _deliver(self, record: ConsumerRecord) -> Outcome | None:
        try:
            job = DeliveryJob.loads(record.value)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("unreadable delivery job skipped", topic=record.topic, error=str(exc))
            return None
        bound = log.bind(
            tenant_id=job.tenant_id,
            webhook_id=job.webhook_id,
            delivery_id=job.delivery_id,
            event_id=job.event.id,
        )
        target = await load_target(self._pool, self._box, job.webhook_id)
        if target is None or not target.enabled:
            bound.info("job dropped: webhook deleted or disabled")
            return None
        request = build_request(target, job.event, job.delivery_id, self._settings.user_agent)
        async with self._slots:
            IN_FLIGHT.inc()
            started = time.perf_counter()
            try:
                attempt = await send(self._session, request)
            finally:
                IN_FLIGHT.dec()
                ATTEMPT_SECONDS.observe(time.perf_counter() - started)
        ATTEMPTS.labels("success" if attempt.succeeded else "fail").inc()
        bound.info(
            "delivery attempted",
            status_code=attempt.status_code,
            error=attempt.error,
            duration_ms=round(attempt.duration_ms, 1),
        )
        return Outcome(
            delivery_id=job.delivery_id,
            tenant_id=job.tenant_id,
            webhook_id=job.webhook_id,
            event_id=job.event.id,
            event_type=job.event.type,
            status="success" if attempt.succeeded else "fail",
            status_message=attempt.status_message(),
            triggered_at=job.triggered_at,
            request=request.as_history(),
            response=attempt.as_history(),
        )
