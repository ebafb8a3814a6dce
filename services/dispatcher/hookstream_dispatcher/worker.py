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
- wake-ups: whoever queues a job then writes the webhook id, and the offset after its jobs, to
  its shard's partition (`hookstream_common.shards`); the owner reads them from the end of the
  partitions it takes, and fetches a topic only until it has read that far;
- a scan, when shards are taken and every `shard_scan_seconds`: every delivery topic of an
  owned shard whose end is past its committed offset is read. It also measures the shard lag.
A topic with no new job for `topic_idle_seconds`, its jobs all stored and committed, is let go.

The parts: the busy-topic book (`book`: one record per topic read, from which the assignment is
derived), the shard lease (`lease`: shards owned, a scan's arithmetic), the thin Kafka reader
(`reader`), and a lane per topic (`lanes`). This module only wires them to the broker's events.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable

import prometheus_client
import structlog
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from hookstream_common.kafka import client_options, group_member
from hookstream_common.parking import PARKED, source_of
from hookstream_common.resilience import TRANSIENT, Backoff
from hookstream_common.shards import wake_up_end
from hookstream_common.topics import is_webhook_id
from hookstream_dispatcher.attempts import Attempts
from hookstream_dispatcher.book import BusyTopic, TopicBook
from hookstream_dispatcher.lanes import Lane
from hookstream_dispatcher.lease import SettledTopics, ShardLease, never_committed, waiting
from hookstream_dispatcher.once import Run
from hookstream_dispatcher.rate_limits import Throttle
from hookstream_dispatcher.reader import TopicReader
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
    "Delivery topics with work: being read, or their last jobs being sent and stored (webhooks"
    " of owned shards with work in the last few seconds).",
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
_TOPIC_LIST_MAX_AGE = 120.0
_REASSIGN_INTERVAL = 0.1
"""Wake-ups that arrive together change the assignment once."""
_FIRST_FETCH_WAIT = 1.0
"""How long a change of the assignment waits for the topics last assigned to be fetched once.
aiokafka's `assign()` throws away the fetches in flight and the records not handed out yet: at
10,000 webhooks, with a new topic every few milliseconds, the assignment changed every 100 ms,
before the fetch of thousands of topics came back, and nothing was delivered until the wake-ups
stopped."""
_SEEK_WAIT_SECONDS = 2.0
"""How long taking shards waits to learn where their wake-ups end. aiokafka sends no heartbeat
while the assignment callback runs: waiting there for a leader that froze or moved (a request
timeout, more than once when the metadata is stale, past the session timeout) got the dispatcher
dropped from the group and its shards taken again, in a loop. Past this wait the consumer finds
the end by itself (the group commits no offsets, so it resets to the latest) and the scan finds
the work."""


class _ShardRebalance(ConsumerRebalanceListener):
    def __init__(self, dispatcher: "Dispatcher") -> None:
        self._dispatcher = dispatcher

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._dispatcher.release_shards({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._dispatcher.take_shards(assigned)


class Dispatcher:
    """Owns shards, reads their busy webhooks' topics, and hands each job to the webhook's lane."""

    def __init__(
        self,
        settings: DispatcherSettings,
        attempts: Attempts,
        run: Run,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`run` is what each lane calls with a record: `attempts.run`, or it wrapped."""
        self._settings = settings
        self._topics = settings.topics
        self._attempts = attempts
        SHARDS.set(settings.dispatch_shards)
        self._run = run
        self._clock = clock
        self._book = TopicBook(settings.topic_idle_seconds, clock)
        self._lease = ShardLease(settings.topics, settings.dispatch_shards)
        self._settled = SettledTopics()
        self._found_since_scan: set[str] = set()
        """Topics found since the last scan: one the scan's topic list lacks refreshes it."""
        self._assigned_at = float("-inf")
        self._pruned_at = float("-inf")
        self._last_commit = float("-inf")
        self._lock = asyncio.Lock()
        """Held by whatever changes the assignment: a turn, or shards moving."""
        self._stopping = asyncio.Event()
        self._scan_now = asyncio.Event()
        connection = client_options(settings.kafka_bootstrap_servers, settings.kafka_security)
        self.shard_consumer = group_member(connection, settings.shard_group_id, "latest")
        self._reader = TopicReader(
            connection,
            settings.dispatcher_group_id,
            anchor=TopicPartition(self._topics.dispatch_shards, 0),
        )
        self._offsets = TopicOffsets(connection)

    def stop(self) -> None:
        """Stop fetching; in-flight requests get the grace period to finish."""
        self._stopping.set()

    async def start(self) -> None:
        """Connect and join the shard group."""
        await self._reader.start()
        await self._offsets.start()
        self.shard_consumer.subscribe(
            [self._topics.dispatch_shards], listener=_ShardRebalance(self)
        )
        await self.shard_consumer.start()

    async def close(self) -> None:
        """Leave the shard group and disconnect."""
        await self.shard_consumer.stop()
        await self._reader.close()
        await self._offsets.close()

    async def take_shards(self, assigned: set[TopicPartition]) -> None:
        """The group gave this dispatcher `assigned` (its whole assignment): read their
        wake-ups from the end, then scan their topics for work queued before that end."""
        if assigned:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.shard_consumer.seek_to_end(*assigned), _SEEK_WAIT_SECONDS
                )
        self._lease.take({tp.partition for tp in assigned})
        SHARDS_OWNED.set(len(self._lease.owned))
        self._scan_now.set()
        log.info("shards assigned", shards=len(self._lease.owned))

    async def release_shards(self, shards: set[int]) -> None:
        """Before shards move: stop taking their jobs, store what is in flight, commit."""
        async with self._lock:
            self._lease.release(shards)
            leaving = self._lease.in_shards({t.partition for t in self._book.topics()}, shards)
            await self._let_go(self._book.remove(leaving))
            self._assign()
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
                await self._let_go(self._book.remove([t.partition for t in self._book.topics()]))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _turn(self) -> None:
        """One round: follow the book, fetch, hand out, commit."""
        async with self._lock:
            await self._follow_book()
            fetched = await self._reader.fetch()
            for partition, records in fetched.items():
                topic = self._book.fetched(partition, records[-1].offset + 1)
                if topic is not None:
                    lane = self._lane(topic)
                    lane.add(records)
                    topic.full = lane.full
                    self._fetch_or_not(topic)
            for partition in self._book.placed():
                if self._reader.has_fetched(partition):
                    self._book.reached(partition)
            await self._commit(force=False)
        if not self._reader.assigned:
            await asyncio.sleep(0.05)

    async def _follow_book(self) -> None:
        """Let idle topics go (every second); place the topics found, and assign what the book
        holds (at most every `_REASSIGN_INTERVAL`, so wake-ups that arrive together change the
        assignment once, and once the topics assigned last have been fetched, or after
        `_FIRST_FETCH_WAIT`)."""
        now = self._clock()
        if now - self._pruned_at >= 1.0:
            self._pruned_at = now
            await self._let_go(self._book.idle())
            TOPICS_READ.set(len(self._book))
        unplaced = self._book.unplaced()
        since = now - self._assigned_at
        if (
            (not unplaced and not self._assignment_stale())
            or since < _REASSIGN_INTERVAL
            or (since < _FIRST_FETCH_WAIT and self._book.placed())
        ):
            return
        if unplaced:
            known = {p: s for p in unplaced if (s := self._settled.start(p)) is not None}
            asked = [p for p in unplaced if p not in known]
            committed = {**known, **(await self._reader.committed(asked) if asked else {})}
            for partition in unplaced:
                # no commit yet: 0, which the consumer resets to the earliest offset kept
                self._book.place(partition, committed.get(partition, 0))
        self._assign()

    def _assignment_stale(self) -> bool:
        """Whether the consumer lacks a topic the book wants read, or holds one the book let
        go. A topic read up to its announced jobs stays assigned, paused, until the assignment
        changes for another reason: the next wake-up for it resumes it at once, where taking it
        up again waited for the next change (up to `_REASSIGN_INTERVAL`), on every event at
        100 events/s to one webhook."""
        assigned = self._reader.assigned
        if self._book.assignment() - assigned:
            return True
        return any(partition not in self._book for partition in assigned)

    def _found(self, webhook_id: str, by: str, jobs_end: int | None) -> None:
        """Work is waiting in the webhook's topic, up to `jobs_end` if known: read it, if its
        shard is owned here."""
        if not self._lease.owns(webhook_id):
            return
        partition = TopicPartition(self._topics.deliveries(webhook_id), 0)
        if self._book.found(partition, jobs_end):
            TOPICS_FOUND.labels(by).inc()
            self._found_since_scan.add(partition.topic)
        elif (topic := self._book.get(partition)) is not None:
            self._fetch_or_not(topic)

    def _assign(self) -> None:
        """Make the consumer's assignment what the book holds."""
        topics = [t for t in self._book.topics() if t.assigned]
        for topic in topics:
            topic.paused = not topic.fetching
        self._reader.assign(topics)
        self._assigned_at = self._clock()
        TOPICS_READ.set(len(self._book))

    async def _let_go(self, topics: list[BusyTopic]) -> None:
        """Close the lanes of topics taken out of the book, let their jobs in flight finish
        (within the grace), and commit what they stored while they are still assigned."""
        closing = [(t, t.lane) for t in topics if isinstance(t.lane, Lane)]
        if not closing:
            return
        for _, lane in closing:
            lane.close()
        _, late = await asyncio.wait(
            [lane.task for _, lane in closing], timeout=self._settings.shutdown_grace_seconds
        )
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        await self._commit(
            force=True,
            leaving={
                lane.partition: lane.committable
                for topic, lane in closing
                if lane.committable is not None and lane.committable != topic.committed
            },
        )

    def _lane(self, topic: BusyTopic) -> Lane:
        if not isinstance(topic.lane, Lane):
            webhook_id = self._topics.webhook_id_of(topic.partition.topic) or ""
            topic.lane = Lane(
                topic.partition,
                self._run,
                self._resume_if_drained,
                self._settings.webhook_concurrency,
                self._settings.webhook_buffer,
                Throttle(lambda: self._attempts.rate_limit(webhook_id)),
            ).start()
        return topic.lane

    def _fetch_or_not(self, topic: BusyTopic) -> None:
        """Pause or resume an assigned topic in the consumer, as `topic.fetching` says."""
        if topic.partition not in self._reader.assigned or topic.paused != topic.fetching:
            return
        if topic.fetching:
            self._reader.resume(topic.partition)
        else:
            self._reader.pause(topic.partition)
        topic.paused = not topic.fetching

    def _resume_if_drained(self, lane: Lane) -> None:
        topic = self._book.get(lane.partition)
        if topic is not None and topic.full and lane.held <= self._settings.webhook_buffer // 2:
            topic.full = False
            self._fetch_or_not(topic)

    async def _commit(self, force: bool, leaving: dict[TopicPartition, int] | None = None) -> None:
        """Commit what every lane has stored, at most every `_COMMIT_INTERVAL` seconds unless
        `force`. `leaving`: what the lanes of topics just taken out of the book stored, in the
        same commit (they stay assigned until the next `_assign`)."""
        now = self._clock()
        if not force and now - self._last_commit < _COMMIT_INTERVAL:
            return
        self._last_commit = now
        offsets = {**self._book.to_commit(), **(leaving or {})}
        took = await self._reader.commit(offsets)
        self._book.committed(took)
        self._settled.committed(took)

    async def _read_wake_ups(self) -> None:
        """Read the owned shards' wake-ups (polling also keeps this member in the group)."""
        while True:
            try:
                batch = await self.shard_consumer.getmany(timeout_ms=1000)
            except KafkaError as exc:
                log.warning("reading wake-ups failed", error=str(exc))
                await asyncio.sleep(1)
                continue
            for records in batch.values():
                for record in records:
                    webhook_id = (record.key or b"").decode(errors="replace")
                    if is_webhook_id(webhook_id):
                        self._found(webhook_id, "wake-up", wake_up_end(record.value))
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
            if taken:
                self._settled.forget()
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
        topics = await self._offsets.topics(topics_max_age, self._found_since_scan)
        self._found_since_scan.clear()
        partitions = self._lease.owned_topics(topics)
        ends = await self._offsets.ends(partitions) if partitions else {}
        jobs = await self._waiting(ends)
        for partition in jobs:
            self._found(self._topics.webhook_id_of(partition.topic) or "", "scan", ends[partition])
        SHARD_LAG.clear()
        for shard, count in self._lease.lag(jobs).items():
            SHARD_LAG.labels(str(shard)).set(count)

    async def _waiting(self, ends: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Jobs before `ends` past the committed offset (or the first offset kept), where there
        are any; only topics whose end moved since they last had none are looked at closely."""
        moved = self._settled.to_check(ends)
        committed = await self._reader.committed(list(moved)) if moved else {}
        never = never_committed(moved, committed)
        firsts = await self._offsets.firsts(never) if never else {}
        jobs = waiting(moved, committed, firsts)
        self._settled.update(ends, jobs)
        return jobs
