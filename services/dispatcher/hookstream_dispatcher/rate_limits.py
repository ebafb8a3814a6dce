"""A webhook's rate limit, enforced in its lane: a token bucket awaited before each job starts.

Every job of a webhook, first attempt or due retry, starts in the webhook's lane (retries are
queued back onto its topic), and shard leases make one dispatcher the only one running that
lane, so the limit holds exactly there. A job over the limit waits in the lane; once the lane's
buffer is full its topic is paused. Nothing is dropped and nothing fails because of the limit.
"""

import asyncio
from collections.abc import Awaitable, Callable

from aiolimiter import AsyncLimiter

from hookstream_common.resilience import TRANSIENT
from hookstream_common.webhook_model import RateLimit


def token_bucket(limit: RateLimit) -> AsyncLimiter:
    """A bucket of `burst` tokens refilled at `per_second`.

    aiolimiter's leaky bucket is the same thing seen from the other side: it admits `max_rate`
    at once and drains at `max_rate / time_period`, so max_rate = burst and
    time_period = burst / per_second.
    """
    return AsyncLimiter(limit.burst, limit.burst / limit.per_second)


class Throttle:
    """One lane's bucket, rebuilt (full) whenever the webhook's limit changes.

    `limit_of` reads the limit from the dispatcher's target cache, which a webhook change
    evicts at once (Postgres NOTIFY), so a new limit applies from the next job on.
    """

    def __init__(self, limit_of: Callable[[], Awaitable[RateLimit | None]]) -> None:
        self._limit_of = limit_of
        self._limit: RateLimit | None = None
        self._bucket: AsyncLimiter | None = None

    async def wait(self, closed: asyncio.Event) -> bool:
        """Take a token, waiting as long as the limit requires; False if `closed` came first."""
        bucket = await self._current()
        if bucket is None or bucket.has_capacity():
            if bucket is not None:
                await bucket.acquire()  # has capacity: returns without waiting
            return True
        acquiring = asyncio.ensure_future(bucket.acquire())
        closing = asyncio.ensure_future(closed.wait())
        try:
            await asyncio.wait({acquiring, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            acquiring.cancel()
            closing.cancel()
        return not closed.is_set()

    async def _current(self) -> AsyncLimiter | None:
        """The bucket of the current limit; while the limit cannot be read (Postgres is
        unreachable), the last one known."""
        try:
            limit = await self._limit_of()
        except TRANSIENT:
            return self._bucket
        if limit != self._limit:
            self._limit = limit
            self._bucket = token_bucket(limit) if limit is not None else None
        return self._bucket
