"""Client certificates about to expire: found by the janitor and noticed once per certificate.

`certificate_expiring` is where the operational event for an expiring certificate is raised
(issue 22: 14 days before, a `com.hookstream.v1.*` event to the tenant's webhooks). Until that
pipeline exists it logs a warning and counts. `certificate_expiry_notices` remembers the
`notAfter` each webhook was noticed for, so a certificate is noticed once, and its successor
again when its own time comes.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import structlog

from hookstream_janitor.metrics import CERTIFICATE_NOTICES

log = structlog.get_logger(__name__)

BATCH = 1000
"""Notices one pass raises at most (decision 10); the rest wait for the next pass."""

_DUE_SQL = """
SELECT w.id, w.tenant_id, w.client_certificate_subject, w.client_certificate_not_after
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

    webhook_id: str
    tenant_id: str
    subject: str
    not_after: datetime


async def certificate_expiring(certificate: ExpiringCertificate, now: datetime) -> None:
    """The hook of the operational event "a webhook's client certificate expires soon".

    Today: a warning and `hookstream_janitor_certificate_expiry_notices_total`. The operational
    events pipeline publishes its event from here, for the tenant's webhooks other than this one
    (a webhook never hears about itself).
    """
    CERTIFICATE_NOTICES.inc()
    log.warning(
        "client certificate expiring",
        tenant_id=certificate.tenant_id,
        webhook_id=certificate.webhook_id,
        subject=certificate.subject,
        not_after=certificate.not_after.isoformat(),
        days_left=max((certificate.not_after - now).days, 0),
    )


async def notice_expiring_certificates(
    conn: asyncpg.Connection, now: datetime, within: timedelta
) -> tuple[int, int]:
    """Raise `certificate_expiring` for each certificate expiring before `now + within` that
    was not noticed yet; return (noticed now, expiring in all)."""
    rows = await conn.fetch(_DUE_SQL, now + within, BATCH)
    for row in rows:
        await certificate_expiring(
            ExpiringCertificate(
                webhook_id=str(row["id"]),
                tenant_id=row["tenant_id"],
                subject=row["client_certificate_subject"],
                not_after=row["client_certificate_not_after"],
            ),
            now,
        )
        await conn.execute(_NOTICED_SQL, row["id"], row["client_certificate_not_after"])
    expiring = await conn.fetchval(
        "SELECT count(*) FROM webhooks WHERE client_certificate_not_after < $1", now + within
    )
    return len(rows), expiring
