-- The counts behind the health fields, kept as rollups by the store-outcome step
-- (hookstream_common.history.record_outcomes) so a list reads the same number of rows per
-- webhook however many deliveries it had (decision 13). Each change is added to a minute row
-- and to an hour row: a window is read as its whole hours plus the minutes before the first of
-- them (at most about 60 + 40 rows per webhook and window). `attempts` and `succeeded` count
-- attempts by the time they started; `retries_due` counts failed deliveries by the time their
-- next attempt is due. Partitioned by day like the history, and dropped with it.
CREATE TABLE webhook_health_counts (
    webhook_id  uuid NOT NULL,
    span        text NOT NULL CHECK (span IN ('minute', 'hour')),
    bucket      timestamptz NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    succeeded   integer NOT NULL DEFAULT 0,
    retries_due integer NOT NULL DEFAULT 0,
    PRIMARY KEY (webhook_id, span, bucket)
) PARTITION BY RANGE (bucket);

CREATE OR REPLACE FUNCTION hookstream_ensure_partitions(first_day date, last_day date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    parent text;
    day date;
    created integer := 0;
BEGIN
    FOREACH parent IN ARRAY
        ARRAY['deliveries', 'delivery_attempts', 'event_bodies', 'webhook_health_counts'] LOOP
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

-- The counts of what is already stored: attempts of the last two days, retries still due (each
-- in its day's partition; migrate makes today's and the coming days' afterwards).
CREATE TEMPORARY TABLE counted ON COMMIT DROP AS
SELECT webhook_id, started_at AS at, 1 AS tried,
    coalesce(status_code BETWEEN 200 AND 299, false)::int AS ok,
    0 AS due
FROM delivery_attempts WHERE started_at >= now() - interval '2 days'
UNION ALL
SELECT webhook_id, next_attempt_at, 0, 0, 1 FROM deliveries
WHERE status = 'fail' AND next_attempt_at >= now() - interval '2 days';

SELECT hookstream_ensure_partitions(day, day)
FROM (SELECT DISTINCT (at AT TIME ZONE 'UTC')::date AS day FROM counted) AS days;

INSERT INTO webhook_health_counts (webhook_id, span, bucket, attempts, succeeded, retries_due)
SELECT webhook_id, span.name, date_trunc(span.name, at, 'UTC'), sum(tried), sum(ok), sum(due)
FROM counted CROSS JOIN (VALUES ('minute'), ('hour')) AS span (name)
GROUP BY webhook_id, span.name, date_trunc(span.name, at, 'UTC');

-- Only the success rates counted from the attempts used this index (0006); every attempt
-- written paid for it.
DROP INDEX delivery_attempts_webhook_started;
