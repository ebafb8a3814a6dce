-- Every attempt of every delivery, and what auto-disable needs to know per webhook.

ALTER TABLE deliveries ADD COLUMN attempts integer NOT NULL DEFAULT 1;

CREATE TABLE delivery_attempts (
    delivery_id    uuid NOT NULL,
    attempt        integer NOT NULL,
    tenant_id      text NOT NULL,
    webhook_id     uuid NOT NULL,
    started_at     timestamptz NOT NULL,
    duration_ms    double precision NOT NULL,
    status_code    integer,
    error_class    text,
    error          text,
    response_body  text,
    body_truncated boolean NOT NULL DEFAULT false,
    PRIMARY KEY (delivery_id, attempt)
);
CREATE INDEX delivery_attempts_started ON delivery_attempts (started_at);

CREATE TABLE webhook_health (
    webhook_id           uuid PRIMARY KEY,
    consecutive_failures integer NOT NULL DEFAULT 0,
    failing_since        timestamptz
);
