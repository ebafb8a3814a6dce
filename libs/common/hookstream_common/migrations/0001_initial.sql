-- Webhooks, the outbox that publishes their changes, and the delivery history.

CREATE TABLE webhooks (
    id                           uuid PRIMARY KEY,
    tenant_id                    text NOT NULL,
    name                         text NOT NULL,
    description                  text NOT NULL DEFAULT '',
    url                          text NOT NULL,
    event_types                  text[] NOT NULL,
    level                        text NOT NULL CHECK (level IN ('tenant', 'user')),
    owner_id                     text NOT NULL,
    filter                       text,
    enabled                      boolean NOT NULL DEFAULT true,
    headers                      jsonb NOT NULL DEFAULT '{}',
    encrypted_headers            bytea,
    encrypted_header_names       text[] NOT NULL DEFAULT '{}',
    secret                       bytea,
    enable_cloud_event_delivery  boolean NOT NULL DEFAULT false,
    check_certificate_revocation boolean NOT NULL DEFAULT false,
    origin                       text NOT NULL DEFAULT 'api',
    created_at                   timestamptz NOT NULL DEFAULT now(),
    updated_at                   timestamptz NOT NULL DEFAULT now(),
    created_by_user_id           text NOT NULL,
    updated_by_user_id           text NOT NULL,
    disabled_reason              text,
    disabled_reason_code         text
);
CREATE INDEX webhooks_tenant_created ON webhooks (tenant_id, created_at DESC, id DESC);

-- One row per change; the relay publishes the tenant's webhook set and marks the row.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    tenant_id    text NOT NULL,
    webhook_id   uuid NOT NULL,
    kind         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Webhooks deleted through the API whose delivery topics the janitor has yet to remove.
CREATE TABLE deleted_webhooks (
    webhook_id uuid PRIMARY KEY,
    tenant_id  text NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE deliveries (
    id             uuid PRIMARY KEY,
    tenant_id      text NOT NULL,
    webhook_id     uuid NOT NULL,
    event_id       text NOT NULL,
    event_type     text NOT NULL,
    status         text NOT NULL CHECK (status IN ('success', 'fail')),
    status_message text NOT NULL DEFAULT '',
    triggered_at   timestamptz NOT NULL,
    request        jsonb NOT NULL,
    response       jsonb
);
CREATE INDEX deliveries_webhook_triggered ON deliveries (webhook_id, triggered_at DESC, id DESC);
CREATE INDEX deliveries_triggered ON deliveries (triggered_at);
