-- Operational events (hookstream_common.operational) ride the outbox: a row of kind 'event'
-- carries the event to publish to the events topic, written in the transaction that stores its
-- cause, so it is published at least once and never before that cause is committed.
ALTER TABLE outbox ADD COLUMN event json;

-- The run of failed attempts that a batch's first success ended (0 when the last batch had
-- no success or ended no run): set under the row's lock by the store-outcome step, so
-- `webhook.recovered` is raised once however many writers race.
ALTER TABLE webhook_health ADD COLUMN run_ended integer NOT NULL DEFAULT 0;
