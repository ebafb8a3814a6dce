"""The delivery loop: shard leases, reading only the delivery topics that have work.

Decision 4. Dispatchers join one consumer group on the small topic `hookstream.dispatch.shards`;
owning its partition k means owning shard k, and a webhook belongs to shard
`stable_hash(webhookId) mod S`. The owner reads the delivery topics of its webhooks with manual
assignment (no group membership), so creating or deleting a webhook rebalances nothing; only a
dispatcher joining or leaving moves shards. Offsets are committed under the dispatcher group id
(which no member joins; the janitor reads it to know a topic is drained), and only up to the
first job whose outcome is not stored yet, so a kill at any instant re-delivers, never loses.

A topic is read only while it has work, so the cost follows the busy webhooks, not all of them
(aiokafka fetches the metadata and committed offsets of the whole assignment again whenever it
changes, and walks every assigned partition on each fetch: at 10,000 webhooks, reading every
topic all the time delivered nothing). Work is found two ways:
- wake-ups: whoever queues a job then writes the webhook id to its shard's partition
  (`hookstream_common.shards`); the owner reads them from the end of the partitions it takes;
- a scan, when shards are taken and every `shard_scan_seconds`: every delivery topic of an
  owned shard whose end is past its committed offset is read. It also measures the shard lag.
A topic with no new job for `topic_idle_seconds`, its jobs all stored and committed, is let go.
"""

import asyncio
import contextlib
import time

import prometheus_client
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from hookstream_common.kafka import FRESH_METADATA, GROUP_TIMEOUTS, client_options
from hookstream_common.parking import PARKED, source_of
from hookstream_common.resilience import TRANSIENT, Backoff
from hookstream_common.shards import shard_of
from hookstream_common.topics import is_webhook_id
from hookstream_dispatcher.attempts import Attempts
from hookstream_dispatcher.lanes import Lane
from hookstream_dispatcher.once import Run
from hookstream_dispatcher.rate_limits import Throttle
from hookstream_dispatcher.settings import DispatcherSettings
from hookstream_dispatcher.topic_offsets import TopicOffsets

log = structlog.get_logger(__name__)

SHARDS_OWNED = prometheus_client.Gauge(
    "hookstream_dispatcher_shards_owned", "Shards this dispatcher owns."
)
SHARDS = prometheus_client.Gauge(
    "hookstream_dispatcher_shards",
    "Shards of the cluster (HOOKSTREAM_DISPATCH_SHARDS): what the dispatchers together should own,"
    " which the HookstreamShardsUnowned alert compares with.",
)
TOPICS_READ = prometheus_client.Gauge(
    "hookstream_dispatcher_topics_read",
    "Delivery topics being read: webhooks of owned shards with work in the last few seconds.",
)
SHARD_LAG = prometheus_client.Gauge(
    "hookstream_dispatcher_shard_lag",
    "Jobs not yet committed in each owned shard's delivery topics (for autoscaling).",
    ["shard"],
)
TOPICS_FOUND = prometheus_client.Counter(
    "hookstream_dispatcher_topics_found_total",
    "Delivery topics taken up for reading, by what found their work: `wake-up` or `scan` (a"
    " scan finds work after a shard moves; at other times it means a wake-up was missed).",
    ["by"],
)
TOPICS_FOUND.labels("wake-up")
TOPICS_FOUND.labels("scan")
_COMMIT_INTERVAL = 0.5
_NEVER_FETCHED_SECONDS = 30.0
_TOPIC_LIST_MAX_AGE = 120.0
_REASSIGN_INTERVAL = 0.1
"""Wake-ups that arrive together change the assignment once."""
_SEEK_WAIT_SECONDS = 2.0
"""How long taking shards waits to learn where their wake-ups end. aiokafka sends no heartbeat
while the assignment callback runs: waiting there for a leader that froze or moved (up to the
request timeout, longer than the session timeout) got the dispatcher dropped from the group and
its shards taken again, in a loop. Past this wait the consumer finds the end by itself (the
group commits no offsets, so it resets to the latest) and the scan finds the work."""


