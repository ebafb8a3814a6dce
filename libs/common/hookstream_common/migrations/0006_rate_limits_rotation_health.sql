-- Hookstream extensions of the webhook (beyond the Qlik API): a rate limit its dispatcher lane
-- enforces, the previous secret kept valid for a grace window after a rotation, and what the
-- health fields need.

ALTER TABLE webhooks
    ADD COLUMN rate_limit_per_second double precision CHECK (rate_limit_per_second > 0),
    ADD COLUMN rate_limit_burst integer CHECK (rate_limit_burst >= 1),
    ADD COLUMN secret_rotation_grace_seconds integer NOT NULL DEFAULT 86400
        CHECK (secret_rotation_grace_seconds >= 0),
    -- Encrypted like `secret`; signs alongside it until previous_secret_expires_at.
    ADD COLUMN previous_secret bytea,
    ADD COLUMN previous_secret_expires_at timestamptz;

-- Kept by the one store-outcome step (hookstream_common.history.record_outcomes), next to the
-- run of failures it already keeps there; only the API writes webhook rows (decision 1).
ALTER TABLE webhook_health
    ADD COLUMN last_delivery_at timestamptz,
    ADD COLUMN last_status text CHECK (last_status IN ('success', 'fail'));

-- The success rates of a page of webhooks: one grouped count over their last 24 h of attempts.
CREATE INDEX delivery_attempts_webhook_started
    ON delivery_attempts (webhook_id, started_at) INCLUDE (status_code);
