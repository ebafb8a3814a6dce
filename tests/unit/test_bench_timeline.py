"""The bench sink's timeline: latencies grouped by when their events were sent."""

from hookstream_dev.bench_sink import timeline


def test_latencies_are_grouped_by_the_second_their_events_were_sent() -> None:
    sent = [100.0, 100.4, 101.2, 103.9, 101.0]
    latencies = [10.0, 30.0, 2000.0, 5.0, 20.0]
    assert timeline(sent, latencies, 1.0) == [
        {"from_s": 0.0, "count": 2, "p50_ms": 30.0, "max_ms": 30.0},
        {"from_s": 1.0, "count": 2, "p50_ms": 2000.0, "max_ms": 2000.0},
        {"from_s": 3.0, "count": 1, "p50_ms": 5.0, "max_ms": 5.0},
    ]


def test_no_latencies_no_slots() -> None:
    assert timeline([], [], 5.0) == []
