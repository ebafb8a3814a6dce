"""The per-tenant write rate: creates, updates and deletes of webhooks, as a token bucket.

Every write costs the pipeline more than a row: the relay republishes the tenant's whole route
set, the matcher and the dispatchers reload it, a create makes a topic. So one tenant's churn is
capped, at `rate` writes a second with bursts of `burst`.

The bucket lives in Postgres, not in memory, so the limit is global: with N API replicas behind a
load balancer an in-memory bucket would let a tenant write N times the rate, and a restart would
refill it. It costs one upsert per write, which a write already pays many times over. (The
`limits` library was the candidate, but it keeps counters in memory, Redis, Memcached or MongoDB,
none of which this service has.)

Each bucket is one timestamp, the GCRA form of a token bucket: `tat`, when the bucket would be
full again. A write is allowed if, after adding its interval `1/rate` to `tat`, the bucket is no
more than `burst` intervals ahead of now; then `tat` is stored, atomically with the check.
"""

import math
from dataclasses import dataclass

import asyncpg

_TAKE = """
INSERT INTO write_rate_buckets AS b (tenant_id, tat) VALUES ($1, now() + make_interval(secs => $2))
ON CONFLICT (tenant_id) DO UPDATE SET tat = greatest(b.tat, now()) + make_interval(secs => $2)
WHERE greatest(b.tat, now()) + make_interval(secs => $2) <= now() + make_interval(secs => $3)
RETURNING tat
"""
_WAIT = """
SELECT extract(epoch FROM greatest(tat, now()) + make_interval(secs => $2)
                          - (now() + make_interval(secs => $3)))
FROM write_rate_buckets WHERE tenant_id = $1
"""


@dataclass(frozen=True)
class WriteRate:
    """At most `per_second` writes a second per tenant, `burst` at once."""

    per_second: float
    burst: int

    @property
    def interval(self) -> float:
        """Seconds one write uses up."""
        return 1 / self.per_second

    @property
    def depth(self) -> float:
        """Seconds of writes a full bucket holds."""
        return self.burst * self.interval


async def take(pool: asyncpg.Pool, tenant_id: str, rate: WriteRate) -> int | None:
    """Use one write of the tenant's bucket: None if allowed, else whole seconds to wait (>= 1)."""
    args = (tenant_id, rate.interval, rate.depth)
    if await pool.fetchval(_TAKE, *args) is not None:
        return None
    wait = await pool.fetchval(_WAIT, *args)
    return max(1, math.ceil(float(wait or 0)))
