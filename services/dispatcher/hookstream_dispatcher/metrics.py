"""Dispatcher metrics that the worker modules do not define themselves: the history writer's
queue, batches and failures.

Attempts, latencies, in-flight requests, shard lag, retry depth and disabled webhooks are
defined beside the code that updates them (attempts.py, worker.py, retries.py, writer.py);
dead letters are `hookstream_dead_letters_total{stage}` (hookstream_common.parking).
"""

import prometheus_client

HISTORY_QUEUE = prometheus_client.Gauge(
    "hookstream_dispatcher_history_queue",
    "Outcomes waiting for the history writer; their offsets cannot be committed until stored.",
)
HISTORY_BATCH_SECONDS = prometheus_client.Histogram(
    "hookstream_dispatcher_history_batch_seconds",
    "Time to store one batch of outcomes, outages and retries included.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
HISTORY_WRITE_FAILURES = prometheus_client.Counter(
    "hookstream_dispatcher_history_write_failures_total",
    "Failed tries to store a batch of outcomes, by reason: outage (retried), error (retried),"
    " rejected (the batch is halved and the bad row parked).",
    ["reason"],
)
for _reason in ("outage", "error", "rejected"):
    HISTORY_WRITE_FAILURES.labels(_reason)
