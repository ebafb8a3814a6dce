"""The matcher's Kafka side: a stream-table join on plain aiokafka, at least once.

The events topic is consumed in the consumer group `<prefix>-matcher`. For the partitions it
owns, an instance also reads the same-numbered partitions of the compacted webhooks topic (both
are keyed by tenant with the same partition count, so a tenant's events and routes share a
number) from the beginning before it routes a single event, and then keeps following them.
A batch of events becomes jobs on the webhooks' delivery topics, then one wake-up per webhook on
its shard (`hookstream_common.shards`); its offsets are committed only after the broker
acknowledged every job, wake-up, dead letter and re-keyed copy it produced, and after the batches
before it were committed. While a batch waits for the broker the next ones are routed, up to
`matcher_pipeline_depth` in flight (`pipeline.Pipeline`). Anything that fails before a commit
leaves that batch and every later one uncommitted, rewinds to the first of them and tries again
after a backoff, so a crash, a broker outage or a rebalance can repeat work but never lose it.

A webhook's topic is created at the controller just before the webhook is published, but a
broker can apply the creation seconds later (minutes, after thousands of creations). A job for a
topic the producer's metadata lacks while the controller says it exists is held (`holds.Holds`)
instead of sent, which would block the batch of every tenant for the producer's request timeout
and then fail it. Each later batch, and the loop every 200 ms while jobs are held, asks the
broker for the held topics again and sends the jobs it now knows through that batch; a partition
is committed up to what was routed, but never past an event with a job still held.
"""

import asyncio
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import prometheus_client
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord

from hookstream_common import tracing
from hookstream_common.kafka import FRESH_METADATA, client_options, group_member
from hookstream_common.kafka_failover import with_failover
from hookstream_common.parking import PARKED, dead_letter, reason_of, source_of
from hookstream_common.resilience import Backoff, Turns
from hookstream_common.shards import JobQueue
from hookstream_matcher.holds import Held, Holds
from hookstream_matcher.metrics import BATCH_SECONDS, BATCHES_IN_FLIGHT, HELD_JOBS, record_lag
from hookstream_matcher.pipeline import Pipeline
from hookstream_matcher.router import DeadLetter, Matched, Rekey, RouteTable, route
from hookstream_matcher.settings import MatcherSettings

log = structlog.get_logger(__name__)

EVENTS = prometheus_client.Counter(
    "hookstream_matcher_events_total",
    "Events read, by outcome: matched, unmatched, rekeyed, dead_letter.",
    ["outcome"],
)
JOBS = prometheus_client.Counter(
    "hookstream_matcher_jobs_total", "Delivery jobs written, one per event and webhook."
)
BATCH_FAILURES = prometheus_client.Counter(
    "hookstream_matcher_batch_failures_total",
    "Batches that could not be fully produced and were retried from their first event.",
)
_MISSING_RECHECK_SECONDS = 10.0
_EXISTING_RECHECK_SECONDS = 10.0
_TOPIC_MEMORY_SECONDS = 3.0
TENANTS = prometheus_client.Gauge(
    "hookstream_matcher_tenants", "Tenants with webhooks in this instance's route table."
)


def _no_topic(webhook_id: str) -> str:
    return f"the delivery topic of webhook {webhook_id} does not exist"


_TOO_LARGE = "the delivery job is over the size limit"


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, matcher: "Matcher") -> None:
        self._matcher = matcher

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._matcher.revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._matcher.assigned(assigned)


