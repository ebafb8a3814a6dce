"""Matcher metrics beyond the event and job counters of worker.py: consumer lag, batch time,
batches in flight and held jobs.

Lag is labelled by partition of the events topic: bounded by its partition count, and the
partitions an instance owns are exactly the lag it can work off.
"""

import prometheus_client
from aiokafka import AIOKafkaConsumer

CONSUMER_LAG = prometheus_client.Gauge(
    "hookstream_matcher_consumer_lag",
    "Events on the owned partitions of the events topic not yet read, by partition.",
    ["partition"],
)
BATCH_SECONDS = prometheus_client.Histogram(
    "hookstream_matcher_batch_seconds",
    "Time to route a batch of events: produce its jobs, wait for the acks, commit.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

BATCHES_IN_FLIGHT = prometheus_client.Gauge(
    "hookstream_matcher_batches_in_flight",
    "Batches routed and not yet committed (at most HOOKSTREAM_MATCHER_PIPELINE_DEPTH).",
)
HELD_JOBS = prometheus_client.Gauge(
    "hookstream_matcher_held_jobs",
    "Delivery jobs held until the producer's metadata knows their topic (just created, and the"
    " broker has not applied it yet); their events stay uncommitted.",
)


async def record_lag(consumer: AIOKafkaConsumer) -> None:
    """Set the lag of every owned partition whose end offset the consumer has seen; forget
    partitions it no longer owns."""
    lag: dict[str, int] = {}
    for tp in consumer.assignment():
        end = consumer.highwater(tp)
        if end is not None:
            lag[str(tp.partition)] = max(0, end - await consumer.position(tp))
    CONSUMER_LAG.clear()
    for partition, value in lag.items():
        CONSUMER_LAG.labels(partition).set(value)
