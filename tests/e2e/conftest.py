"""Fixtures for tests against the real servers: Kafka, Postgres, the services, a receiver.

Each test session gets its own database and topic prefix on the shared local (or configured)
Kafka and Postgres, so it never disturbs a `make run` installation or another session.
"""

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from e2e.scenario import Scenario

from hookstream_client import AsyncClient
from hookstream_common.db import migrate
from hookstream_common.sdk import EventPublisher
from hookstream_common.tokens import TENANT_ADMIN
from hookstream_dev import infra
from hookstream_dev.receiver import Receiver, ensure_tls
from hookstream_dev.stack import ServiceSet, delete_topics_under, free_port, service_environment
from hookstream_dev.tokens import mint_token
from support import STATIC_HOSTS, fresh_database


@pytest.fixture(scope="session")
def servers() -> dict[str, str]:
    """The Kafka and Postgres addresses, starting local servers unless configured."""
    return {"kafka": infra.ensure_kafka(), "database": infra.ensure_postgres()}


@pytest.fixture(scope="session")
async def database_url(servers: dict[str, str]) -> AsyncIterator[str]:
    """A database of this session's own, dropped at the end."""
    name = f"hookstream_test_{secrets.token_hex(4)}"
    async with fresh_database(servers["database"], name) as url:
        yield url


@pytest.fixture(scope="session")
def tls_files() -> Any:
    """The development CA and the receiver's certificate."""
    return ensure_tls(infra.STATE_DIR / "tls")


@pytest.fixture(scope="session")
async def receiver(tls_files: Any) -> AsyncIterator[Receiver]:
    """A real HTTPS receiver on loopback, which the dispatcher reaches by name."""
    running = await Receiver.start(host="127.0.0.1", port=0, tls=tls_files)
    yield running
    await running.stop()


@pytest.fixture(scope="session")
def settings_env(servers: dict[str, str], database_url: str, tls_files: Any) -> dict[str, str]:
    """The environment every service of this session runs with."""
    return service_environment(
        servers["kafka"],
        database_url,
        prefix=f"hst-{secrets.token_hex(4)}",
        ca_file=tls_files.ca,
        static_hosts=STATIC_HOSTS,
        overrides={
            "HOOKSTREAM_LOG_LEVEL": "INFO",
            # A token minted to expire within a test expires on time (the leeway is unit-tested).
            "HOOKSTREAM_JWT_LEEWAY_SECONDS": "0",
            "HOOKSTREAM_MAX_WEBHOOKS_PER_TENANT": "30",
            # Tests write webhooks far faster than any tenant should; test_write_limits.py
            # starts replicas of its own with a low write rate.
            "HOOKSTREAM_WRITE_RATE_PER_SECOND": "1000",
            "HOOKSTREAM_WRITE_BURST": "1000",
            # Compressed so retries, exhaustion and auto-disable happen within a test.
            "HOOKSTREAM_RETRY_SCHEDULE": "1s,2s,4s",
            "HOOKSTREAM_RETRY_JITTER": "0.1",
            # A job no wake-up announced is found within a test's patience.
            "HOOKSTREAM_SHARD_SCAN_SECONDS": "5",
            "HOOKSTREAM_AUTO_DISABLE_AFTER_SECONDS": "2",
            "HOOKSTREAM_AUTO_DISABLE_MIN_FAILURES": "4",
            # A webhook recovers (an operational event) after 2 failures, before it is disabled.
            "HOOKSTREAM_RECOVERED_AFTER_FAILURES": "2",
        },
    )


@pytest.fixture(scope="session")
def stack(settings_env: dict[str, str]) -> Iterator[ServiceSet]:
    """The four services, started once per session."""
    services = ServiceSet(
        env=settings_env,
        ports={name: free_port() for name in ("api", "matcher", "dispatcher", "janitor")},
        log_dir=infra.STATE_DIR / "test-logs" / settings_env["HOOKSTREAM_TOPIC_PREFIX"],
    )
    try:
        for name in ("api", "matcher", "dispatcher", "janitor"):
            services.start(name)
        yield services
    finally:
        services.stop_all()
        asyncio.run(
            delete_topics_under(
                settings_env["KAFKA_BOOTSTRAP_SERVERS"], settings_env["HOOKSTREAM_TOPIC_PREFIX"]
            )
        )


@pytest.fixture(scope="session")
def token(settings_env: dict[str, str]) -> Callable[..., str]:
    """Mint tokens the API accepts: `token(tenant, user, admin=False)`."""

    def mint(tenant: str, user: str = "user-1", admin: bool = False) -> str:
        roles = [TENANT_ADMIN] if admin else []
        return mint_token(settings_env["HOOKSTREAM_JWT_KEY"], tenant, user, roles)

    return mint


@pytest.fixture
async def api(stack: ServiceSet) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the API."""
    async with httpx.AsyncClient(base_url=stack.url("api"), timeout=15) as client:
        yield client


@pytest.fixture
async def client_for(
    stack: ServiceSet, token: Callable[..., str]
) -> AsyncIterator[Callable[..., AsyncClient]]:
    """`client_for(tenant, user="user-1", admin=False)`: the API client of that caller."""
    opened: list[AsyncClient] = []

    def open_client(tenant: str, user: str = "user-1", admin: bool = False) -> AsyncClient:
        opened.append(AsyncClient(stack.url("api"), token(tenant, user, admin), timeout=15))
        return opened[-1]

    yield open_client
    for client in opened:
        await client.close()


@pytest.fixture(scope="session")
async def publisher(
    servers: dict[str, str], settings_env: dict[str, str]
) -> AsyncIterator[EventPublisher]:
    """The producer SDK, pointed at this session's topics."""
    async with EventPublisher(servers["kafka"], settings_env["HOOKSTREAM_TOPIC_PREFIX"]) as pub:
        yield pub


@pytest.fixture
async def scenario(
    api: httpx.AsyncClient, stack: ServiceSet, publisher: EventPublisher, token: Any
) -> AsyncIterator[Scenario]:
    """A new tenant with its own API client, closed after the test."""
    async with Scenario(api, stack, publisher, token) as scenario:
        yield scenario


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the session's database, migrated."""
    await migrate(database_url)
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()
