"""The matcher's held jobs (`Holds`): released in order once their topic is ready, and the
commit point of a partition never passes a held event."""

from aiokafka.structs import ConsumerRecord, TopicPartition

from hookstream_matcher.holds import Held, Holds

P0, P1 = TopicPartition("events", 0), TopicPartition("events", 1)


def held(partition: TopicPartition, offset: int, webhook_id: str = "w1") -> Held:
    record = ConsumerRecord(
        partition.topic, partition.partition, offset, 0, 0, b"t1", b"{}", None, 2, 2, []
    )
    topic = f"deliveries.{webhook_id}"
    return Held(record, "t1", f"e{offset}", webhook_id, topic, b"job", since=0.0)


def test_the_commit_point_is_the_routed_end_without_holds() -> None:
    holds = Holds()
    holds.routed(P0, 10)
    assert holds.commit_point(P0) == 10
    assert len(holds) == 0


def test_the_commit_point_stops_at_the_earliest_held_event_of_its_partition() -> None:
    holds = Holds()
    holds.hold(held(P0, 3))
    holds.hold(held(P0, 7))
    holds.hold(held(P1, 1))
    holds.routed(P0, 10)
    holds.routed(P1, 5)
    assert holds.commit_point(P0) == 3
    assert holds.commit_point(P1) == 1
    assert holds.partitions() == {P0, P1}


def test_released_jobs_come_out_in_the_order_they_were_held_and_the_point_moves_up() -> None:
    holds = Holds()
    holds.hold(held(P0, 3, "w1"))
    holds.hold(held(P0, 5, "w2"))
    holds.hold(held(P0, 7, "w1"))
    holds.routed(P0, 10)
    released = holds.release(lambda topic: topic == "deliveries.w1")
    assert [h.offset for h in released] == [3, 7]
    assert holds.topics() == {"deliveries.w2"}
    assert holds.commit_point(P0) == 5
    assert [h.offset for h in holds.release(lambda _: True)] == [5]
    assert holds.commit_point(P0) == 10


def test_restored_jobs_are_held_again_ahead_of_the_rest() -> None:
    holds = Holds()
    holds.hold(held(P0, 3, "w1"))
    holds.hold(held(P0, 5, "w2"))
    holds.routed(P0, 10)
    released = holds.release(lambda topic: topic == "deliveries.w1")
    holds.restore(released)
    assert [h.offset for h in holds.release(lambda _: True)] == [3, 5]


def test_a_rewind_drops_the_holds_it_will_route_again_and_keeps_earlier_ones() -> None:
    holds = Holds()
    holds.hold(held(P0, 3))
    holds.hold(held(P0, 8))
    holds.hold(held(P1, 8))
    holds.routed(P0, 10)
    holds.routed(P1, 10)
    holds.rewind(P0, 6)
    assert holds.topics() == {"deliveries.w1"}
    assert [h.offset for h in holds.release(lambda _: True)] == [3, 8]
    assert holds.commit_point(P0) == 6, "routed again from the rewind"
    holds.rewind(P1, 12)
    assert holds.commit_point(P1) == 10, "a rewind past the routed end moves nothing"


def test_forgotten_partitions_lose_their_holds_and_routed_ends() -> None:
    holds = Holds()
    holds.hold(held(P0, 3))
    holds.hold(held(P1, 4))
    holds.routed(P0, 10)
    holds.routed(P1, 10)
    holds.forget({P0})
    assert len(holds) == 1
    assert holds.topics() == {"deliveries.w1"}
    assert holds.commit_point(P1) == 4
    holds.routed(P0, 20)
    assert holds.commit_point(P0) == 20
