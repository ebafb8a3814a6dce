"""Hookstream on a Postgres that takes TLS, reached with `sslmode=verify-full` (issue 19,
point 2): migrations, all four services and the history, each connection encrypted and the
server's certificate checked; a root certificate that does not sign it leaves a service up and
unready with the reason `tls`.
"""

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import asyncpg
import httpx
import pytest
import trustme

from hookstream_client import AsyncClient
from hookstream_common.sdk import EventPublisher
from hookstream_dev import infra
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet, free_port
from support import (
    carrying,
    installation,
    new_tenant,
    private_dir,
    receiver_url,
    wait_routed,
    wait_until,
)

APP_CREATED = "com.qlik.v1.app.created"


@dataclass(frozen=True)
class TlsPostgres:
    server: infra.PostgresServer
    ca: Path
    stranger_ca: Path

    def dsn(self, root_certificate: Path | None = None) -> str:
        """A `verify-full` DSN by host name, as a managed Postgres is reached."""
        ca = quote(str(root_certificate or self.ca))
        return (
            f"postgresql://postgres@localhost:{self.server.port}/{infra.DATABASE}"
            f"?sslmode=verify-full&sslrootcert={ca}"
        )


@pytest.fixture(scope="module")
def tls_postgres() -> Iterator[TlsPostgres]:
    """A Postgres of this module with `ssl=on` and a certificate for `localhost`."""
    with private_dir("pg-tls") as root:
        yield from _started(root)


def _started(root: Path) -> Iterator[TlsPostgres]:
    ca, stranger = trustme.CA(), trustme.CA()
    issued = ca.issue_cert("localhost", "127.0.0.1")
    chain = b"".join(pem.bytes() for pem in issued.cert_chain_pems)
    server = infra.PostgresServer.under(root, free_port(), (chain, issued.private_key_pem.bytes()))
    found = TlsPostgres(server, root / "ca.pem", root / "stranger-ca.pem")
    ca.cert_pem.write_to_path(found.ca)
    stranger.cert_pem.write_to_path(found.stranger_ca)
    server.start()
    server.ensure_database()
    yield found
    server.stop("immediate")


async def _encrypted_connections(dsn: str, database: str) -> tuple[int, int]:
    """(encrypted, all) client connections to `database`, as the server sees them."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE s.ssl) AS encrypted, count(*) AS total"
            " FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.datname = $1",
            database,
        )
    finally:
        await conn.close()
    return row["encrypted"], row["total"]


async def test_migrations_and_every_service_run_over_verify_full(
    tls_postgres: TlsPostgres,
    settings_env: dict[str, str],
    receiver: Receiver,
    token: Callable[..., str],
) -> None:
    dsn = tls_postgres.dsn()
    migrate = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "hookstream_client.cli", "migrate"],
        env={**os.environ, "DATABASE_URL": dsn},
        capture_output=True,
        text=True,
    )
    assert migrate.returncode == 0, migrate.stderr
    services = ("matcher", "api", "dispatcher", "janitor")
    async with installation({**settings_env, "DATABASE_URL": dsn}, services, "pgtls") as stack:
        tenant, path = new_tenant(), "/pg-tls"
        async with AsyncClient(stack.url("api"), token(tenant, "u1"), timeout=15) as client:
            body = {"name": "pg-tls", "url": receiver_url(receiver, path)}
            webhook = await client.create_webhook({**body, "eventTypes": [APP_CREATED]})
            await wait_routed(stack, tenant, {webhook.id})
            event = sample_event(APP_CREATED, tenant, "u1")
            kafka, prefix = (
                stack.env["KAFKA_BOOTSTRAP_SERVERS"],
                stack.env["HOOKSTREAM_TOPIC_PREFIX"],
            )
            async with EventPublisher(kafka, prefix) as publisher:
                await publisher.publish(event)
            await wait_until(lambda: carrying(receiver, path, event), timeout=30)

            async def stored() -> bool:
                page = await client.list_deliveries(webhook.id)
                return [d.status for d in page.data] == ["success"]

            await wait_until(stored, timeout=20)
        encrypted, total = await _encrypted_connections(dsn, prefix)
        assert total > 0 and encrypted == total


async def test_an_untrusted_server_certificate_leaves_the_service_up_and_unready(
    tls_postgres: TlsPostgres, settings_env: dict[str, str]
) -> None:
    env = {**settings_env, "DATABASE_URL": tls_postgres.dsn(tls_postgres.stranger_ca)}
    log_dir = infra.STATE_DIR / "test-logs" / "pg-tls-untrusted"
    services = ServiceSet(env=env, ports={"janitor": free_port()}, log_dir=log_dir)
    services.start("janitor", wait=False)
    try:

        async def reason() -> str | None:
            async with httpx.AsyncClient(timeout=2) as client:
                try:
                    response = await client.get(f"{services.url('janitor')}/readyz")
                except httpx.TransportError:
                    return None
            return response.json()["reasons"].get("postgres")

        assert await wait_until(reason, timeout=30) == "tls"
        assert services.pid("janitor") is not None, services.tail("janitor")
    finally:
        services.stop_all()