class _ShardRebalance(ConsumerRebalanceListener):
    def __init__(self, dispatcher: "Dispatcher") -> None:
        self._dispatcher = dispatcher

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._dispatcher.release_shards({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._dispatcher.take_shards(assigned)


class Dispatcher:
    """Owns shards, reads their busy webhooks' topics, and hands each job to the webhook's lane."""

    def __init__(self, settings: DispatcherSettings, attempts: Attempts, run: Run) -> None:
        """`run` is what each lane calls with a record: `attempts.run`, or it wrapped."""
        self._settings = settings
        self._topics = settings.topics
        self._attempts = attempts
        SHARDS.set(settings.dispatch_shards)
        self._run = run
        self._lanes: dict[TopicPartition, Lane] = {}
        self._shards: set[int] = set()
        self._busy: dict[TopicPartition, float] = {}
        """The topics to read, each with the (monotonic) time work was last seen there."""
        self._woken_topics: set[str] = set()
        """Topics taken up since the last scan: one the scan's topic list lacks refreshes it."""
        self._positions: dict[TopicPartition, int] = {}
        """Where reading each assigned topic goes on: after the last job handed to its lane."""
        self._assigned: set[TopicPartition] = set()
        self._assigned_at = 0.0
        self._pruned_at = 0.0
        self._last_commit = 0.0
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._scan_now = asyncio.Event()
        connection = client_options(settings.kafka_bootstrap_servers, settings.kafka_security)
        self.shard_consumer = AIOKafkaConsumer(
            **connection,
            group_id=settings.shard_group_id,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            max_poll_interval_ms=600_000,
            **GROUP_TIMEOUTS,
            **FRESH_METADATA,
        )
        self.consumer = AIOKafkaConsumer(
            **connection,
            group_id=settings.dispatcher_group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=5000,
            fetch_max_wait_ms=100,  # a topic taken up waits for the fetch in flight to end
        )
        self._offsets = TopicOffsets(connection)
        self._admin = AIOKafkaAdminClient(**connection)

    def stop(self) -> None:
        """Stop fetching; in-flight requests get the grace period to finish."""
        self._stopping.set()

    async def start(self) -> None:
        """Connect and join the shard group."""
        await self.consumer.start()
        await self._offsets.start()
        await self._admin.start()
        self.shard_consumer.subscribe(
            [self._topics.dispatch_shards], listener=_ShardRebalance(self)
        )
        await self.shard_consumer.start()

    async def close(self) -> None:
        """Leave the shard group and disconnect."""
        await self.shard_consumer.stop()
        await self.consumer.stop()
        await self._offsets.close()
        await self._admin.close()

    async def take_shards(self, assigned: set[TopicPartition]) -> None:
        """The group gave this dispatcher `assigned` (its whole assignment): read their
        wake-ups from the end, then scan their topics for work queued before that end."""
        if assigned:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.shard_consumer.seek_to_end(*assigned), _SEEK_WAIT_SECONDS
                )
        self._shards = {tp.partition for tp in assigned}
        SHARDS_OWNED.set(len(self._shards))
        self._scan_now.set()
        log.info("shards assigned", shards=len(self._shards))

    async def release_shards(self, shards: set[int]) -> None:
        """Before shards move: stop taking their jobs, store what is in flight, commit."""
        async with self._lock:
            self._shards -= shards
            known = self._assigned | self._busy.keys() | self._lanes.keys()
            leaving = {tp for tp in known if self._shard(tp) in shards}
            await self._retire(leaving)
            for partition in leaving:
                self._busy.pop(partition, None)
                self._positions.pop(partition, None)
            await self._assign(self._assigned - leaving)
        log.info("shards released", shards=len(shards), topics=len(leaving))

    async def run(self) -> None:
        """Deliver until `stop()`, then finish in-flight work and commit."""
        tasks = [
            asyncio.create_task(self._read_wake_ups()),
            asyncio.create_task(self._scan_regularly()),
        ]
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
        """One round: follow the busy topics, fetch, hand out, commit."""
        async with self._lock:
            await self._follow_busy_topics()
            if not self._assigned:
                fetched: dict[TopicPartition, list[ConsumerRecord]] = {}
            else:
                fetched = await self.consumer.getmany(timeout_ms=50, max_records=2000)
            now = time.monotonic()
            for partition, records in fetched.items():
                if partition in self._assigned:
                    self._busy[partition] = now
                    self._positions[partition] = records[-1].offset + 1
                    lane = self._lane(partition)
                    lane.add(records)
                    self._pause_if_full(lane)
            await self._commit(force=False)
        if not self._assigned:
            await asyncio.sleep(0.05)

    async def _follow_busy_topics(self) -> None:
        """Let idle topics go (every second) and make the assignment the busy topics."""
        now = time.monotonic()
        if now - self._pruned_at >= 1.0:
            self._pruned_at = now
            for partition in [p for p, seen in self._busy.items() if self._idle(p, seen, now)]:
                del self._busy[partition]
        if self._busy.keys() == self._assigned or now - self._assigned_at < _REASSIGN_INTERVAL:
            return
        wanted = set(self._busy)
        await self._retire({tp for tp in self._lanes if tp not in wanted})
        await self._place(wanted)
        await self._assign(wanted)

    async def _place(self, partitions: set[TopicPartition]) -> None:
        """Know where reading each topic starts before it is assigned: its committed offset,
        or 0 (the consumer resets an offset retention removed to the earliest kept). aiokafka
        would fetch the committed offsets of the whole assignment at every change, and with a
        change every tenth of a second a new topic could wait for ever."""
        self._positions = {tp: at for tp, at in self._positions.items() if tp in partitions}
        new = [tp for tp in partitions if tp not in self._positions]
        if not new:
            return
        committed = await self._admin.list_consumer_group_offsets(
            self._settings.dispatcher_group_id, partitions=new
        )
        for partition in new:
            meta = committed.get(partition)
            self._positions[partition] = meta.offset if meta and meta.offset >= 0 else 0

    def _idle(self, partition: TopicPartition, seen: float, now: float) -> bool:
        """No job for `topic_idle_seconds`, every job taken stored and committed, and fetched
        at least once (a topic still waiting for its first fetch is not given up)."""
        if now - seen < self._settings.topic_idle_seconds:
            return False
        lane = self._lanes.get(partition)
        if lane is None:
            fetched = self.consumer.highwater(partition) is not None
            # A topic never fetched this long is gone (a deleted webhook's); a scan finds work.
            return fetched or now - seen > _NEVER_FETCHED_SECONDS
        return lane.held == 0 and lane.committed == lane.tracker.committable

    def _wake(self, webhook_id: str, now: float, by: str) -> None:
        """Work is waiting in the webhook's topic: read it, if its shard is owned here."""
        if shard_of(webhook_id, self._settings.dispatch_shards) not in self._shards:
            return
        partition = TopicPartition(self._topics.deliveries(webhook_id), 0)
        if partition not in self._busy:
            TOPICS_FOUND.labels(by).inc()
            self._woken_topics.add(partition.topic)
        self._busy[partition] = now

    def _shard(self, partition: TopicPartition) -> int:
        webhook_id = self._topics.webhook_id_of(partition.topic) or ""
        return shard_of(webhook_id, self._settings.dispatch_shards)

    async def _assign(self, partitions: set[TopicPartition]) -> None:
        """Replace the assignment; kept lanes continue where they were, paused ones stay so."""
        self.consumer.assign(sorted(partitions))
        self._assigned = partitions
        self._assigned_at = time.monotonic()
        TOPICS_READ.set(len(partitions))
        for partition in partitions:
            if partition in self._positions:
                self.consumer.seek(partition, self._positions[partition])
        for partition, lane in self._lanes.items():
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
            webhook_id = self._topics.webhook_id_of(partition.topic) or ""
            self._lanes[partition] = Lane(
                partition,
                self._run,
                self._resume_if_drained,
                self._settings.webhook_concurrency,
                self._settings.webhook_buffer,
                Throttle(lambda: self._attempts.rate_limit(webhook_id)),
            ).start()
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

    async def _read_wake_ups(self) -> None:
        """Read the owned shards' wake-ups (polling also keeps this member in the group)."""
        while True:
            try:
                batch = await self.shard_consumer.getmany(timeout_ms=1000)
            except KafkaError as exc:
                log.warning("reading wake-ups failed", error=str(exc))
                await asyncio.sleep(1)
                continue
            now = time.monotonic()
            for records in batch.values():
                for record in records:
                    webhook_id = (record.key or b"").decode(errors="replace")
                    if is_webhook_id(webhook_id):
                        self._wake(webhook_id, now, "wake-up")
                    else:
                        # Not parked: it asks for nothing; the next scan finds any real work.
                        PARKED.labels("wake-ups").inc()
                        log.error(
                            "unreadable wake-up ignored",
                            key=webhook_id[:100],
                            source=source_of(record),
                        )

    async def _scan_regularly(self) -> None:
        """Scan when shards are taken and every `shard_scan_seconds`; an outage skips one."""
        while True:
            taken = self._scan_now.is_set()
            self._scan_now.clear()
            try:
                await self._scan(topics_max_age=0.0 if taken else _TOPIC_LIST_MAX_AGE)
            except TRANSIENT as exc:
                log.info("shard scan failed; next one soon", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._scan_now.wait(), self._settings.shard_scan_seconds)

    async def _scan(self, topics_max_age: float) -> None:
        """Read every owned topic with jobs past its committed offset; export the lag. Taking
        shards asks for the current topic list; the regular scans, a safety net behind the
        wake-ups, may use one up to `_TOPIC_LIST_MAX_AGE` old."""
        shards = set(self._shards)
        topics = await self._offsets.topics(topics_max_age, self._woken_topics)
        self._woken_topics.clear()
        partitions = [
            TopicPartition(topic, 0)
            for topic in topics
            if (webhook_id := self._topics.webhook_id_of(topic)) is not None
            and shard_of(webhook_id, self._settings.dispatch_shards) in shards
        ]
        waiting = await self._waiting(partitions) if partitions else {}
        lag = dict.fromkeys(shards, 0)
        now = time.monotonic()
        for partition, jobs in waiting.items():
            lag[self._shard(partition)] += jobs
            self._wake(self._topics.webhook_id_of(partition.topic) or "", now, "scan")
        SHARD_LAG.clear()
        for shard, jobs in lag.items():
            SHARD_LAG.labels(str(shard)).set(jobs)

    async def _waiting(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Jobs past the committed offset (or the first offset kept), where there are any."""
        ends = await self._offsets.ends(partitions)
        committed = await self._admin.list_consumer_group_offsets(
            self._settings.dispatcher_group_id, partitions=partitions
        )
        done = {
            tp: meta.offset
            for tp, meta in committed.items()
            if meta is not None and meta.offset >= 0
        }
        never = [tp for tp, end in ends.items() if tp not in done and end > 0]
        if never:
            done.update(await self._offsets.firsts(never))
        return {tp: end - done.get(tp, 0) for tp, end in ends.items() if end > done.get(tp, 0)}
