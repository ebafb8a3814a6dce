"""Entry point of `hookstream-dispatcher`."""

import asyncio
import signal

import structlog
from hookstream_common.crypto import SecretBox, parse_keys
from hookstream_common.db import create_pool, migrate
from hookstream_common.http_client import delivery_session
from hookstream_common.logging import configure_logging
from hookstream_common.ops import start_ops_server

from hookstream_dispatcher.settings import DispatcherSettings
from hookstream_dispatcher.worker import Dispatcher

log = structlog.get_logger(__name__)


async def serve(settings: DispatcherSettings) -> None:
    """Run the dispatcher and its operations endpoints until SIGTERM or SIGINT."""
    await migrate(settings.database_url)
    pool = await create_pool(settings.database_url, max_size=20)
    session = delivery_session(settings, limit=settings.max_in_flight)
    box = SecretBox(parse_keys(settings.encryption_keys))
    dispatcher = Dispatcher(settings, pool, box, session)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, dispatcher.stop)
    ops = await start_ops_server(
        settings.dispatcher_host,
        settings.dispatcher_port,
        lambda: dispatcher.started,
    )
    log.info("dispatcher started", group=settings.group_id)
    try:
        await dispatcher.run()
    finally:
        await ops.cleanup()
        await session.close()
        await pool.close()
        log.info("dispatcher stopped")


def main() -> None:
    """Entry point."""
    settings = DispatcherSettings()
    configure_logging("dispatcher", settings.log_level, settings.log_format)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
