"""One pass of housekeeping: remove the delivery history past retention."""

from datetime import datetime, timedelta

import asyncpg
import structlog

log = structlog.get_logger(__name__)

_BATCH = 10_000


async def prune_history(pool: asyncpg.Pool, now: datetime, retention: timedelta) -> int:
    """Delete deliveries triggered before `now - retention`, in batches; return how many."""
    cutoff = now - retention
    removed = 0
    while True:
        status = await pool.execute(
            "DELETE FROM deliveries WHERE id IN ("
            f" SELECT id FROM deliveries WHERE triggered_at < $1 LIMIT {_BATCH})",
            cutoff,
        )
        count = int(status.split()[-1])
        removed += count
        if count < _BATCH:
            break
    log.info("history pruned", removed=removed, cutoff=cutoff.isoformat())
    return removed
