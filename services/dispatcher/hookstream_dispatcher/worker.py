"""The delivery loop: shard leases, one lane per webhook topic, commits of stored work only.

Decision 4. Dispatchers join one consumer group on the small topic `hookstream.dispatch.shards`;
owning its partition k means owning shard k, and a webhook belongs to shard
`stable_hash(webhookId) mod S`. The owner reads the delivery topics of its webhooks with manual
assignment (no group membership), so creating or deleting a webhook rebalances nothing; only a
dispatcher joining or leaving moves shards. Offsets are committed under the dispatcher group id
(which no member joins; the janitor reads it to know a topic is drained), and only up to the
first job whose outcome is not stored yet, so a kill at any instant re-delivers, never loses.

Which webhooks exist is learned from the compacted webhooks topic (at once, when one is created)
and from the broker's topic list (every `_TOPIC_REFRESH_SECONDS`, so the topics of deleted
webhooks are drained before the janitor removes them).
"""

import asyncio
import time

import prometheus_client
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from hookstream_common.kafka import EVENT_PARTITIONS, GROUP_TIMEOUTS
from hookstream_common.parking import PARKED, reason_of
from hookstream_common.resilience import TRANSIENT, Backoff
from hookstream_common.routing import TenantRoutes
from hookstream_dispatcher.attempts import Attempts
from hookstream_dispatcher.lanes import Lane
from hookstream_dispatcher.settings import DispatcherSettings
from hookstream_dispatcher.shards import shard_of

log = structlog.get_logger(__name__)

SHARDS_OWNED = prometheus_client.Gauge(
    "hookstream_dispatcher_shards_owned", "Shards this dispatcher owns."
)
WEBHOOKS_OWNED = prometheus_client.Gauge(
    "hookstream_dispatcher_webhooks_owned", "Delivery topics this dispatcher reads."
)
SHARD_LAG = prometheus_client.Gauge(
    "hookstream_dispatcher_shard_lag",
    "Jobs not yet committed in each owned shard's delivery topics (for autoscaling).",
    ["shard"],
)
_COMMIT_INTERVAL = 0.5
_TOPIC_REFRESH_SECONDS = 30.0
_LAG_INTERVAL = 10.0


