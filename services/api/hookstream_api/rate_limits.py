"""Rate limits of everything a tenant can repeat: webhook writes, and the actions that send
(resend, recover, test). Each is a token bucket per tenant, and a smaller one per user inside
it, so one user cannot spend the whole tenant's allowance and lock out its colleagues.

Every write costs the pipeline more than a row (the relay republishes the tenant's route set, the
matcher and the dispatchers reload it, a create makes a topic), and every action sends requests
on the tenant's behalf: both are capped.

The buckets live in Postgres, not in memory, so a limit is global: with N API replicas behind a
load balancer an in-memory bucket would let a tenant act N times the rate, and a restart would
refill it. It costs one upsert per bucket and request. (The `limits` library was the candidate,
but it keeps counters in memory, Redis, Memcached or MongoDB, none of which this service has.)

Each bucket is one timestamp, the GCRA form of a token bucket: `tat`, when the bucket would be
full again. A request is allowed if, after adding its interval `1/rate` to `tat`, the bucket is
no more than `burst` intervals ahead of now; then `tat` is stored, atomically with the check. A
bucket whose `tat` has passed is full, like one never used, so the janitor deletes it.
"""

import math
from dataclasses import dataclass

import asyncpg

_TAKE = """
INSERT INTO rate_buckets AS b (bucket, tat) VALUES ($1, now() + make_interval(secs => $2))
ON CONFLICT (bucket) DO UPDATE SET tat = greatest(b.tat, now()) + make_interval(secs => $2)
WHERE greatest(b.tat, now()) + make_interval(secs => $2) <= now() + make_interval(secs => $3)
RETURNING tat
"""
_WAIT = """
SELECT extract(epoch FROM greatest(tat, now()) + make_interval(secs => $2)
                          - (now() + make_interval(secs => $3)))
FROM rate_buckets WHERE bucket = $1
"""


@dataclass(frozen=True)
class Rate:
    """At most `per_second` a second, `burst` at once."""

    per_second: float
    burst: int

    @property
    def interval(self) -> float:
        """Seconds one request uses up."""
        return 1 / self.per_second

    @property
    def depth(self) -> float:
        """Seconds of requests a full bucket holds."""
        return self.burst * self.interval

    def share(self, fraction: float) -> "Rate":
        """The part of this rate one user of the tenant may use (a burst of at least one)."""
        return Rate(self.per_second * fraction, max(1, math.floor(self.burst * fraction)))


@dataclass(frozen=True)
class Limit:
    """One kind of repeatable request (`write`, `action`) and its rate per tenant; each user
    gets `user_share` of it."""

    kind: str
    tenant: Rate
    user_share: float

    def buckets(self, tenant_id: str, user_id: str) -> list[tuple[str, Rate]]:
        """The user's bucket, then the tenant's: a user over its share does not use up the
        tenant's."""
        return [
            (f"{self.kind}/user/{tenant_id}/{user_id}", self.tenant.share(self.user_share)),
            (f"{self.kind}/tenant/{tenant_id}", self.tenant),
        ]


async def take(pool: asyncpg.Pool, bucket: str, rate: Rate) -> int | None:
    """Use one request of a bucket: None if allowed, else whole seconds to wait (>= 1)."""
    args = (bucket, rate.interval, rate.depth)
    if await pool.fetchval(_TAKE, *args) is not None:
        return None
    wait = await pool.fetchval(_WAIT, *args)
    return max(1, math.ceil(float(wait or 0)))


async def take_all(pool: asyncpg.Pool, limit: Limit, tenant_id: str, user_id: str) -> int | None:
    """Use one request of each of the caller's buckets: None if all allowed, else the whole
    seconds to wait at the first that refused."""
    for bucket, rate in limit.buckets(tenant_id, user_id):
        wait = await take(pool, bucket, rate)
        if wait is not None:
            return wait
    return None


class InFlight:
    """At most `per_tenant` requests of one tenant waiting on receivers at once, in this process.

    Resends and test events are sent while the caller waits, over the outbound connections all
    tenants share: without this, one tenant's slow receivers could hold every one of them. Only
    tenants with something in flight have an entry, so it never outgrows the requests served.
    """

    def __init__(self, per_tenant: int) -> None:
        self._per_tenant = per_tenant
        self._counts: dict[str, int] = {}

    def enter(self, tenant_id: str) -> bool:
        """Take a slot; False when the tenant has all of its slots in use."""
        count = self._counts.get(tenant_id, 0)
        if count >= self._per_tenant:
            return False
        self._counts[tenant_id] = count + 1
        return True

    def leave(self, tenant_id: str) -> None:
        """Give a slot back."""
        count = self._counts.pop(tenant_id) - 1
        if count:
            self._counts[tenant_id] = count
