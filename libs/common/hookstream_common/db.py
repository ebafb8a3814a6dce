"""Postgres access shared by the services: the pool and the schema migrations."""

import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import TypeVar

import asyncpg
import orjson
import structlog

log = structlog.get_logger(__name__)


def advisory_lock_key(name: str) -> int:
    """A stable 64-bit key for `pg_advisory_lock`, so every process names a lock the same way."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


_MIGRATION_LOCK = advisory_lock_key("hookstream.migrations")


async def json_codecs(conn: asyncpg.Connection) -> None:
    """Make json and jsonb columns read and write Python objects, through orjson (which keeps
    the key order of json's text)."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name,
            encoder=lambda value: orjson.dumps(value).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def create_pool(dsn: str, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A connection pool with the project's type codecs."""
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=json_codecs)


DAYS_AHEAD = 3
"""History partitions exist from today to this many days ahead, made by migrate and janitor."""


async def ensure_partitions(
    conn: asyncpg.Connection | asyncpg.Pool, ahead: int, today: date | None = None
) -> int:
    """Create the missing daily history partitions from `today` (UTC) to `ahead` days later."""
    first = today or datetime.now(UTC).date()
    return await conn.fetchval(
        "SELECT hookstream_ensure_partitions($1, $2)", first, first + timedelta(days=ahead)
    )


_PARTITION_TRIES = 3
_T = TypeVar("_T")


async def write_with_partitions(
    conn: asyncpg.Connection, write: Callable[[], Awaitable[_T]], days: list[date]
) -> _T:
    """Run `write` in a savepoint; when a row finds no partition, create `days`' and run again.

    A late write always finds its partition: when its day has none (the janitor dropped it, or
    it is older than the partitions made ahead), the day's partitions are created here and the
    write is run again. A default partition would instead keep such rows out of day-wise
    retention and block re-creating that day; refusing the write would stall the dispatcher,
    whose writer retries a batch until it is stored, behind one late retry.
    """
    tries = 1
    while True:
        try:
            async with conn.transaction():  # a savepoint: the write is whole or not at all
                return await write()
        except asyncpg.CheckViolationError as exc:
            if "no partition" not in str(exc) or tries == _PARTITION_TRIES:
                raise
        tries += 1
        for day in days:  # losing a race to another creator is as good as winning it
            with contextlib.suppress(asyncpg.DuplicateTableError, asyncpg.UniqueViolationError):
                async with conn.transaction():
                    await conn.execute("SELECT hookstream_ensure_partitions($1, $1)", day)


def _migration_files() -> list[tuple[str, str]]:
    folder = resources.files("hookstream_common") / "migrations"
    files = sorted(p for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(p.name.removesuffix(".sql"), p.read_text()) for p in files]


async def migrate(dsn: str, upto: str | None = None) -> list[str]:
    """Apply the migrations not applied yet, in order (through `upto`); return those applied.

    Safe to run twice and from several processes at once: an advisory lock serialises them and
    each migration commits together with its row in `schema_migrations`.
    """
    conn = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, sql in _migration_files():
            if version in done:
                continue
            if upto is not None and version > upto:
                break
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            log.info("migration applied", version=version)
            applied.append(version)
        if upto is None:
            await ensure_partitions(conn, DAYS_AHEAD)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
        await conn.close()
    return applied
