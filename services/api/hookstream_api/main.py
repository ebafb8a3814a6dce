"""The API service: the Qlik webhooks REST API and console on the public port; the outbox
relay; `/metrics`, `/healthz` and `/readyz` on an operations port of their own."""

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import structlog
import uvicorn
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from hookstream_api.auth import VerifiedTokens
from hookstream_api.console import mount_console
from hookstream_api.errors import install_error_handlers
from hookstream_api.limits import RequestLimits
from hookstream_api.metrics import RequestMetrics, watch_outbox
from hookstream_api.rate_limits import InFlight
from hookstream_api.recoveries import start_recovery_worker
from hookstream_api.relay import OutboxRelay
from hookstream_api.request_context import RequestContext
from hookstream_api.routers import (
    audit,
    deliveries,
    product_info,
    recovery,
    test_events,
    webhooks,
)
from hookstream_api.settings import ApiSettings
from hookstream_common import catalogue
from hookstream_common.client_certs import TlsContexts
from hookstream_common.crypto import SecretBox, parse_keys
from hookstream_common.db import create_pool, migrate
from hookstream_common.delivery import sender
from hookstream_common.http_client import delivery_session
from hookstream_common.kafka import client_options, core_topics, ensure_topics, producer
from hookstream_common.kafka_failover import with_failover
from hookstream_common.logging import configure_logging
from hookstream_common.ops import start_ops_server
from hookstream_common.resilience import Readiness, kafka_check, keep_trying, postgres_check
from hookstream_common.tracing import configure_tracing

API_PREFIXES = ("/api/v1", "/api/core")
OUTBOX_GAUGE_SECONDS = 5.0

log = structlog.get_logger(__name__)


async def _connect(app: FastAPI) -> None:
    """Wait for Postgres and Kafka, then run the relay: an outage at start-up is waited out.

    Until this finishes, requests that need the database answer 503 and `/readyz` says why.
    """
    settings: ApiSettings = app.state.settings
    await keep_trying(lambda: migrate(settings.database_url), "Postgres (migrations)")
    admin = await keep_trying(lambda: _started_admin(settings), "Kafka (admin)")
    app.state.admin = admin
    await keep_trying(
        lambda: ensure_topics(admin, core_topics(settings)),
        "Kafka (core topics)",
    )
    await keep_trying(app.state.kafka.start, "Kafka (producer)")
    app.state.connected = True
    relay = OutboxRelay(
        app.state.pool,
        app.state.kafka,
        admin,
        settings,
        settings.relay_interval_seconds,
    )
    log.info("api connected to Postgres and Kafka")
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(relay.run(), name="relay")
        tasks.create_task(
            watch_outbox(settings.database_url, OUTBOX_GAUGE_SECONDS), name="outbox-gauge"
        )


async def _started_admin(settings: ApiSettings) -> AIOKafkaAdminClient:
    admin = with_failover(
        AIOKafkaAdminClient(
            **client_options(settings.kafka_bootstrap_servers, settings.kafka_security)
        )
    )
    try:
        await admin.start()
    except BaseException:
        await admin.close()
        raise
    return admin


async def open_pool(dsn: str) -> asyncpg.Pool:
    """The API's pool, whose releases skip asyncpg's reset query (a round trip per request):
    no request leaves session state, and the relay's LISTEN and the outbox gauge's session lock
    live on connections of their own (`own_connection`)."""
    return await create_pool(dsn, min_size=0, sessions_kept_clean=True)


def _stop_if_failed(task: asyncio.Task[None]) -> None:
    """Crash-only: a background task that died of a bug ends the process (SIGTERM to itself,
    so uvicorn shuts down cleanly) and the supervisor starts a fresh one."""
    if not task.cancelled() and task.exception() is not None:
        log.critical(
            "background task failed; stopping", task=task.get_name(), exc_info=task.exception()
        )
        os.kill(os.getpid(), signal.SIGTERM)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open lazy clients at once, connect in the background, and close everything at exit."""
    settings: ApiSettings = app.state.settings
    app.state.connected = False
    app.state.admin = None
    app.state.pool = await open_pool(settings.database_url)
    app.state.box = SecretBox(parse_keys(settings.encryption_keys))
    app.state.http = delivery_session(settings)
    app.state.send = sender(app.state.http, TlsContexts(settings.extra_ca_file))
    app.state.kafka = producer(settings.kafka_bootstrap_servers, settings.kafka_security)
    recovering = start_recovery_worker(app)
    app.state.readiness = Readiness(
        {
            "postgres": postgres_check(settings.database_url),
            "kafka": kafka_check(settings.kafka_bootstrap_servers, settings.kafka_security),
        },
        lambda: app.state.connected,
    )
    app.state.readiness.start()
    ops = await start_ops_server(settings.ops_host, settings.ops_port, app.state.readiness)
    connecting = asyncio.create_task(_connect(app), name="connect-and-relay")
    connecting.add_done_callback(_stop_if_failed)
    try:
        yield
    finally:
        connecting.cancel()
        recovering.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connecting
        with contextlib.suppress(asyncio.CancelledError):
            await recovering
        await ops.cleanup()
        await app.state.readiness.stop()
        await app.state.http.close()
        await app.state.kafka.stop()
        if app.state.admin is not None:
            await app.state.admin.close()
        await app.state.pool.close()


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The ASGI application, with both Qlik path prefixes."""
    app = FastAPI(
        title="Hookstream webhooks API",
        version="1.0.0",
        description="The Qlik Cloud webhooks API, self-hosted on Kafka and Postgres.",
        lifespan=lifespan,
    )
    app.state.settings = settings or ApiSettings()
    app.state.tokens = VerifiedTokens(app.state.settings)
    app.state.in_flight = InFlight(app.state.settings.resends_in_flight_per_tenant)
    app.state.event_types = catalogue.load(app.state.settings.event_types_file)
    install_error_handlers(app)
    app.add_middleware(
        RequestLimits,
        max_body=app.state.settings.max_body_bytes,
        max_url=app.state.settings.max_url_bytes,
        max_headers=app.state.settings.max_header_bytes,
    )
    app.add_middleware(RequestMetrics)
    app.add_middleware(RequestContext)
    for prefix in API_PREFIXES:
        app.include_router(audit.router, prefix=prefix)  # before `/webhooks/{id}`
        app.include_router(webhooks.router, prefix=prefix)
        app.include_router(deliveries.router, prefix=prefix)
        app.include_router(recovery.router, prefix=prefix)
        app.include_router(test_events.router, prefix=prefix)
    app.include_router(product_info.router)
    mount_console(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document without the 422s it assumes: invalid input is a 400 envelope here."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path in document["paths"].values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        schemas = document.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = document
    return app.openapi_schema


def main() -> None:
    """Entry point of `hookstream-api`."""
    settings = ApiSettings()
    configure_logging("api", settings.log_level, settings.log_format)
    configure_tracing("api", settings.tracing)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        loop="uvloop",
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        h11_max_incomplete_event_size=settings.max_header_bytes,
    )


if __name__ == "__main__":
    main()
