"""The readiness probe's Postgres check keeps one connection of its own, and replaces it in the
same probe when it breaks (a restart, a terminated backend)."""

import asyncpg

from hookstream_common.resilience import postgres_check

_PROBES = "SELECT pid FROM pg_stat_activity WHERE application_name = $1"


async def test_the_probe_keeps_its_connection_and_replaces_a_broken_one(
    database_url: str, db: asyncpg.Connection
) -> None:
    name = "hookstream-probe-test"
    joiner = "&" if "?" in database_url else "?"
    check = postgres_check(f"{database_url}{joiner}application_name={name}")
    assert await check() == 1
    assert await check() == 1
    first = await db.fetch(_PROBES, name)
    assert len(first) == 1, "one connection for both probes"
    await db.execute("SELECT pg_terminate_backend($1)", first[0]["pid"])
    assert await check() == 1, "a broken connection is replaced within the probe"
    second = await db.fetch(_PROBES, name)
    assert len(second) == 1 and second[0]["pid"] != first[0]["pid"]
