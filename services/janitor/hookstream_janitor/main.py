"""Entry point of `hookstream-janitor`: a loop, or one pass with `--once` (for a CronJob)."""

import argparse
import asyncio
import contextlib
import signal
from datetime import UTC, datetime, timedelta

import prometheus_client
import structlog

from hookstream_common.db import create_pool, migrate
from hookstream_common.logging import configure_logging
from hookstream_common.ops import start_ops_server
from hookstream_janitor.housekeeping import prune_history
from hookstream_janitor.settings import JanitorSettings

log = structlog.get_logger(__name__)

LAST_SUCCESS = prometheus_client.Gauge(
    "hookstream_janitor_last_success_timestamp_seconds", "When the last pass finished."
)
PRUNED = prometheus_client.Counter(
    "hookstream_janitor_deliveries_pruned_total", "History rows removed past retention."
)


async def run(settings: JanitorSettings, once: bool) -> None:
    """Run passes until stopped (or just one)."""
    await migrate(settings.database_url)
    pool = await create_pool(settings.database_url, max_size=2)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    ops = (
        None
        if once
        else await start_ops_server(settings.janitor_host, settings.janitor_port, lambda: True)
    )
    try:
        while True:
            retention = timedelta(days=settings.retention_days)
            PRUNED.inc(await prune_history(pool, datetime.now(UTC), retention))
            LAST_SUCCESS.set_to_current_time()
            if once:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.janitor_interval_seconds)
            if stop.is_set():
                break
    finally:
        if ops is not None:
            await ops.cleanup()
        await pool.close()


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="hookstream-janitor")
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    args = parser.parse_args()
    settings = JanitorSettings()
    configure_logging("janitor", settings.log_level, settings.log_format)
    asyncio.run(run(settings, args.once))


if __name__ == "__main__":
    main()
