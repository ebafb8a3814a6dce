-- The relay marks an outbox row it can never publish (say, a route set over the broker's message
-- limit) as failed, with why, instead of retrying it forever in front of every other tenant.
-- Requeue one by clearing both columns; the tenant's next change republishes its set anyway.
ALTER TABLE outbox ADD COLUMN failed_at timestamptz, ADD COLUMN error text;
DROP INDEX outbox_unpublished;
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL AND failed_at IS NULL;

-- The per-tenant write rate (hookstream_api.write_rate): one GCRA timestamp per tenant, when its
-- token bucket would be full again.
CREATE TABLE write_rate_buckets (
    tenant_id text PRIMARY KEY,
    tat       timestamptz NOT NULL
);
