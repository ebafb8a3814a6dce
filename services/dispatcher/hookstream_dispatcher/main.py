"""Entry point of `hookstream-dispatcher`: the delivery lanes, the retry tiers, and /metrics."""

import asyncio
import contextlib
import signal
from datetime import timedelta

import structlog
from aiokafka.admin import AIOKafkaAdminClient

from hookstream_common.crypto import SecretBox, parse_keys
from hookstream_common.db import create_pool, migrate
from hookstream_common.http_client import delivery_session
from hookstream_common.kafka import producer
from hookstream_common.logging import configure_logging
from hookstream_common.ops import start_ops_server
from hookstream_dispatcher.retries import RetryScheduler, ensure_tier_topics
from hookstream_dispatcher.settings import DispatcherSettings
from hookstream_dispatcher.targets import TargetCache
from hookstream_dispatcher.worker import Dispatcher
from hookstream_dispatcher.writer import HistoryWriter

log = structlog.get_logger(__name__)


async def serve(settings: DispatcherSettings) -> None:
    """Run until SIGTERM or SIGINT, then finish in-flight work within the grace period."""
    await migrate(settings.database_url)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    await ensure_tier_topics(admin, settings)
    await admin.close()
    pool = await create_pool(settings.database_url, max_size=20)
    targets = TargetCache(
        settings.database_url, pool, SecretBox(parse_keys(settings.encryption_keys))
    )
    await targets.start()
    kafka = producer(settings.kafka_bootstrap_servers)
    await kafka.start()
    session = delivery_session(settings, limit=settings.max_in_flight)
    writer = HistoryWriter(
        pool,
        timedelta(seconds=settings.auto_disable_after_seconds),
        settings.auto_disable_min_failures,
    )
    dispatcher = Dispatcher(settings, pool, targets, writer, session, kafka)
    scheduler = RetryScheduler(settings, kafka, targets)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: (dispatcher.stop(), scheduler.stop()))
    ops = await start_ops_server(
        settings.dispatcher_host, settings.dispatcher_port, lambda: dispatcher.started
    )
    # The writer outlives the lanes (they wait for their last outcomes), and its failure, like
    # theirs, ends the process rather than leave it hanging: a restart re-delivers.
    writing = asyncio.create_task(writer.run(), name="history-writer")
    log.info("dispatcher started", group=settings.dispatcher_group_id)
    try:
        work = asyncio.gather(dispatcher.run(), scheduler.run())
        done, _ = await asyncio.wait({work, writing}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        writing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writing
        await ops.cleanup()
        await session.close()
        await kafka.stop()
        await targets.stop()
        await pool.close()
        log.info("dispatcher stopped")


def main() -> None:
    """Entry point."""
    settings = DispatcherSettings()
    configure_logging("dispatcher", settings.log_level, settings.log_format)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