class _ShardRebalance(ConsumerRebalanceListener):
    def __init__(self, dispatcher: "Dispatcher") -> None:
        self._dispatcher = dispatcher

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._dispatcher.release_shards({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._dispatcher.take_shards({tp.partition for tp in assigned})


class Dispatcher:
    """Owns shards, reads their webhooks' topics, and hands each job to the webhook's lane."""

    def __init__(self, settings: DispatcherSettings, attempts: Attempts) -> None:
        self._settings = settings
        self._topics = settings.topics
        self._attempts = attempts
        self._lanes: dict[TopicPartition, Lane] = {}
        self._shards: set[int] = set()
        self._routed: dict[str, set[str]] = {}
        self._listed: set[str] = set()
        self._version = 0
        """Counts changes of known webhooks or owned shards."""
        self._wanted_cache: tuple[int, set[TopicPartition]] | None = None
        self._assigned: set[TopicPartition] = set()
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._last_commit = 0.0
        self._listed_at = 0.0
        self.started = False
        bootstrap = settings.kafka_bootstrap_servers
        self.shard_consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=settings.shard_group_id,
            enable_auto_commit=False,
            max_poll_interval_ms=600_000,
            **GROUP_TIMEOUTS,
        )
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=settings.dispatcher_group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=5000,
        )
        self.routes = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )

    def stop(self) -> None:
        """Stop fetching; in-flight requests get the grace period to finish."""
        self._stopping.set()

    async def start(self) -> None:
        """Connect, read every webhook set there is, and join the shard group."""
        await self.consumer.start()
        await self.routes.start()
        self.routes.assign(
            [TopicPartition(self._topics.webhooks, p) for p in range(EVENT_PARTITIONS)]
        )
        await self._follow_routes(timeout_ms=1000)
        self.shard_consumer.subscribe(
            [self._topics.dispatch_shards], listener=_ShardRebalance(self)
        )
        await self.shard_consumer.start()
        self.started = True

    async def close(self) -> None:
        """Leave the shard group and disconnect."""
        await self.shard_consumer.stop()
        await self.consumer.stop()
        await self.routes.stop()

    def take_shards(self, shards: set[int]) -> None:
        """The group gave this dispatcher `shards` (its whole assignment)."""
        self._shards = shards
        self._version += 1
        SHARDS_OWNED.set(len(shards))
        log.info("shards assigned", shards=len(shards))

    async def release_shards(self, shards: set[int]) -> None:
        """Before shards move: stop taking their jobs, store what is in flight, commit."""
        async with self._lock:
            self._shards -= shards
            self._version += 1
            leaving = {tp for tp in self._lanes if self._shard(tp) in shards}
            await self._retire(leaving)
            await self._assign(self._assigned - leaving)
        log.info("shards released", shards=len(shards), lanes=len(leaving))

    async def run(self) -> None:
        """Deliver until `stop()`, then finish in-flight work and commit."""
        tasks = [asyncio.create_task(self._keep_membership()), asyncio.create_task(self._lag())]
        backoff = Backoff()
        try:
            while not self._stopping.is_set():
                try:
                    await self._turn()
                    backoff.reset()
                except TRANSIENT as exc:
                    log.warning("fetching jobs failed; retrying", error=str(exc))
                    await backoff.wait()
            async with self._lock:
                await self._retire(set(self._lanes))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _turn(self) -> None:
        """One round: learn of new webhooks, fix the assignment, fetch, hand out, commit."""
        await self._follow_routes(timeout_ms=0)
        await self._refresh_topic_list()
        async with self._lock:
            wanted = self._wanted()
            if wanted != self._assigned:
                await self._retire({tp for tp in self._lanes if tp not in wanted})
                await self._assign(wanted)
            if not self._assigned:
                fetched: dict[TopicPartition, list[ConsumerRecord]] = {}
            else:
                fetched = await self.consumer.getmany(timeout_ms=100, max_records=2000)
            for partition, records in fetched.items():
                if partition in self._assigned:
                    lane = self._lane(partition)
                    lane.add(records)
                    self._pause_if_full(lane)
            await self._commit(force=False)
        if not self._assigned:
            await asyncio.sleep(0.1)

    def _wanted(self) -> set[TopicPartition]:
        """The delivery topics of every known webhook in an owned shard (computed again only
        after webhooks or shards changed: with thousands of webhooks it is not free)."""
        if self._wanted_cache is not None and self._wanted_cache[0] == self._version:
            return self._wanted_cache[1]
        webhook_ids = set().union(*self._routed.values()) | self._listed
        wanted = {
            TopicPartition(self._topics.deliveries(webhook_id), 0)
            for webhook_id in webhook_ids
            if shard_of(webhook_id, self._settings.dispatch_shards) in self._shards
        }
        self._wanted_cache = (self._version, wanted)
        return wanted

    def _shard(self, partition: TopicPartition) -> int:
        webhook_id = self._topics.webhook_id_of(partition.topic) or ""
        return shard_of(webhook_id, self._settings.dispatch_shards)

    async def _assign(self, partitions: set[TopicPartition]) -> None:
        """Replace the assignment; kept lanes continue where they were, paused ones stay so."""
        self.consumer.assign(sorted(partitions))
        self._assigned = partitions
        WEBHOOKS_OWNED.set(len(partitions))
        for partition, lane in self._lanes.items():
            if lane.next_offset is not None:
                self.consumer.seek(partition, lane.next_offset)
            if lane.paused:
                self.consumer.pause(partition)

    async def _retire(self, partitions: set[TopicPartition]) -> None:
        """Close these lanes, let their jobs in flight finish (within the grace), commit."""
        lanes = [self._lanes[p] for p in partitions if p in self._lanes]
        if not lanes:
            return
        for lane in lanes:
            lane.close()
        _, late = await asyncio.wait(
            [lane.task for lane in lanes], timeout=self._settings.shutdown_grace_seconds
        )
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        await self._commit(force=True)
        for lane in lanes:
            del self._lanes[lane.partition]

    def _lane(self, partition: TopicPartition) -> Lane:
        if partition not in self._lanes:
            self._lanes[partition] = Lane(
                partition,
                self._attempts.run,
                self._resume_if_drained,
                self._settings.webhook_concurrency,
                self._settings.webhook_buffer,
            )
        return self._lanes[partition]

    def _pause_if_full(self, lane: Lane) -> None:
        if not lane.paused and lane.full:
            self.consumer.pause(lane.partition)
            lane.paused = True

    def _resume_if_drained(self, lane: Lane) -> None:
        if lane.paused and lane.held <= self._settings.webhook_buffer // 2:
            if lane.partition in self._assigned:
                self.consumer.resume(lane.partition)
            lane.paused = False

    async def _commit(self, force: bool) -> None:
        """Commit what every lane has stored, at most every `_COMMIT_INTERVAL` seconds."""
        now = time.monotonic()
        if not force and now - self._last_commit < _COMMIT_INTERVAL:
            return
        self._last_commit = now
        offsets = {
            lane.partition: lane.tracker.committable
            for lane in self._lanes.values()
            if lane.partition in self._assigned
            and lane.tracker.committable is not None
            and lane.tracker.committable != lane.committed
        }
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            log.warning("commit failed; will retry", error=str(exc))
            return
        for partition, offset in offsets.items():
            self._lanes[partition].committed = offset

    async def _follow_routes(self, timeout_ms: int) -> None:
        """Learn webhook ids from the compacted topic (a tombstone forgets a tenant)."""
        fetched = await self.routes.getmany(timeout_ms=timeout_ms, max_records=1000)
        if fetched:
            self._version += 1
        for records in fetched.values():
            for record in records:
                tenant = record.key.decode(errors="replace") if record.key else ""
                if record.value is None:
                    self._routed.pop(tenant, None)
                    continue
                try:
                    ids = {route.id for route in TenantRoutes.loads(record.value).routes}
                except (ValueError, KeyError, TypeError) as exc:
                    # Not parked: it stays on the compacted topic; the tenant keeps its last set.
                    PARKED.labels("webhooks").inc()
                    log.error(
                        "unreadable webhook set ignored",
                        tenant_id=tenant,
                        reason=reason_of(exc),
                        source=f"{record.topic}/{record.partition}/{record.offset}",
                    )
                    continue
                self._routed[tenant] = ids
                log.info("webhook set learned", tenant_id=tenant, webhooks=len(ids))

    async def _refresh_topic_list(self) -> None:
        """Every delivery topic the broker has, including those of deleted webhooks."""
        if time.monotonic() - self._listed_at < _TOPIC_REFRESH_SECONDS:
            return
        self._listed_at = time.monotonic()
        topics = await self.consumer.topics()
        listed = {
            webhook_id
            for topic in topics
            if (webhook_id := self._topics.webhook_id_of(topic)) is not None
        }
        if listed != self._listed:
            self._listed = listed
            self._version += 1

    async def _keep_membership(self) -> None:
        """Poll the shard topic (it carries no records) so the group keeps this member."""
        while True:
            try:
                await self.shard_consumer.getmany(timeout_ms=1000)
            except KafkaError as exc:
                log.warning("shard group poll failed", error=str(exc))
                await asyncio.sleep(1)

    async def _lag(self) -> None:
        """Per-shard lag: end offsets minus committed offsets of the owned topics."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self._settings.kafka_bootstrap_servers)
        try:
            await admin.start()
            while True:
                await asyncio.sleep(_LAG_INTERVAL)
                try:
                    await self._report_lag(admin)
                except TRANSIENT as exc:
                    log.info("shard lag not measured", error=str(exc))
        finally:
            await admin.close()

    async def _report_lag(self, admin: AIOKafkaAdminClient) -> None:
        assigned = list(self._assigned)
        ends = await self.consumer.end_offsets(assigned) if assigned else {}
        committed = await admin.list_consumer_group_offsets(
            self._settings.dispatcher_group_id, partitions=assigned
        )
        lag: dict[int, int] = dict.fromkeys(self._shards, 0)
        for partition, end in ends.items():
            done = committed[partition].offset if partition in committed else 0
            shard = self._shard(partition)
            lag[shard] = lag.get(shard, 0) + max(end - max(done, 0), 0)
        SHARD_LAG.clear()
        for shard, jobs in lag.items():
            SHARD_LAG.labels(str(shard)).set(jobs)
