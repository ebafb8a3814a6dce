-- The OpenTelemetry trace id of a delivery's latest traced attempt (issue 23 item 1,
-- docs/tracing.md), so an operator goes from a history row to its trace. NULL while tracing is
-- off. Nullable without a default: adding it rewrites no partition.
ALTER TABLE deliveries ADD COLUMN trace_id text;
