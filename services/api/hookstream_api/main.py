"""The API service: the Qlik webhooks REST API, the outbox relay, health and metrics."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from prometheus_client import make_asgi_app

from hookstream_api.errors import install_error_handlers
from hookstream_api.relay import OutboxRelay
from hookstream_api.routers import deliveries, health, product_info, recovery, webhooks
from hookstream_api.settings import ApiSettings
from hookstream_common.crypto import SecretBox, parse_keys
from hookstream_common.db import create_pool, migrate
from hookstream_common.http_client import delivery_session
from hookstream_common.kafka import core_topics, ensure_topics, producer
from hookstream_common.logging import configure_logging

API_PREFIXES = ("/api/v1", "/api/core")


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Connect to Postgres and Kafka, migrate, and run the relay for the app's lifetime."""
    settings: ApiSettings = app.state.settings
    await migrate(settings.database_url)
    app.state.pool = await create_pool(settings.database_url)
    app.state.box = SecretBox(parse_keys(settings.encryption_keys))
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    kafka = producer(settings.kafka_bootstrap_servers)
    await admin.start()
    await kafka.start()
    await ensure_topics(admin, core_topics(settings.topics, settings.kafka_replication_factor))
    relay = OutboxRelay(
        app.state.pool,
        kafka,
        admin,
        settings.topics,
        settings.kafka_replication_factor,
        settings.relay_interval_seconds,
    )
    relay_task = asyncio.create_task(relay.run(), name="outbox-relay")
    app.state.http = delivery_session(settings)
    app.state.kafka = kafka
    app.state.background = set()
    try:
        yield
    finally:
        relay_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay_task
        await app.state.http.close()
        await kafka.stop()
        await admin.close()
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
    install_error_handlers(app)
    for prefix in API_PREFIXES:
        app.include_router(webhooks.router, prefix=prefix)
        app.include_router(deliveries.router, prefix=prefix)
        app.include_router(recovery.router, prefix=prefix)
    app.include_router(health.router)
    app.include_router(product_info.router)
    app.mount("/metrics", make_asgi_app())
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
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


if __name__ == "__main__":
    main()
