"""Entry point of `hookstream-dispatcher`: the delivery lanes, the retry tiers, and /metrics.

Start-up waits for Postgres and Kafka (decision 10): the operations endpoints answer from the
first second, `/readyz` with 503 until both are reachable and the consumers have joined.
"""

import asyncio
import contextlib
import functools
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import structlog
import uvloop
from aiokafka import AIOKafkaProducer

from hookstream_common.client_certs import TlsContexts
from hookstream_common.crypto import SecretBox, parse_keys
from hookstream_common.db import create_pool, migrate
from hookstream_common.delivery import sender
from hookstream_common.http_client import DeliveryClient, delivery_session
from hookstream_common.kafka import core_topics, create_missing_topics, started_producer
from hookstream_common.logging import configure_logging
from hookstream_common.ops import start_ops_server, stop_on_signals
from hookstream_common.resilience import Readiness, kafka_check, keep_trying, postgres_check
from hookstream_common.tracing import configure_tracing
from hookstream_common.webhook_store import disable
from hookstream_dispatcher.attempts import Attempts
from hookstream_dispatcher.metrics import HISTORY_QUEUE
from hookstream_dispatcher.once import BatchedLookup, OncePerEvent, succeeded_in
from hookstream_dispatcher.retries import RetryScheduler, dispatcher_topics
from hookstream_dispatcher.settings import DispatcherSettings
from hookstream_dispatcher.targets import TargetCache
from hookstream_dispatcher.worker import Dispatcher
from hookstream_dispatcher.writer import HistoryWriter

log = structlog.get_logger(__name__)


@dataclass
class _Clients:
    """The connections the dispatcher works with, opened once the dependencies answer."""

    pool: asyncpg.Pool
    targets: TargetCache
    kafka: AIOKafkaProducer

    async def close(self) -> None:
        await self.kafka.stop()
        await self.targets.stop()
        await self.pool.close()


async def _connect(settings: DispatcherSettings) -> _Clients:
    """Wait for Postgres and Kafka, one step at a time, each retried until it succeeds."""
    await keep_trying(lambda: migrate(settings.database_url), "Postgres (migrations)")
    pool = await keep_trying(
        lambda: create_pool(settings.database_url, max_size=20, sessions_kept_clean=True),
        "Postgres (pool)",
    )
    targets = TargetCache(
        settings.database_url, pool, SecretBox(parse_keys(settings.encryption_keys))
    )
    await keep_trying(targets.start, "Postgres (change listener)")
    topics = core_topics(settings)
    await keep_trying(
        lambda: create_missing_topics(settings, topics + dispatcher_topics(settings)),
        "Kafka (topics)",
    )
    kafka = await keep_trying(
        lambda: started_producer(settings.kafka_bootstrap_servers, settings.kafka_security),
        "Kafka (producer)",
    )
    return _Clients(pool, targets, kafka)


async def _work(
    settings: DispatcherSettings, clients: _Clients, session: DeliveryClient
) -> tuple[Dispatcher, RetryScheduler, HistoryWriter]:
    writer = HistoryWriter(
        clients.pool,
        timedelta(seconds=settings.auto_disable_after_seconds),
        settings.auto_disable_min_failures,
        (clients.kafka, settings.topics.dispatch_dlq),
        settings.recovered_after_failures,
    )
    HISTORY_QUEUE.set_function(lambda: writer.waiting)
    attempts = Attempts(
        settings,
        clients.targets,
        writer,
        clients.kafka,
        send=sender(session, TlsContexts(settings.extra_ca_file)),
        disable=functools.partial(disable, clients.pool),
    )
    retention = timedelta(days=settings.retention_days)
    once = OncePerEvent(attempts.run, BatchedLookup(succeeded_in(clients.pool, retention)))
    dispatcher = await keep_trying(
        lambda: _started(Dispatcher(settings, attempts, once.run)), "Kafka (delivery consumers)"
    )
    scheduler = RetryScheduler(settings, clients.kafka, clients.targets)
    await keep_trying(scheduler.start, "Kafka (retry consumer)")
    return dispatcher, scheduler, writer


async def _started(dispatcher: Dispatcher) -> Dispatcher:
    """A dispatcher whose consumers are connected; a failed try closes what it opened."""
    try:
        await dispatcher.start()
    except BaseException:
        await dispatcher.close()
        raise
    return dispatcher


async def serve(settings: DispatcherSettings) -> None:
    """Run until SIGTERM or SIGINT, then finish in-flight work within the grace period."""
    parts: list[Dispatcher | RetryScheduler] = []
    readiness = Readiness(
        {
            "kafka": kafka_check(settings.kafka_bootstrap_servers, settings.kafka_security),
            "postgres": postgres_check(settings.database_url),
        },
        lambda: bool(parts),
    )
    ops = await start_ops_server(settings.dispatcher_host, settings.dispatcher_port, readiness)
    readiness.start()
    session = delivery_session(settings, limit=settings.max_in_flight)

    async def start() -> tuple[_Clients, Dispatcher, RetryScheduler, HistoryWriter]:
        clients = await _connect(settings)
        return (clients, *await _work(settings, clients, session))

    startup = asyncio.create_task(start())

    stop_on_signals(startup, parts)
    try:
        try:
            clients, dispatcher, scheduler, writer = await startup
        except asyncio.CancelledError:
            return
        parts.extend((dispatcher, scheduler))
        await _run(clients, dispatcher, scheduler, writer)
    finally:
        await readiness.stop()
        await ops.cleanup()
        await session.close()
        log.info("dispatcher stopped")


async def _run(
    clients: _Clients, dispatcher: Dispatcher, scheduler: RetryScheduler, writer: HistoryWriter
) -> None:
    """Deliver until stopped. The writer outlives the lanes (they wait for their last
    outcomes); a failure of any part ends the process rather than leave it hanging, and the
    supervisor's restart re-delivers whatever was not committed."""
    writing = asyncio.create_task(writer.run(), name="history-writer")
    log.info("dispatcher started")
    try:
        work = asyncio.gather(dispatcher.run(), scheduler.run())
        done, _ = await asyncio.wait({work, writing}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        await dispatcher.close()
        writing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writing
        await clients.close()


def main() -> None:
    """Entry point."""
    settings = DispatcherSettings()
    configure_logging("dispatcher", settings.log_level, settings.log_format)
    configure_tracing("dispatcher", settings.tracing)
    uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