class Matcher:
    """Joins the events of the partitions it owns against their tenants' routes."""

    def __init__(self, settings: MatcherSettings, producer: AIOKafkaProducer, turns: Turns) -> None:
        """`turns`: the time limits and watch of the loop in `run()`."""
        self._settings = settings
        self._turns = turns
        self._topics = settings.topics
        self._producer = producer
        self.table = RouteTable()
        self._lock = asyncio.Lock()
        """Held while a batch is routed, and while the batches in flight are settled or given up
        (a revoke, the end of `run`, a rewind): the pipeline changes under it only."""
        self._pipeline = Pipeline(settings.matcher_pipeline_depth, turns.limit)
        BATCHES_IN_FLIGHT.set_function(lambda: len(self._pipeline))
        self._stopping = asyncio.Event()
        connection = client_options(settings.kafka_bootstrap_servers, settings.kafka_security)
        self._admin = with_failover(AIOKafkaAdminClient(**connection))
        self._recent_topics: dict[str, float] = {}
        self._always_written = [
            self._topics.events,
            self._topics.events_dlq,
            self._topics.dispatch_shards,
        ]
        self._missing: dict[str, float] = {}
        self._confirmed: dict[str, float] = {}
        """Topics the controller said exist, and when: not asked again for a while."""
        self._holds = Holds()
        HELD_JOBS.set_function(lambda: len(self._holds))
        self._assignments = 0
        self._loaded_for = 0
        """The table holds the partitions of assignment number `_loaded_for`."""
        self.events = group_member(connection, settings.group_id, "earliest")
        self.changes = with_failover(
            AIOKafkaConsumer(
                **connection,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                **FRESH_METADATA,
            )
        )

    @property
    def started(self) -> bool:
        """In the group, with the route table of its partitions loaded."""
        return self._assignments > 0 and not self._stale

    @property
    def _stale(self) -> bool:
        return self._loaded_for != self._assignments

    async def start(self) -> None:
        """Connect the producer and both consumers; raises while the broker is unreachable."""
        await self._producer.start()
        await self._admin.start()
        await self.changes.start()
        self.events.subscribe([self._topics.events], listener=_Rebalance(self))
        await self.events.start()

    async def close(self) -> None:
        """Leave the group (its revoke callback runs) and disconnect."""
        await self.events.stop()
        await self.changes.stop()
        await self._admin.close()
        await self._producer.stop()

    def stop(self) -> None:
        """Finish the batches in hand within the grace, commit them, and return from `run()`."""
        self._stopping.set()
        self._turns.stop()

    def assigned(self, partitions: set[TopicPartition]) -> None:
        """New partitions: their routes are loaded before any of their events is routed."""
        self._assignments += 1
        log.info("events partitions assigned", partitions=sorted(tp.partition for tp in partitions))

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        """Wait for the batch being routed and for every batch in flight to commit, then forget
        those tenants and the jobs held for their events (never committed: the next owner
        routes those events again)."""
        async with self._lock:
            await self._settle_all()
            self.table.forget({tp.partition for tp in partitions})
            self._holds.forget(partitions)
            TENANTS.set(len(self.table))

    async def run(self) -> None:
        """Route until `stop()`, each turn within its time limit (`Turns`); the batches still
        in flight then settle within the grace, before `close()` gives up the partitions."""
        backoff = Backoff()
        while not self._stopping.is_set():
            batch: dict[TopicPartition, list[ConsumerRecord]] = {}
            try:
                async with self._turns.turn():
                    batch = await self.events.getmany(
                        timeout_ms=200, max_records=self._settings.matcher_batch_size
                    )
                    async with self._lock:
                        self._pipeline.check()
                        if self._stale:
                            await self._load_table()
                        await self._follow_changes(timeout_ms=0)
                        await self._route_batch(batch)
                        self._bound_holds()
                        await self._pipeline.room()
                        await record_lag(self.events)
                backoff.reset()
            except (KafkaError, TimeoutError) as exc:
                BATCH_FAILURES.inc()
                log.warning(
                    "routing a batch failed; it and the batches after it will be routed again",
                    error_class=type(exc).__name__,
                    error=str(exc) or "the turn outlasted its time limit",
                    retry_in=backoff.delay,
                )
                async with self._lock:
                    self._rewind(batch)
                if not self._stopping.is_set():
                    await backoff.wait()
        async with self._lock:  # after a revoke in progress, which settles them itself
            try:
                async with self._turns.turn():  # within the grace
                    await self._pipeline.drain()
            except (KafkaError, TimeoutError) as exc:
                self._leave_uncommitted(exc)
        self._turns.finished()

    async def _settle_all(self) -> None:
        """Wait for every batch in flight to commit, or leave them uncommitted if one fails."""
        try:
            await self._pipeline.drain()
        except (KafkaError, TimeoutError) as exc:
            self._leave_uncommitted(exc)

    def _leave_uncommitted(self, error: Exception) -> None:
        """Give up the batches in flight without a rewind: the partitions are being given up,
        and their next owner (maybe this instance) reads from the last commit."""
        BATCH_FAILURES.inc()
        log.warning(
            "batches in flight left uncommitted; the partitions' next owner routes them again",
            error_class=type(error).__name__,
            error=str(error) or "out of time",
        )
        self._pipeline.abandon()

    async def _load_table(self) -> None:
        """Read the owned partitions of the webhooks topic from the beginning to their end."""
        loading = self._assignments  # an assignment arriving during the load makes it stale
        owned = {tp.partition for tp in self.events.assignment()}
        partitions = [TopicPartition(self._topics.webhooks, p) for p in sorted(owned)]
        self.changes.assign(partitions)
        self.table = RouteTable()
        if partitions:
            await self.changes.seek_to_beginning(*partitions)
            ends = await self.changes.end_offsets(partitions)
            while not await self._caught_up(ends):
                await self._follow_changes(timeout_ms=500)
        self._loaded_for = loading
        TENANTS.set(len(self.table))
        log.info("route table loaded", partitions=sorted(owned), tenants=len(self.table))

    async def _caught_up(self, ends: dict[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if await self.changes.position(tp) < end:
                return False
        return True

    async def _follow_changes(self, timeout_ms: int) -> None:
        batch = await self.changes.getmany(timeout_ms=timeout_ms, max_records=1000)
        for partition, records in batch.items():
            for record in records:
                self._learn(partition.partition, record)
        if batch:
            TENANTS.set(len(self.table))

    def _learn(self, partition: int, record: ConsumerRecord) -> None:
        tenant_id = record.key.decode(errors="replace") if record.key else ""
        try:
            self.table.learn(partition, tenant_id, record.value)
        except (ValueError, KeyError, TypeError) as exc:
            # Not parked: the record stays on the compacted topic; the tenant keeps its last set.
            PARKED.labels("webhooks").inc()
            log.error(
                "unreadable webhook set ignored",
                tenant_id=tenant_id,
                reason=reason_of(exc),
                source=source_of(record),
            )
            return
        log.info("webhook set updated", tenant_id=tenant_id, present=record.value is not None)

    async def _route_batch(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Produce everything the batch asks for, after the held jobs whose topics are now
        known; it is committed once the broker has acknowledged all of it and the batches
        before it are committed (`Pipeline`), never past a job still held (`Holds`)."""
        owned = self.events.assignment()
        batch = {tp: records for tp, records in batch.items() if tp in owned}
        if not batch and not self._holds:
            return
        started = time.monotonic()
        acks: list[asyncio.Future[Any]] = []
        jobs = JobQueue(self._producer, self._topics, self._settings.dispatch_shards)
        routed = [(r, self._decide(r)) for records in batch.values() for r in records]
        await self._learn_partitions(
            [
                *self._holds.topics(),
                *(
                    self._topics.deliveries(job.webhook_id)
                    for _, decision in routed
                    if isinstance(decision, Matched)
                    for job in decision.jobs
                ),
            ]
        )
        released = self._holds.release(self._releasable)
        if not batch and not released:
            return
        try:
            for held in released:  # first: they came from earlier events
                acks.append(await self._release(held, jobs))
            for record, decision in routed:
                with tracing.consuming("match", record):  # continues the trace the event carries
                    acks.extend(await self._act(record, decision, jobs))
        except BaseException:
            self._holds.restore(released)  # the batch in hand is rewound; they are not
            raise
        starts = {tp: records[0].offset for tp, records in batch.items()}
        for held in released:
            starts[held.source] = min(held.offset, starts.get(held.source, held.offset))
        for tp, records in batch.items():
            self._holds.routed(tp, records[-1].offset + 1)
        offsets = {tp: self._holds.commit_point(tp) for tp in starts}

        async def settle() -> None:
            await asyncio.gather(*acks)
            await jobs.wake()

        async def commit() -> None:
            try:
                await self.events.commit(offsets)
            except KafkaError as exc:
                # A rebalance took the partitions: their next owner routes the batch again.
                log.warning("commit failed; the batch may be routed twice", error=str(exc))
            BATCH_SECONDS.observe(time.monotonic() - started)

        self._pipeline.add(settle, commit, starts)

    def _bound_holds(self) -> None:
        """While `matcher_max_held_jobs` jobs are held, stop reading the partitions they came
        from (decision 10: every buffer has a limit); the other partitions go on, and the loop
        keeps releasing. At most one batch's jobs more are held."""
        full: set[TopicPartition] = set()
        if len(self._holds) >= self._settings.matcher_max_held_jobs:
            full = self._holds.partitions() & self.events.assignment()
        paused = self.events.paused()
        if full - paused:
            log.warning("events partitions paused: too many held jobs", held=len(self._holds))
            self.events.pause(*(full - paused))
        if paused - full:
            self.events.resume(*(paused - full))

    def _decide(self, record: ConsumerRecord) -> Matched | Rekey | DeadLetter:
        now = datetime.fromtimestamp(record.timestamp / 1000, UTC)
        return route(self.table, record.key, record.value, now, self._settings.max_event_bytes)

    async def _learn_partitions(self, topics: Iterable[str]) -> None:
        """Have the producer learn the partitions of a batch's new delivery topics at once.

        aiokafka asks for metadata again for each topic new to a producer, listing every topic
        that producer ever sent to: at 10,000 webhooks that was a request for thousands of
        topics per event. So the producer is told to follow only the topics of the last
        `_TOPIC_MEMORY_SECONDS` (and the few it always writes), asked once per batch. A new
        topic its answer lacks is asked about at the controller, and one the controller said
        exists not again for `_EXISTING_RECHECK_SECONDS`: its jobs are held meanwhile, and
        each batch asks the broker for their topics again.
        """
        now = time.monotonic()
        cluster = self._producer.client.cluster
        new = []
        for topic in topics:
            self._recent_topics[topic] = now
            if cluster.partitions_for_topic(topic) is None:
                new.append(topic)
        if not new:
            return
        self._recent_topics = {
            topic: seen
            for topic, seen in self._recent_topics.items()
            if now - seen < _TOPIC_MEMORY_SECONDS and self._topic_exists(topic)
        }
        await self._producer.client.set_topics([*self._recent_topics, *self._always_written])
        awaited = [
            topic
            for topic in dict.fromkeys(new)
            if cluster.partitions_for_topic(topic) is None and self._topic_exists(topic)
        ]
        if awaited:
            # set_topics asks only when a topic is new to it, not for the held ones again.
            await self._producer.client.force_metadata_update()
        unseen = [
            topic
            for topic in awaited
            if cluster.partitions_for_topic(topic) is None
            and not self._confirmed_lately(topic, now)
        ]
        if unseen:
            await self._ask_controller(unseen)

    async def _act(
        self, record: ConsumerRecord, decision: Matched | Rekey | DeadLetter, jobs: JobQueue
    ) -> list[asyncio.Future[Any]]:
        """Produce what one event asks for; its delivery jobs go through `jobs`."""
        if isinstance(decision, DeadLetter):
            return [await self._dead_letter(record, decision.reason)]
        if isinstance(decision, Rekey):
            EVENTS.labels("rekeyed").inc()
            key, headers = decision.tenant_id.encode(), list(record.headers) or None
            return [
                await self._producer.send(
                    self._topics.events, record.value, key=key, headers=headers
                )
            ]
        return await self._deliver(record, decision, jobs)

    async def _deliver(
        self, record: ConsumerRecord, decision: Matched, jobs: JobQueue
    ) -> list[asyncio.Future[Any]]:
        acks = []
        for job in decision.jobs:
            topic = self._topics.deliveries(job.webhook_id)
            if not self._topic_exists(topic):
                acks.append(await self._dead_letter(record, _no_topic(job.webhook_id)))
                continue
            unknown = self._producer.client.cluster.partitions_for_topic(topic) is None
            if unknown or topic in self._holds.topics():  # behind its webhook's held jobs
                self._hold(record, decision, job.webhook_id, job.dumps())
                continue
            try:
                acks.append(await jobs.send(job.webhook_id, job.dumps()))
            except MessageSizeTooLargeError:
                return [await self._dead_letter(record, _TOO_LARGE)]
            JOBS.inc()
        EVENTS.labels("matched" if decision.jobs else "unmatched").inc()
        log.debug(
            "event routed",
            event_id=decision.event.id,
            tenant_id=decision.event.tenant_id,
            event_type=decision.event.type,
            webhooks=[job.webhook_id for job in decision.jobs],
        )
        return acks

    def _hold(self, record: ConsumerRecord, decision: Matched, webhook_id: str, job: bytes) -> None:
        """Keep a job whose topic the controller says exists but the producer's metadata lacks
        yet: sending it would block the whole batch until the producer's request timeout, and
        then fail it, for every tenant. A later job of a webhook with jobs held is held too,
        even if its topic became known meanwhile, so that they are sent in order."""
        topic = self._topics.deliveries(webhook_id)
        event = decision.event
        self._holds.hold(
            Held(record, event.tenant_id, event.id, webhook_id, topic, job, time.monotonic())
        )
        log.info(
            "delivery job held until the broker serves its topic",
            tenant_id=event.tenant_id,
            webhook_id=webhook_id,
            event_id=event.id,
        )

    def _releasable(self, topic: str) -> bool:
        """A held job's topic is known to the producer now, or the controller says it is gone."""
        known = self._producer.client.cluster.partitions_for_topic(topic) is not None
        return known or not self._topic_exists(topic)

    async def _release(self, held: Held, jobs: JobQueue) -> asyncio.Future[Any]:
        """Send a held job through this batch's `jobs` (its wake-up follows its ack), or
        dead-letter its event if its topic does not exist."""
        if not self._topic_exists(held.topic):
            return await self._dead_letter(held.record, _no_topic(held.webhook_id))
        log.info(
            "held delivery job released",
            tenant_id=held.tenant_id,
            webhook_id=held.webhook_id,
            event_id=held.event_id,
            held_seconds=round(time.monotonic() - held.since, 3),
        )
        with tracing.consuming("match", held.record):
            try:
                ack = await jobs.send(held.webhook_id, held.job)
            except MessageSizeTooLargeError:
                return await self._dead_letter(held.record, _TOO_LARGE)
        JOBS.inc()
        return ack

    def _topic_exists(self, topic: str) -> bool:
        """Whether the topic exists, as far as the last answer about it said. A job for a
        missing one (its webhook's topic deleted under a stale route) would stall every batch
        behind it, so it is parked instead."""
        checked = self._missing.get(topic)
        return checked is None or time.monotonic() - checked >= _MISSING_RECHECK_SECONDS

    def _confirmed_lately(self, topic: str, now: float) -> bool:
        """Whether the controller said the topic exists less than `_EXISTING_RECHECK_SECONDS`
        ago: its jobs are held without asking again each batch, and a topic deleted meanwhile
        is found within that time (its held jobs are then dead-lettered)."""
        confirmed = self._confirmed.get(topic)
        return confirmed is not None and now - confirmed < _EXISTING_RECHECK_SECONDS

    async def _ask_controller(self, topics: list[str]) -> None:
        """Ask the controller whether these topics, missing from the producer's metadata,
        exist: a create that only validates, "already exists" being the answer (the metadata
        a broker serves can lag a topic created a moment ago). One missing is remembered for
        `_MISSING_RECHECK_SECONDS`. An outage raises, and the batch is retried. (Fetching the
        whole cluster's metadata instead cost the matcher 10,000 topics' worth per new one.)"""
        replication = self._settings.kafka_replication_factor
        response = await self._admin.create_topics(
            [NewTopic(topic, 1, replication) for topic in topics], validate_only=True
        )
        now = time.monotonic()
        self._confirmed = {
            topic: at
            for topic, at in self._confirmed.items()
            if now - at < _EXISTING_RECHECK_SECONDS
        }
        for topic, code, *_ in response.topic_errors:
            if code == TopicAlreadyExistsError.errno:
                self._missing.pop(topic, None)
                self._confirmed[topic] = now
            else:
                self._missing[topic] = now

    async def _dead_letter(self, record: ConsumerRecord, reason: str) -> asyncio.Future[Any]:
        """Park the record with why and where from, so a person can find and replay it."""
        EVENTS.labels("dead_letter").inc()
        PARKED.labels("events").inc()
        value, headers = dead_letter(record.value, source_of(record), "events", reason)
        log.warning(
            "event sent to the dead-letter topic",
            reason=reason,
            source=source_of(record),
        )
        return await self._producer.send(
            self._topics.events_dlq, value, key=record.key, headers=headers
        )

    def _rewind(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Give up the batches in flight and the batch in hand, and seek back to the first
        event of the earliest of them in each partition (or the earliest job they released
        from hold), so they are all routed again; jobs held from those events go, as they will
        be held again, and those held from earlier events stay."""
        starts = self._pipeline.abandon()
        for tp, records in batch.items():
            if records:
                starts[tp] = min(records[0].offset, starts.get(tp, records[0].offset))
        owned = self.events.assignment()
        for tp, offset in starts.items():
            self._holds.rewind(tp, offset)
            if tp in owned:
                self.events.seek(tp, offset)
