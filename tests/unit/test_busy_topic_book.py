"""The dispatcher's busy-topic book and shard lease, without Kafka (clock injected)."""

from dataclasses import dataclass

from aiokafka import TopicPartition

from hookstream_common.shards import shard_of
from hookstream_common.topics import Topics
from hookstream_dispatcher.book import NEVER_FETCHED_SECONDS, Phase, TopicBook
from hookstream_dispatcher.lease import SettledTopics, ShardLease, never_committed, waiting

IDLE = 5.0
TOPICS = Topics("hs")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeLane:
    held: int = 0
    committable: int | None = None


def _partition(name: str) -> TopicPartition:
    return TopicPartition(f"hs.deliveries.{name}", 0)


def test_a_topic_goes_found_placed_reading_and_only_placed_ones_are_assigned() -> None:
    book = TopicBook(IDLE, Clock())
    a, b = _partition("a"), _partition("b")
    assert book.found(a, None) and book.found(b, None)
    assert not book.found(a, None), "found again: already held"
    assert book.assignment() == set()
    assert set(book.unplaced()) == {a, b}

    book.place(a, 7)
    assert book.assignment() == {a}
    assert book.get(a).phase is Phase.PLACED and book.get(a).position == 7
    assert book.unplaced() == [b]

    topic = book.fetched(a, 12)
    assert topic is not None and topic.phase is Phase.READING and topic.position == 12
    assert book.fetched(b, 3) is None, "records of an unplaced topic are not taken"


def test_placing_again_keeps_the_position_read_so_far() -> None:
    book = TopicBook(IDLE, Clock())
    a = _partition("a")
    book.found(a, None)
    book.place(a, 0)
    book.fetched(a, 40)
    book.place(a, 0)
    assert book.get(a).position == 40


def test_idle_needs_quiet_time_an_empty_lane_and_everything_committed() -> None:
    clock = Clock()
    book = TopicBook(IDLE, clock)
    a = _partition("a")
    book.found(a, None)
    book.place(a, 0)
    topic = book.fetched(a, 10)
    topic.lane = lane = FakeLane(held=2, committable=8)
    clock.now += IDLE + 1
    assert book.idle() == [], "jobs still held"
    lane.held = 0
    lane.committable = 10
    assert book.idle() == [], "stored but not committed yet"
    assert book.to_commit() == {a: 10}
    book.committed({a: 10})
    assert book.to_commit() == {}
    assert book.idle() == [topic]
    assert a not in book


def test_topics_read_to_their_last_job_leave_the_assignment_and_are_still_committed() -> None:
    book = TopicBook(IDLE, Clock())
    a, b = _partition("a"), _partition("b")
    book.found(a, 4)
    book.found(b, 9)
    book.place(a, 0)
    book.place(b, 0)
    book.fetched(a, 4)
    assert book.assignment() == {b}
    book.get(a).lane = FakeLane(held=4, committable=2)
    assert book.to_commit() == {a: 2}
    book.found(a, 5)
    assert book.assignment() == {a, b}, "a wake-up announced another job"


def test_new_work_keeps_a_topic() -> None:
    clock = Clock()
    book = TopicBook(IDLE, clock)
    a = _partition("a")
    book.found(a, None)
    book.place(a, 0)
    book.reached(a)
    clock.now += IDLE - 1
    book.found(a, None)
    clock.now += 2
    assert book.idle() == []
    clock.now += IDLE
    assert [t.partition for t in book.idle()] == [a]


def test_a_topic_never_fetched_is_kept_until_it_is_surely_gone() -> None:
    clock = Clock()
    book = TopicBook(IDLE, clock)
    a = _partition("a")
    book.found(a, None)
    book.place(a, 0)
    clock.now += IDLE + 1
    assert book.idle() == [], "waiting for its first fetch"
    clock.now += NEVER_FETCHED_SECONDS
    assert [t.partition for t in book.idle()] == [a]


def test_a_topic_fetched_short_of_its_announced_jobs_is_kept() -> None:
    """The fetch answered (so the topic is being read) but without the jobs a wake-up named:
    its records were thrown away by a new assignment. Dropping it left them to the next scan."""
    clock = Clock()
    book = TopicBook(IDLE, clock)
    a = _partition("a")
    book.found(a, 1)
    book.place(a, 0)
    book.reached(a)
    clock.now += IDLE + 1
    assert book.idle() == [], "its job is still to be fetched"
    assert book.assignment() == {a}
    clock.now += NEVER_FETCHED_SECONDS
    assert [t.partition for t in book.idle()] == [a], "the job never came: gone"


def test_a_topic_is_fetched_until_the_jobs_announced_are_read() -> None:
    book = TopicBook(IDLE, Clock())
    a = _partition("a")
    book.found(a, 5)
    book.place(a, 3)
    topic = book.get(a)
    assert topic.fetching and not topic.caught_up
    book.fetched(a, 5)
    assert topic.caught_up and not topic.fetching, "both jobs read: nothing left to fetch"
    assert book.assignment() == set()
    book.found(a, 7)
    assert topic.fetching, "a wake-up announced two more"
    book.found(a, 6)
    assert topic.jobs_end == 7, "an older wake-up arriving late changes nothing"
    book.fetched(a, 7)
    topic.full = True
    book.found(a, 9)
    assert not topic.fetching, "its lane is full"
    assert book.assignment() == {a}, "assigned and paused: more to read when the lane drains"
    topic.full = False
    assert topic.fetching


