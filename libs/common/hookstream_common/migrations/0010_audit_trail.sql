-- The audit trail (issue 23 item 3, hookstream_common.audit): one row per management action,
-- written in the transaction of the change it records. It outlives the webhook (no foreign key),
-- so who deleted one stays on record. `owner_id` is the webhook's owner when it happened: a user
-- who is no TenantAdmin reads only the rows of webhooks they owned. Never a secret or header
-- value: `changed` holds field names, `details` ids and codes.
CREATE TABLE audit_events (
    id             uuid PRIMARY KEY,
    tenant_id      text NOT NULL,
    webhook_id     uuid NOT NULL,
    owner_id       text NOT NULL,
    actor          text NOT NULL,
    source_address text,
    action         text NOT NULL,
    changed        text[] NOT NULL DEFAULT '{}',
    details        jsonb NOT NULL DEFAULT '{}',
    trace_id       text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
-- The two lists, newest first, keyset-paged on (created_at, id).
CREATE INDEX audit_events_tenant_created ON audit_events (tenant_id, created_at DESC, id DESC);
CREATE INDEX audit_events_webhook_created ON audit_events (webhook_id, created_at DESC, id DESC);
-- The janitor's batched prune of rows past HOOKSTREAM_AUDIT_RETENTION_DAYS.
CREATE INDEX audit_events_created ON audit_events (created_at);
