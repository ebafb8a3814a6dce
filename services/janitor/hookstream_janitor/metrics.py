"""The janitor's metrics: whether its passes succeed, how long they take, and what they did.

`hookstream_janitor_interval_seconds` lets an alert say "no success for two intervals" without
knowing the configured interval. Run as a CronJob (`--once`), the process exits before any
scrape: there kube-state-metrics' `kube_cronjob_status_last_successful_time` stands in for
`hookstream_janitor_last_success_timestamp_seconds` (deploy/prometheus/alerts.yml uses both).
"""

import prometheus_client

from hookstream_janitor.housekeeping import PassReport

LAST_SUCCESS = prometheus_client.Gauge(
    "hookstream_janitor_last_success_timestamp_seconds", "When the last pass finished."
)
INTERVAL = prometheus_client.Gauge(
    "hookstream_janitor_interval_seconds", "The configured pause between two passes."
)
PASSES = prometheus_client.Counter(
    "hookstream_janitor_passes_total",
    "Passes, by result: success, failed, or skipped (another janitor held the lock).",
    ["result"],
)
PASS_SECONDS = prometheus_client.Histogram(
    "hookstream_janitor_pass_seconds",
    "Duration of a pass, whatever its result.",
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
PARTITIONS_CREATED = prometheus_client.Counter(
    "hookstream_janitor_partitions_created_total", "History partitions created ahead."
)
PARTITIONS_DROPPED = prometheus_client.Counter(
    "hookstream_janitor_partitions_dropped_total", "History partitions dropped past retention."
)
TOPICS_DELETED = prometheus_client.Counter(
    "hookstream_janitor_topics_deleted_total", "Delivery topics of deleted webhooks deleted."
)
OUTBOX_TRIMMED = prometheus_client.Counter(
    "hookstream_janitor_outbox_trimmed_total", "Published outbox rows deleted."
)

ROWS_PURGED = prometheus_client.Counter(
    "hookstream_janitor_rows_purged_total",
    "Rows deleted because they were done with: finished recoveries past the retention, full"
    " rate buckets, audit rows past the audit retention; by table.",
    ["table"],
)

CERTIFICATES_EXPIRING = prometheus_client.Gauge(
    "hookstream_janitor_client_certificates_expiring",
    "Webhook client certificates that expire within the notice period or have expired, as of"
    " the last pass.",
)
CERTIFICATE_NOTICES = prometheus_client.Counter(
    "hookstream_janitor_certificate_expiry_notices_total",
    "Expiring client certificates noticed (once per certificate; see"
    " hookstream_janitor.certificates).",
)


def record_pass(report: PassReport) -> None:
    """Count what a successful pass did and stamp its end."""
    PARTITIONS_CREATED.inc(report.partitions_created)
    PARTITIONS_DROPPED.inc(len(report.partitions_dropped))
    TOPICS_DELETED.inc(len(report.topics_deleted))
    OUTBOX_TRIMMED.inc(report.outbox_trimmed)
    ROWS_PURGED.labels("recoveries").inc(report.recoveries_purged)
    ROWS_PURGED.labels("rate_buckets").inc(report.rate_buckets_purged)
    CERTIFICATES_EXPIRING.set(report.certificates_expiring)
    ROWS_PURGED.labels("audit_events").inc(report.audit_events_pruned)
    PASSES.labels("success").inc()
    LAST_SUCCESS.set_to_current_time()
