-- Durable recoveries, and what recover and the janitor need to know about attempts in flight.

-- When the next attempt of a delivery is due: set when an outcome schedules a retry and when a
-- recovery queues the delivery, cleared by an outcome that schedules nothing. Recover skips, and
-- the janitor keeps the day of, a delivery whose next attempt is pending.
ALTER TABLE deliveries ADD COLUMN next_attempt_at timestamptz;
-- When the delivery last changed (an outcome was stored, or a recovery queued it): a recovery
-- takes only deliveries unchanged since it was requested, so the same window recovered twice
-- sends once however the two interleave with the attempts.
ALTER TABLE deliveries ADD COLUMN changed_at timestamptz;
CREATE INDEX deliveries_next_attempt ON deliveries (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;

-- One row per recover request; the worker that queues it keeps its keyset cursor here, so a
-- recovery resumes where it stopped after a crash.
CREATE TABLE recoveries (
    id                  uuid PRIMARY KEY,
    tenant_id           text NOT NULL,
    webhook_id          uuid NOT NULL,
    since               timestamptz NOT NULL,
    until               timestamptz NOT NULL,
    state               text NOT NULL DEFAULT 'running'
                        CHECK (state IN ('running', 'done', 'cancelled', 'failed')),
    total               integer NOT NULL,
    queued              integer NOT NULL DEFAULT 0,
    cursor_triggered_at timestamptz,
    cursor_id           uuid,
    created_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz
);
CREATE INDEX recoveries_running ON recoveries (created_at) WHERE state = 'running';
CREATE INDEX recoveries_webhook ON recoveries (webhook_id, created_at DESC);
