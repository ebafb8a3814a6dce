-- Client certificates, a Hookstream extension: a certificate chain (PEM) and its private key,
-- sealed like `secret`, that every request to the webhook presents. The subject and expiry are
-- kept beside them so the API and the janitor read them without parsing PEM.

ALTER TABLE webhooks
    ADD COLUMN client_certificate text,
    ADD COLUMN client_key bytea,
    ADD COLUMN client_certificate_subject text,
    ADD COLUMN client_certificate_not_after timestamptz,
    ADD CONSTRAINT client_certificate_whole CHECK (
        (client_certificate IS NULL) = (client_key IS NULL)
        AND (client_certificate IS NULL) = (client_certificate_not_after IS NULL)
    );

CREATE INDEX webhooks_client_certificate_not_after
    ON webhooks (client_certificate_not_after) WHERE client_certificate_not_after IS NOT NULL;

-- The janitor's own record of the expiry notices it raised: one per certificate (its notAfter),
-- so a webhook hears once about a certificate, and again about the next one. Kept apart from
-- `webhooks`, which only the API writes (decision 1).
CREATE TABLE certificate_expiry_notices (
    webhook_id uuid PRIMARY KEY REFERENCES webhooks (id) ON DELETE CASCADE,
    not_after timestamptz NOT NULL,
    noticed_at timestamptz NOT NULL DEFAULT now()
);
