"""A pool whose users keep sessions clean skips asyncpg's reset query on release, and still never
hands out a connection inside a transaction."""

import pytest

from hookstream_common.db import create_pool


@pytest.mark.parametrize("kept_clean", [True, False])
async def test_a_release_resets_the_session_only_when_asked_to(
    database_url: str, kept_clean: bool
) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=1, sessions_kept_clean=kept_clean)
    try:
        async with pool.acquire() as conn:
            await conn.execute("SET application_name = 'left-behind'")
            transaction = conn.transaction()
            await transaction.start()
            await conn.execute("CREATE TEMP TABLE rolled_back (n int)")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT to_regclass('pg_temp.rolled_back')") is None
            name = await conn.fetchval("SHOW application_name")
            assert (name == "left-behind") is kept_clean
    finally:
        await pool.close()
