"""Helpers for tests against the running services."""

import asyncio
import contextlib
import secrets
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from hookstream_common.kafka import client_options
from hookstream_common.topics import Topics
from hookstream_dev import infra
from hookstream_dev.receiver import Receiver, RecordedRequest
from hookstream_dev.stack import ServiceSet, delete_topics_under, free_port, kafka_security_of

RECEIVER_HOST = "receiver.hookstream.test"
STATIC_HOSTS = {
    RECEIVER_HOST: "127.0.0.1",
    # Names the dispatcher must refuse: only 127.0.0.0/8 is allowed in tests.
    "private.hookstream.test": "10.0.0.1",
    "metadata.hookstream.test": "169.254.169.254",
    "v6-loopback.hookstream.test": "::1",
}
"""How the test dispatcher resolves names, instead of DNS."""


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of a token."""
    return {"Authorization": f"Bearer {token}"}


def new_tenant() -> str:
    """A tenant id no other test uses."""
    return f"tenant-{uuid.uuid4().hex[:8]}"


def receiver_url(receiver: Receiver, path: str) -> str:
    """The HTTPS URL of a path on the test receiver, under a fully qualified name."""
    return f"https://{RECEIVER_HOST}:{receiver.port}{path}"


def carrying(receiver: Receiver, path: str, event: dict[str, Any]) -> list[RecordedRequest]:
    """The requests to `path` that delivered this event (found by its id, in either shape)."""
    needle = event["eventId"].encode()
    return [r for r in receiver.received(path) if needle in r.body]


async def wait_until(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Poll an async or sync `check` until it returns something truthy; fail on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def matcher_routes(stack: ServiceSet, tenant: str) -> list[dict[str, Any]]:
    """What the matcher routes for a tenant (`/routes/{tenant}`): id, eventTypes, enabled.
    Nothing while the matcher does not answer: a poll on a box whose two cores start two
    installations at once timed out connecting once, and the wait goes on to its deadline."""
    try:
        async with httpx.AsyncClient(base_url=stack.url("matcher"), timeout=5) as client:
            response = await client.get(f"/routes/{tenant}")
    except httpx.TransportError:
        return []
    return response.json()["webhooks"] if response.status_code == 200 else []


async def wait_routed(
    stack: ServiceSet, tenant: str, webhook_ids: set[str], disabled: frozenset[str] = frozenset()
) -> None:
    """Wait until the matcher routes to all these webhooks, and knows the `disabled` ones as
    disabled: the outbox relay has run, and their latest change has reached it (a webhook
    disabled and enabled again is routed only once it is enabled again)."""

    async def known() -> bool:
        routes = {w["id"]: w["enabled"] for w in await matcher_routes(stack, tenant)}
        return all(routes.get(i) is True for i in webhook_ids) and all(
            routes.get(i) is False for i in disabled
        )

    await wait_until(known, timeout=30)


async def jobs_routed_to(stack: ServiceSet, webhook_id: str) -> int:
    """How many delivery jobs the webhook's topic has taken: what the matcher routed to it."""
    consumer = AIOKafkaConsumer(**client_options(stack.env["KAFKA_BOOTSTRAP_SERVERS"]))
    await consumer.start()
    try:
        topic = Topics(stack.env["HOOKSTREAM_TOPIC_PREFIX"]).deliveries(webhook_id)
        partition = TopicPartition(topic, 0)
        return (await consumer.end_offsets([partition]))[partition]
    finally:
        await consumer.stop()


Metrics = dict[tuple[str, tuple[tuple[str, str], ...]], float]
"""One scrape of /metrics: (sample name, sorted labels) -> value."""


async def scrape(url: str) -> Metrics:
    """The /metrics of the service at `url`."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"{url}/metrics")).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metric(values: Metrics, name: str, absent: float = 0.0, **labels: str) -> float:
    """One sample of a scrape, `absent` when it is not there."""
    return values.get((name, tuple(sorted(labels.items()))), absent)


def repo_root() -> Path:
    """The checkout, for tests that read project files."""
    return infra.REPO_ROOT


@contextlib.contextmanager
def private_dir(name: str) -> Iterator[Path]:
    """A folder for a test's own servers and certificates, removed afterwards. Under the
    checkout's state folder, not pytest's tmp_path: every pytest run on the machine prunes
    old `/tmp/pytest-of-<user>` folders, under a server still running in one."""
    root = infra.STATE_DIR / "test-servers" / f"{name}-{secrets.token_hex(4)}"
    root.mkdir(parents=True)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def database_url(dsn: str, database: str) -> str:
    """The DSN of another database on the same server, with the same options (`sslmode`)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


@contextlib.asynccontextmanager
async def fresh_database(server_dsn: str, name: str) -> AsyncIterator[str]:
    """A new empty database `name` on the server of `server_dsn`; yields its DSN and drops it
    (whoever is still connected) after."""
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield database_url(server_dsn, name)
    finally:
        admin = await asyncpg.connect(server_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextlib.asynccontextmanager
async def installation(
    env: dict[str, str], instances: Iterable[str], name: str = "own"
) -> AsyncIterator[ServiceSet]:
    """Services of their own beside the session's: a fresh database and topic prefix on the
    same servers, with `env`'s keys and settings. For tests that kill and restart services, so
    that a restart gone wrong fails only them, never every later test of the shared stack."""
    prefix = f"hst-{name}-{secrets.token_hex(4)}"
    async with fresh_database(env["DATABASE_URL"], prefix) as dsn:
        services = ServiceSet(
            env={**env, "HOOKSTREAM_TOPIC_PREFIX": prefix, "DATABASE_URL": dsn},
            ports={instance: free_port() for instance in instances},
            log_dir=infra.STATE_DIR / "test-logs" / prefix,
        )
        try:
            for instance in services.ports:
                await asyncio.to_thread(services.start, instance)
            yield services
        finally:
            services.stop_all()
            await delete_topics_under(
                env["KAFKA_BOOTSTRAP_SERVERS"], prefix, kafka_security_of(env)
            )
