"""The health fields read from the rollups give the answers counting the history gives.

The history is written by the store-outcome step in shuffled batches: attempts stored again,
late outcomes, immediate retries in the same batch, retries due ahead, lost and cleared, and
recoveries queued. Then the page's health is read both ways on the same database: from the
rollups (the product) and by counting the attempts and deliveries (how it was read before
migration 0008, kept here only as the reference).
"""

import random
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from history_rows import CREATED, insert_webhook, new_event, own_database

from hookstream_api.recoveries import take_page
from hookstream_api.webhook_health import load_health
from hookstream_common.db import create_pool, ensure_partitions, migrate
from hookstream_common.delivery import Attempt
from hookstream_common.history import Outcome, record_outcomes

# The health as it was counted before the rollups.
_COUNTED_SQL = """
WITH attempts AS (
    SELECT webhook_id,
        count(*) FILTER (WHERE started_at >= now() - interval '1 hour') AS tried_1h,
        count(*) FILTER (WHERE started_at >= now() - interval '1 hour'
            AND status_code BETWEEN 200 AND 299) AS ok_1h,
        count(*) AS tried_24h,
        count(*) FILTER (WHERE status_code BETWEEN 200 AND 299) AS ok_24h
    FROM delivery_attempts
    WHERE webhook_id = ANY($1::uuid[]) AND started_at >= now() - interval '24 hours'
    GROUP BY webhook_id
),
pending AS (
    SELECT webhook_id, count(*) AS retries FROM deliveries
    WHERE webhook_id = ANY($1::uuid[]) AND status = 'fail'
        AND next_attempt_at > now() - interval '15 minutes'
    GROUP BY webhook_id
)
SELECT page.webhook_id, a.tried_1h, a.ok_1h, a.tried_24h, a.ok_24h,
    coalesce(p.retries, 0) AS pending_retries
FROM unnest($1::uuid[]) AS page (webhook_id)
LEFT JOIN attempts a ON a.webhook_id = page.webhook_id
LEFT JOIN pending p ON p.webhook_id = page.webhook_id
"""

# Windows are read in whole minutes: moments this close to a window's start are left out of the
# data, since the two ways may differ there by design.
_EDGES = (timedelta(hours=1), timedelta(hours=24), timedelta(minutes=15))
_MARGIN = timedelta(minutes=3)


def _clear_of_edges(at: datetime, now: datetime) -> datetime:
    for edge in _EDGES:
        if abs(now - edge - at) < _MARGIN:
            return at - 2 * _MARGIN
    return at


def _history(rng: random.Random, webhook_id: str, now: datetime) -> list[Outcome]:
    """The outcomes of one webhook's deliveries over the last 30 hours, each in order."""
    outcomes = []
    event = new_event("t")
    for _ in range(rng.randint(20, 80)):
        triggered = _clear_of_edges(now - timedelta(minutes=rng.uniform(4, 30 * 60)), now)
        delivery_id = str(uuid.uuid4())
        tries = rng.randint(1, 4)
        started = triggered
        for number in range(1, tries + 1):
            code = rng.choice([200, 200, 204, 302, 404, 500, 503, None])
            attempt = Attempt(
                started_at=started,
                duration_ms=3.0,
                status_code=code,
                error="refused" if code is None else None,
                error_class="connection" if code is None else None,
            )
            retry = None
            if not attempt.succeeded:
                if number < tries:
                    retry = _clear_of_edges(started + timedelta(minutes=rng.uniform(0, 3)), now)
                    retry = min(retry, now - _MARGIN)
                else:
                    ahead = rng.choice([None, rng.uniform(-180, -20), rng.uniform(0, 14 * 60)])
                    if ahead is not None:
                        retry = _clear_of_edges(now + timedelta(minutes=ahead), now)
            outcomes.append(
                Outcome(
                    delivery_id=delivery_id,
                    tenant_id="t",
                    webhook_id=webhook_id,
                    event=event,
                    cloud_event=False,
                    status="success" if attempt.succeeded else "fail",
                    status_message=attempt.status_message(),
                    triggered_at=triggered,
                    request={"url": "https://x.example.com/h", "headers": {}},
                    attempt_number=number,
                    attempt=attempt,
                    next_attempt_at=retry,
                )
            )
            if attempt.succeeded or retry is None:
                break
            started = max(retry, started)
    return outcomes


def _sent_again(rng: random.Random, outcome: Outcome, now: datetime) -> Outcome:
    """The same attempt sent again later (its job was delivered twice), answered differently."""
    code = rng.choice([200, 500])
    later = _clear_of_edges(
        min(outcome.attempt.started_at + timedelta(minutes=rng.uniform(1, 90)), now), now
    )
    attempt = Attempt(started_at=later, duration_ms=2.0, status_code=code)
    return Outcome(
        **{
            **outcome.__dict__,
            "attempt": attempt,
            "status": "success" if attempt.succeeded else "fail",
            "next_attempt_at": None,
        }
    )


async def _counted(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple]:
    rows = await conn.fetch(_COUNTED_SQL, ids)
    return {r["webhook_id"]: _rates(r, r["pending_retries"]) for r in rows}


