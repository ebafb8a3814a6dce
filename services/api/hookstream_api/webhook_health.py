"""The read-only health fields of webhooks (a Hookstream extension), for a page at a time.

Everything is kept by the store-outcome step (`hookstream_common.history.record_outcomes`): the
last attempt, its status and the run of failures in `webhook_health`, and the counts behind the
success rates and pending retries as minute and hour rollups in `webhook_health_counts`
(`hookstream_common.health_counts`). A page reads at most a few hundred rollup rows per webhook,
however many deliveries it had. A window counts whole minutes and hours only, from its first
whole minute: it never shows an attempt older than the window, and leaves out at most the
minute it starts in.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from hookstream_common.history import PENDING_GRACE

# Each window is read as the minute rows from its start to its first whole hour, then the hour
# rows from there on (pending retries are due ahead, so they have no end).
_HEALTH_SQL = f"""
WITH windows (name, since) AS (VALUES
    ('1h', now() - interval '1 hour'),
    ('24h', now() - interval '24 hours'),
    ('due', now() - interval '{PENDING_GRACE}')
),
edges AS (
    SELECT name, since, CASE WHEN date_trunc('hour', since, 'UTC') = since THEN since
        ELSE date_trunc('hour', since, 'UTC') + interval '1 hour' END AS whole_hours
    FROM windows
),
counted AS (
    SELECT e.name, c.webhook_id, c.attempts, c.succeeded, c.retries_due
    FROM edges e JOIN webhook_health_counts c ON c.webhook_id = ANY($1::uuid[])
        AND c.span = 'minute' AND c.bucket >= e.since AND c.bucket < e.whole_hours
    UNION ALL
    SELECT e.name, c.webhook_id, c.attempts, c.succeeded, c.retries_due
    FROM edges e JOIN webhook_health_counts c ON c.webhook_id = ANY($1::uuid[])
        AND c.span = 'hour' AND c.bucket >= e.whole_hours
        AND c.bucket >= now() - interval '24 hours'  -- a bound the index and partitions use
),
sums AS (
    SELECT webhook_id,
        sum(attempts) FILTER (WHERE name = '1h') AS tried_1h,
        sum(succeeded) FILTER (WHERE name = '1h') AS ok_1h,
        sum(attempts) FILTER (WHERE name = '24h') AS tried_24h,
        sum(succeeded) FILTER (WHERE name = '24h') AS ok_24h,
        sum(retries_due) FILTER (WHERE name = 'due') AS retries
    FROM counted GROUP BY webhook_id
)
SELECT page.webhook_id, h.last_delivery_at, h.last_status,
    coalesce(h.consecutive_failures, 0) AS consecutive_failures,
    s.tried_1h, s.ok_1h, s.tried_24h, s.ok_24h, coalesce(s.retries, 0) AS pending_retries
FROM unnest($1::uuid[]) AS page (webhook_id)
LEFT JOIN webhook_health h ON h.webhook_id = page.webhook_id
LEFT JOIN sums s ON s.webhook_id = page.webhook_id
"""


@dataclass(frozen=True)
class WebhookHealth:
    """How a webhook's deliveries are going, as its extension fields show it."""

    last_delivery_at: datetime | None = None
    last_status: str | None = None
    consecutive_failures: int = 0
    success_rate_1h: float | None = None
    success_rate_24h: float | None = None
    pending_retries: int = 0

    def as_fields(self) -> dict[str, Any]:
        """The fields of the API's `Webhook`, by their Python names."""
        return {
            "last_delivery_at": self.last_delivery_at,
            "last_status": self.last_status,
            "consecutive_failures": self.consecutive_failures,
            "success_rate_1h": self.success_rate_1h,
            "success_rate_24h": self.success_rate_24h,
            "pending_retries": self.pending_retries,
        }


def _rate(succeeded: int | None, tried: int | None) -> float | None:
    return round(succeeded / tried, 4) if tried and succeeded is not None else None


async def load_health(
    conn: asyncpg.Pool | asyncpg.Connection, webhook_ids: list[uuid.UUID]
) -> dict[uuid.UUID, WebhookHealth]:
    """The health of each webhook of a page, in one statement; a webhook never tried is healthy
    with nothing to show."""
    if not webhook_ids:
        return {}
    rows = await conn.fetch(_HEALTH_SQL, webhook_ids)
    return {
        row["webhook_id"]: WebhookHealth(
            last_delivery_at=row["last_delivery_at"],
            last_status=row["last_status"],
            consecutive_failures=row["consecutive_failures"],
            success_rate_1h=_rate(row["ok_1h"], row["tried_1h"]),
            success_rate_24h=_rate(row["ok_24h"], row["tried_24h"]),
            pending_retries=row["pending_retries"],
        )
        for row in rows
    }
