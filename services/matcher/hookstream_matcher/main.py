"""Entry point of `hookstream-matcher`: a faust worker with the project's JSON logging."""

import asyncio
import logging

import faust
from aiokafka.admin import AIOKafkaAdminClient

from hookstream_common.kafka import core_topics, ensure_topics
from hookstream_common.logging import configure_logging
from hookstream_matcher.app import create_app
from hookstream_matcher.settings import MatcherSettings


class _Worker(faust.Worker):
    """A faust worker that logs like every other service."""

    settings: MatcherSettings

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        configure_logging("matcher", self.settings.log_level, self.settings.log_format)


async def _ensure_core_topics(settings: MatcherSettings) -> None:
    """Create the shared topics with their real settings before faust would guess them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await ensure_topics(admin, core_topics(settings.topics, settings.kafka_replication_factor))
    finally:
        await admin.close()


def main() -> None:
    """Run the matcher until SIGTERM."""
    settings = MatcherSettings()
    asyncio.run(_ensure_core_topics(settings))
    worker = _Worker(create_app(settings), loglevel=settings.log_level, redirect_stdouts=False)
    worker.settings = settings
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
