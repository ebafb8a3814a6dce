"""Postgres access shared by the services: the pool and the schema migrations."""

import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
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


async def create_pool(
    dsn: str, min_size: int = 1, max_size: int = 10, *, sessions_kept_clean: bool = False
) -> asyncpg.Pool:
    """A connection pool with the project's type codecs.

    `sessions_kept_clean`: the caller's code never leaves session state on a connection it
    gives back (no session advisory lock, LISTEN or SET: such state lives on an
    `own_connection`), so a release skips asyncpg's reset query, a round trip per release (4 %
    of a busy dispatcher's CPU). asyncpg still rolls back a transaction left open and drops the
    connection's listeners.
    """
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=json_codecs,
        reset=_nothing_to_reset if sessions_kept_clean else None,
    )


async def _nothing_to_reset(_conn: asyncpg.Connection) -> None:
    """The reset of a pool whose users keep sessions clean (`create_pool`)."""


_CLOSE_SECONDS = 5.0


@contextlib.asynccontextmanager
async def own_connection(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection outside any pool, from the pool's DSN (without its type codecs), for
    session state that must end with its session (a LISTEN, a session advisory lock): none of
    it can reach a pooled connection, so a pool that skips the reset stays clean. Closed on
    exit."""
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        # A close that fails (Postgres gone or frozen) aborts the connection: the session
        # ends either way.
        with contextlib.suppress(Exception):
            await conn.close(timeout=_CLOSE_SECONDS)


DAYS_AHEAD = 3
"""History partitions exist from today to this many days ahead, made by migrate and janitor."""


HISTORY_TABLES = ("event_bodies", "deliveries", "delivery_attempts", "webhook_health_counts")
"""The tables partitioned by day (decision 7; the health rollups of migration 0008 go with the
history they count), in the order the store-outcome step writes them, so locking them in this
order never deadlocks with it. The one list: partitions are made here and dropped by the janitor
for these tables. (The SQL function `hookstream_ensure_partitions` holds a copy only for the
migrations that call it.)"""


def partition_name(table: str, day: date) -> str:
    """The name of `table`'s partition for a UTC day, like `deliveries_p20261128`."""
    return f"{table}_p{day:%Y%m%d}"


async def ensure_partitions(
    conn: asyncpg.Connection | asyncpg.Pool, ahead: int, today: date | None = None
) -> int:
    """Create the missing daily history partitions from `today` (UTC) to `ahead` days later."""
    first = today or datetime.now(UTC).date()
    return await create_partitions(conn, [first + timedelta(days=n) for n in range(ahead + 1)])


async def create_partitions(conn: asyncpg.Connection | asyncpg.Pool, days: list[date]) -> int:
    """Create the missing partitions for `days` of every history table the schema has (one
    migrated only part of the way has fewer); return how many were made."""
    wanted = [(partition_name(table, day), table, day) for table in HISTORY_TABLES for day in days]
    missing = await conn.fetch(
        "SELECT i FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS w(name, parent, i)"
        " WHERE to_regclass(parent) IS NOT NULL AND to_regclass(name) IS NULL",
        [name for name, _, _ in wanted],
        [table for _, table, _ in wanted],
    )
    for row in missing:
        name, table, day = wanted[row["i"] - 1]
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF {table}'
            f" FOR VALUES FROM ('{day} 00:00:00+00') TO ('{day + timedelta(days=1)} 00:00:00+00')"
        )
    return len(missing)


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
                    await create_partitions(conn, [day])


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
