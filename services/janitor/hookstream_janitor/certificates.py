"""Client certificates about to expire: found by the janitor and noticed once per certificate.

A notice is a warning in the log, a count, and the operational event
`com.hookstream.v1.webhook.certificate.expiring` to the tenant's webhooks that subscribe to it
(never to the webhook itself), put in the outbox in the transaction that records the notice, so
it is raised exactly once. `certificate_expiry_notices` remembers the `notAfter` each webhook was
noticed for, so a certificate is noticed once, and its successor again when its own time comes.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import structlog

from hookstream_common.operational import Subject, announce, certificate_expiring
from hookstream_janitor.metrics import CERTIFICATE_NOTICES

log = structlog.get_logger(__name__)

BATCH = 1000
"""Notices one pass raises at most (decision 10); the rest wait for the next pass."""

_DUE_SQL = """
SELECT w.id, w.tenant_id, w.name, w.owner_id, w.client_certificate_subject,
       w.client_certificate_not_after
FROM webhooks w LEFT JOIN certificate_expiry_notices n ON n.webhook_id = w.id
WHERE w.client_certificate_not_after < $1
  AND n.not_after IS DISTINCT FROM w.client_certificate_not_after
ORDER BY w.client_certificate_not_after
LIMIT $2
"""
_NOTICED_SQL = """
INSERT INTO certificate_expiry_notices (webhook_id, not_after) VALUES ($1, $2)
ON CONFLICT (webhook_id) DO UPDATE SET not_after = EXCLUDED.not_after, noticed_at = now()
"""


@dataclass(frozen=True)
class ExpiringCertificate:
    """A webhook's client certificate that expires within the notice period (or has)."""

    webhook: Subject
    subject: str
    not_after: datetime


async def notice(conn: asyncpg.Connection, certificate: ExpiringCertificate, now: datetime) -> None:
    """Notice one expiring certificate: the operational event, the log line, the count."""
    await announce(
        conn,
        [
            certificate_expiring(
                certificate.webhook, certificate.subject, certificate.not_after, now
            )
        ],
    )
    CERTIFICATE_NOTICES.inc()
    log.warning(
        "client certificate expiring",
        tenant_id=certificate.webhook.tenant_id,
        webhook_id=certificate.webhook.id,
        subject=certificate.subject,
        not_after=certificate.not_after.isoformat(),
        days_left=max((certificate.not_after - now).days, 0),
    )


async def notice_expiring_certificates(
    conn: asyncpg.Connection, now: datetime, within: timedelta
) -> tuple[int, int]:
    """Notice each certificate expiring before `now + within` that was not noticed yet, each in
    a transaction with its record; return (noticed now, expiring in all)."""
    rows = await conn.fetch(_DUE_SQL, now + within, BATCH)
    for row in rows:
        webhook = Subject(str(row["id"]), row["tenant_id"], row["name"], row["owner_id"])
        certificate = ExpiringCertificate(
            webhook, row["client_certificate_subject"], row["client_certificate_not_after"]
        )
        async with conn.transaction():
            await notice(conn, certificate, now)
            await conn.execute(_NOTICED_SQL, row["id"], row["client_certificate_not_after"])
    expiring = await conn.fetchval(
        "SELECT count(*) FROM webhooks WHERE client_certificate_not_after < $1", now + within
    )
    return len(rows), expiring
