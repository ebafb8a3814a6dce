"""The matcher recovers its route table on restart and on a first start from nothing.

Regression tests for issue 8, points 1 and 2: a restarted matcher routed nothing (the table
recovered from faust's changelog was not what it stored), and a first start could come up with
no routes. The matcher now rebuilds its table from the compacted webhooks topic itself.
"""

import asyncio
import secrets
import signal
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from hookstream_client import AsyncClient
from hookstream_common.sdk import EventPublisher, sample_event
from hookstream_dev import infra
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet, free_port
from support import new_tenant, receiver_url, wait_routed, wait_until

APP_CREATED = "com.qlik.v1.app.created"


async def _webhook(client: AsyncClient, url: str) -> str:
    body = {"name": "restart", "url": url, "eventTypes": [APP_CREATED]}
    return (await client.create_webhook(body)).id


async def _delivered(receiver: Receiver, publisher: EventPublisher, tenant: str, path: str) -> None:
    event = sample_event(APP_CREATED, tenant, "u1")
    await publisher.publish(event)

    def arrived() -> bool:
        return any(
            r.path == path and event["eventId"].encode() in r.body for r in receiver.requests
        )

    await wait_until(arrived, timeout=30)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_a_restarted_matcher_routes_as_before(
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    client_for: Callable[..., AsyncClient],
    sig: signal.Signals,
) -> None:
    tenant = new_tenant()
    path = f"/hooks/restart-{uuid.uuid4().hex}"
    webhook_id = await _webhook(client_for(tenant, "u1"), receiver_url(receiver, path))
    await wait_routed(stack, tenant, {webhook_id})
    await _delivered(receiver, publisher, tenant, path)

    stack.stop("matcher", sig=sig)
    await asyncio.to_thread(stack.start, "matcher")

    await wait_routed(stack, tenant, {webhook_id})
    await _delivered(receiver, publisher, tenant, path)


async def test_a_first_start_from_nothing_routes(
    servers: dict[str, str], settings_env: dict[str, str], receiver: Receiver, token: Any
) -> None:
    """A new installation (its own topics and database) whose matcher starts first."""
    prefix = f"hst-fresh-{secrets.token_hex(4)}"
    admin = await asyncpg.connect(servers["database"])
    await admin.execute(f'CREATE DATABASE "{prefix}"')
    await admin.close()
    database = f"{servers['database'].rpartition('/')[0]}/{prefix}"
    services = ServiceSet(
        env={**settings_env, "HOOKSTREAM_TOPIC_PREFIX": prefix, "DATABASE_URL": database},
        ports={name: free_port() for name in ("api", "matcher", "dispatcher")},
        log_dir=infra.STATE_DIR / "test-logs" / prefix,
    )
    try:
        for name in ("matcher", "api", "dispatcher"):
            await asyncio.to_thread(services.start, name)
        tenant = new_tenant()
        path = f"/hooks/fresh-{uuid.uuid4().hex}"
        async with AsyncClient(services.url("api"), token(tenant, "u1"), timeout=15) as client:
            webhook_id = await _webhook(client, receiver_url(receiver, path))
        await wait_routed(services, tenant, {webhook_id})
        async with EventPublisher(settings_env["KAFKA_BOOTSTRAP_SERVERS"], prefix) as publisher:
            await _delivered(receiver, publisher, tenant, path)
    finally:
        services.stop_all()
        admin = await asyncpg.connect(servers["database"])
        await admin.execute(f'DROP DATABASE IF EXISTS "{prefix}" WITH (FORCE)')
        await admin.close()
