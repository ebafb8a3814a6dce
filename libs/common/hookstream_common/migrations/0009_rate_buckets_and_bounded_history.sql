-- Every action a tenant can repeat is rate limited, per tenant and per user (issue 18 items 4
-- and 7): the write-rate buckets become buckets of any name (hookstream_api.rate_limits), such
-- as `write/tenant/<tenant>` or `action/user/<tenant>/<user>`. A bucket whose `tat` is past is
-- full, the same as no row, so the janitor deletes those. Old buckets are full soon enough.
DROP TABLE write_rate_buckets;
CREATE TABLE rate_buckets (
    bucket text PRIMARY KEY,
    tat    timestamptz NOT NULL
);
CREATE INDEX rate_buckets_tat ON rate_buckets (tat);

-- A response body is stored once, on its delivery (`response`), as the API shows it: attempts
-- kept a second copy that nothing read.
ALTER TABLE delivery_attempts DROP COLUMN response_body;

-- Recoveries take turns: the worker claims the running recovery worked on least recently, one
-- page at a time, so one tenant's long recovery never holds up another's.
ALTER TABLE recoveries ADD COLUMN worked_at timestamptz;
DROP INDEX recoveries_running;
CREATE INDEX recoveries_running ON recoveries (worked_at NULLS FIRST, created_at)
    WHERE state = 'running';
CREATE INDEX recoveries_finished ON recoveries (finished_at) WHERE finished_at IS NOT NULL;