def _rates(row: asyncpg.Record, pending: int) -> tuple:
    def rate(ok: int | None, tried: int | None) -> float | None:
        return round(ok / tried, 4) if tried and ok is not None else None

    return rate(row["ok_1h"], row["tried_1h"]), rate(row["ok_24h"], row["tried_24h"]), pending


async def test_rollups_answer_as_counting_the_history_does(servers: dict[str, str]) -> None:
    rng = random.Random(21)
    now = datetime.now(UTC)
    async with own_database(servers["database"]) as dsn:
        pool = await create_pool(dsn)
        try:
            async with pool.acquire() as conn:
                ids = [await insert_webhook(conn, "t") for _ in range(5)]
            outcomes = [o for webhook_id in ids[:4] for o in _history(rng, webhook_id, now)]
            outcomes += [_sent_again(rng, o, now) for o in rng.sample(outcomes, 40)]
            rng.shuffle(outcomes)  # late outcomes, and attempts of one delivery in one batch
            for start in range(0, len(outcomes), 37):
                async with pool.acquire() as conn, conn.transaction():
                    await record_outcomes(conn, outcomes[start : start + 37])

            async def both() -> tuple[dict, dict]:
                async with pool.acquire() as conn:
                    page = [uuid.UUID(i) for i in ids]
                    health = await load_health(conn, page)
                    counted = await _counted(conn, page)
                rolled = {
                    webhook_id: (h.success_rate_1h, h.success_rate_24h, h.pending_retries)
                    for webhook_id, h in health.items()
                }
                return rolled, counted

            rolled, counted = await both()
            assert rolled == counted
            assert all(counted[uuid.UUID(i)][1] is not None for i in ids[:4]), "all were tried"
            assert sum(p for _, _, p in counted.values()) > 0, "some retries are pending"
            assert counted[uuid.UUID(ids[4])] == (None, None, 0)

            await _recover_failed(pool, ids[0])
            rolled, counted = await both()
            assert rolled == counted
        finally:
            await pool.close()


async def _recover_failed(pool: asyncpg.Pool, webhook_id: str) -> None:
    """Take every failed delivery of the webhook that has nothing pending, as recover does."""
    async with pool.acquire() as conn:
        keys = await conn.fetch(
            "SELECT id, triggered_at FROM deliveries WHERE webhook_id = $1 AND status = 'fail'"
            " ORDER BY triggered_at, id",
            uuid.UUID(webhook_id),
        )
        recovery = await conn.fetchrow(
            "INSERT INTO recoveries (id, tenant_id, webhook_id, since, until, total)"
            " VALUES (gen_random_uuid(), 't', $1, '-infinity', 'infinity', 0) RETURNING *",
            uuid.UUID(webhook_id),
        )
        async with conn.transaction():
            assert await take_page(conn, recovery, keys), "some deliveries are recovered"


async def _stored_before_0008(
    conn: asyncpg.Connection,
    webhook_id: str,
    at: datetime,
    status: str,
    code: int | None,
    due: datetime | None,
) -> None:
    """A delivery and its one attempt as a version before migration 0008 stored them. The
    only history rows not written by `record_outcomes`: that step keeps the rollups, whose
    tables a database before 0008 does not have."""
    await ensure_partitions(conn, 0, today=at.date())
    delivery = uuid.uuid4()
    await conn.execute(
        "INSERT INTO deliveries (id, tenant_id, webhook_id, event_id, event_type, status,"
        " triggered_at, request, next_attempt_at)"
        " VALUES ($1, 't', $2, $3, $4, $5, $6, '{}'::jsonb, $7)",
        delivery,
        uuid.UUID(webhook_id),
        str(uuid.uuid4()),
        CREATED,
        status,
        at,
        due,
    )
    await conn.execute(
        "INSERT INTO delivery_attempts (delivery_id, attempt, triggered_at,"
        " tenant_id, webhook_id, started_at, duration_ms, status_code)"
        " VALUES ($1, 1, $2, 't', $3, $2, 1, $4)",
        delivery,
        at,
        uuid.UUID(webhook_id),
        code,
    )


async def test_an_upgraded_database_shows_the_health_counted_before(
    servers: dict[str, str],
) -> None:
    now = datetime.now(UTC)
    async with own_database(servers["database"], upto="0007_event_bodies_as_sent") as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            webhook_id = await insert_webhook(conn, "t")
            for minutes, code in ((5, 200), (30, 500), (50, None), (180, 200), (1200, 503)):
                at = now - timedelta(minutes=minutes)
                due = now + timedelta(hours=2) if code == 503 else None
                status = "success" if code == 200 else "fail"
                await _stored_before_0008(conn, webhook_id, at, status, code, due)
        finally:
            await conn.close()
        assert "0008_health_counts" in await migrate(dsn)
        pool = await create_pool(dsn)
        try:
            page = [uuid.UUID(webhook_id)]
            health = (await load_health(pool, page))[page[0]]
            async with pool.acquire() as conn:
                counted = (await _counted(conn, page))[page[0]]
        finally:
            await pool.close()
        assert counted == (round(1 / 3, 4), 0.4, 1)
        assert (health.success_rate_1h, health.success_rate_24h, health.pending_retries) == counted