def test_a_wake_up_that_names_no_offset_keeps_its_topic_fetched() -> None:
    book = TopicBook(IDLE, Clock())
    a = _partition("a")
    book.found(a, 4)
    book.found(a, None)
    book.place(a, 0)
    book.fetched(a, 1000)
    assert book.get(a).fetching


def test_a_topic_placed_past_its_jobs_goes_idle_without_a_fetch() -> None:
    """A wake-up for jobs already committed (handled before a restart): nothing to fetch."""
    clock = Clock()
    book = TopicBook(IDLE, clock)
    a = _partition("a")
    book.found(a, 5)
    book.place(a, 5)
    assert not book.get(a).fetching
    assert book.placed() == [], "never assigned, so never waited for as a first fetch"
    clock.now += IDLE + 1
    assert [t.partition for t in book.idle()] == [a]


def test_removed_topics_are_returned_with_their_lanes() -> None:
    book = TopicBook(IDLE, Clock())
    a, b = _partition("a"), _partition("b")
    for p in (a, b):
        book.found(p, None)
        book.place(p, 0)
    book.get(a).lane = FakeLane(held=1)
    removed = book.remove([a, _partition("unknown")])
    assert [t.partition for t in removed] == [a] and removed[0].lane.held == 1
    assert book.assignment() == {b}


def test_the_lease_owns_the_webhooks_of_its_shards() -> None:
    lease = ShardLease(TOPICS, 8)
    ids = [f"0b4b8f57-5a4c-4a8e-9a39-5b0d8e1f2a{i:02d}" for i in range(40)]
    lease.take({0, 1, 2, 3})
    owned = [i for i in ids if lease.owns(i)]
    assert owned == [i for i in ids if shard_of(i, 8) < 4]
    topics = {TOPICS.deliveries(i) for i in ids} | {"hs.events", "other"}
    assert {tp.topic for tp in lease.owned_topics(topics)} == {TOPICS.deliveries(i) for i in owned}

    lease.release({0, 1})
    assert lease.owned == {2, 3}
    partitions = {TopicPartition(TOPICS.deliveries(i), 0) for i in ids}
    leaving = lease.in_shards(partitions, {0, 1})
    assert {tp.topic for tp in leaving} == {
        TOPICS.deliveries(i) for i in ids if shard_of(i, 8) in {0, 1}
    }


def test_a_scan_counts_jobs_past_the_committed_or_first_kept_offset() -> None:
    a, b, c, d = (_partition(x) for x in "abcd")
    ends = {a: 10, b: 10, c: 0, d: 5}
    committed = {a: 10, b: 4}
    assert never_committed(ends, committed) == [d], "c is empty"
    assert waiting(ends, committed, {d: 2}) == {b: 6, d: 3}


def test_a_scan_looks_closely_only_at_topics_whose_end_moved() -> None:
    a, b, c = (_partition(x) for x in "abc")
    settled = SettledTopics()
    ends = {a: 10, b: 10, c: 0}
    assert settled.to_check(ends) == {a: 10, b: 10}, "c never had a job"
    settled.update(ends, waiting={b: 6})
    assert settled.to_check(ends) == {b: 10}, "a had none waiting at 10 and is still at 10"
    settled.update(ends, waiting={})
    assert settled.to_check(ends) == {}
    assert settled.to_check({a: 11, b: 10, c: 0}) == {a: 11}, "a job was added to a"
    settled.forget()
    assert settled.to_check(ends) == {a: 10, b: 10}


def test_a_topic_starts_where_its_jobs_are_known_to_be_done() -> None:
    """Placing a woken topic needs no lookup when a scan or this dispatcher's own commit says
    where its jobs are done; only what neither says is asked of the coordinator."""
    a, b, c = (_partition(x) for x in "abc")
    settled = SettledTopics()
    settled.update({a: 10, b: 10, c: 0}, waiting={b: 6})
    assert (settled.start(a), settled.start(b), settled.start(c)) == (10, None, 0)
    settled.committed({b: 12})
    assert settled.start(b) == 12, "committed here since the scan"
    settled.update({a: 10, b: 11, c: 0}, waiting={})
    assert settled.start(b) == 12, "a scan that read the end before that commit does not undo it"
    settled.committed({a: 9})
    assert settled.start(a) == 10, "known offsets never go back"
    settled.forget()
    assert settled.start(a) is None, "shards taken: another owner may have committed since"


def test_lag_is_per_owned_shard() -> None:
    lease = ShardLease(TOPICS, 4)
    webhook = "0b4b8f57-5a4c-4a8e-9a39-5b0d8e1f2a3c"
    shard = shard_of(webhook, 4)
    lease.take({shard, (shard + 1) % 4})
    lag = lease.lag({TopicPartition(TOPICS.deliveries(webhook), 0): 7})
    assert lag == {shard: 7, (shard + 1) % 4: 0}
