-- Delivery history range-partitioned by day on the trigger time, so retention drops whole
-- partitions at the same cost however many rows a day held. Event bodies are stored once per
-- event (all deliveries of an event share its trigger time) instead of once per delivery.
-- Existing rows are copied over.

CREATE FUNCTION hookstream_partition_name(parent text, day date) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT parent || '_p' || to_char(day, 'YYYYMMDD') $$;

-- Create the daily partitions of every history table for first_day .. last_day (UTC days).
CREATE FUNCTION hookstream_ensure_partitions(first_day date, last_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    parent text;
    day date;
    created integer := 0;
BEGIN
    FOREACH parent IN ARRAY ARRAY['deliveries', 'delivery_attempts', 'event_bodies'] LOOP
        day := first_day;
        WHILE day <= last_day LOOP
            IF to_regclass(hookstream_partition_name(parent, day)) IS NULL THEN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                    hookstream_partition_name(parent, day), parent,
                    (day::text || ' 00:00:00+00')::timestamptz,
                    ((day + 1)::text || ' 00:00:00+00')::timestamptz);
                created := created + 1;
            END IF;
            day := day + 1;
        END LOOP;
    END LOOP;
    RETURN created;
END $$;

ALTER TABLE deliveries RENAME TO deliveries_unpartitioned;
ALTER TABLE delivery_attempts RENAME TO delivery_attempts_unpartitioned;
ALTER INDEX deliveries_webhook_triggered RENAME TO deliveries_unpartitioned_webhook_triggered;
ALTER INDEX deliveries_triggered RENAME TO deliveries_unpartitioned_triggered;
ALTER INDEX delivery_attempts_started RENAME TO delivery_attempts_unpartitioned_started;

CREATE TABLE event_bodies (
    tenant_id    text NOT NULL,
    event_id     text NOT NULL,
    triggered_at timestamptz NOT NULL,
    body         jsonb NOT NULL,
    PRIMARY KEY (tenant_id, event_id, triggered_at)
) PARTITION BY RANGE (triggered_at);

CREATE TABLE deliveries (
    id             uuid NOT NULL,
    tenant_id      text NOT NULL,
    webhook_id     uuid NOT NULL,
    event_id       text NOT NULL,
    event_type     text NOT NULL,
    status         text NOT NULL CHECK (status IN ('success', 'fail')),
    status_message text NOT NULL DEFAULT '',
    triggered_at   timestamptz NOT NULL,
    cloud_event    boolean NOT NULL DEFAULT false,
    request        jsonb NOT NULL,
    response       jsonb,
    attempts       integer NOT NULL DEFAULT 1,
    PRIMARY KEY (id, triggered_at)
) PARTITION BY RANGE (triggered_at);
CREATE INDEX deliveries_webhook_triggered ON deliveries (webhook_id, triggered_at DESC, id DESC);

CREATE TABLE delivery_attempts (
    delivery_id    uuid NOT NULL,
    attempt        integer NOT NULL,
    triggered_at   timestamptz NOT NULL,
    tenant_id      text NOT NULL,
    webhook_id     uuid NOT NULL,
    started_at     timestamptz NOT NULL,
    duration_ms    double precision NOT NULL,
    status_code    integer,
    error_class    text,
    error          text,
    response_body  text,
    body_truncated boolean NOT NULL DEFAULT false,
    PRIMARY KEY (delivery_id, attempt, triggered_at)
) PARTITION BY RANGE (triggered_at);

-- Partitions for the rows being copied, and for today and the next days. Days are UTC days,
-- whatever the server's or the session's time zone.
SELECT hookstream_ensure_partitions(
    LEAST((SELECT min(triggered_at) FROM deliveries_unpartitioned) AT TIME ZONE 'UTC',
          now() AT TIME ZONE 'UTC')::date,
    (now() AT TIME ZONE 'UTC')::date + 3);

INSERT INTO event_bodies (tenant_id, event_id, triggered_at, body)
SELECT DISTINCT ON (tenant_id, event_id, triggered_at) tenant_id, event_id, triggered_at,
       request -> 'body'
FROM deliveries_unpartitioned;

INSERT INTO deliveries (id, tenant_id, webhook_id, event_id, event_type, status, status_message,
                        triggered_at, cloud_event, request, response, attempts)
SELECT id, tenant_id, webhook_id, event_id, event_type, status, status_message, triggered_at,
       request -> 'body' ? 'specversion', request - 'body', response, attempts
FROM deliveries_unpartitioned;

INSERT INTO delivery_attempts (delivery_id, attempt, triggered_at, tenant_id, webhook_id,
                               started_at, duration_ms, status_code, error_class, error,
                               response_body, body_truncated)
SELECT a.delivery_id, a.attempt, d.triggered_at, a.tenant_id, a.webhook_id, a.started_at,
       a.duration_ms, a.status_code, a.error_class, a.error, a.response_body, a.body_truncated
FROM delivery_attempts_unpartitioned a JOIN deliveries_unpartitioned d ON d.id = a.delivery_id;

DROP TABLE delivery_attempts_unpartitioned;
DROP TABLE deliveries_unpartitioned;
