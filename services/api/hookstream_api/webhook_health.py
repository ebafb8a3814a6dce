"""The read-only health fields of webhooks (a Hookstream extension), for a page at a time.

The last attempt, its status and the run of failures are kept by the store-outcome step
(`hookstream_common.history.record_outcomes`) in `webhook_health`; the success rates and the
pending retries are counted here with one grouped statement for the whole page.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from hookstream_common.history import PENDING_ATTEMPT_SQL

_HEALTH_SQL = f"""
WITH page AS (SELECT unnest($1::uuid[]) AS webhook_id),
attempts AS (
    SELECT webhook_id,
        count(*) FILTER (WHERE started_at >= now() - interval '1 hour') AS tried_1h,
        count(*) FILTER (WHERE started_at >= now() - interval '1 hour'
            AND status_code BETWEEN 200 AND 299) AS ok_1h,
        count(*) AS tried_24h,
        count(*) FILTER (WHERE status_code BETWEEN 200 AND 299) AS ok_24h
    FROM delivery_attempts
    WHERE webhook_id = ANY($1::uuid[]) AND started_at >= now() - interval '24 hours'
    GROUP BY webhook_id
),
pending AS (
    SELECT webhook_id, count(*) AS retries FROM deliveries
    WHERE webhook_id = ANY($1::uuid[]) AND status = 'fail' AND {PENDING_ATTEMPT_SQL}
    GROUP BY webhook_id
)
SELECT page.webhook_id, h.last_delivery_at, h.last_status,
    coalesce(h.consecutive_failures, 0) AS consecutive_failures,
    a.tried_1h, a.ok_1h, a.tried_24h, a.ok_24h, coalesce(p.retries, 0) AS pending_retries
FROM page
LEFT JOIN webhook_health h ON h.webhook_id = page.webhook_id
LEFT JOIN attempts a ON a.webhook_id = page.webhook_id
LEFT JOIN pending p ON p.webhook_id = page.webhook_id
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
