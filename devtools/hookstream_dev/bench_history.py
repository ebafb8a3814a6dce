"""`make bench-history`: retention and paging at volume on the partitioned history.

    python -m hookstream_dev.bench_history [--deliveries 1000000] [--webhooks 100]

Fills seven days with deliveries (one event body per event, one attempt per delivery, written
by the store-outcome step the dispatcher uses), then times, on the same data:
- dropping the oldest day's partitions (what the janitor does) against a DELETE of the same
  rows (done in a transaction that is rolled back, so both see the same table);
- the first page and a deep page (keyset cursor after 90 % of one webhook's rows) of one
  webhook's deliveries, with the API's own query;
- the dispatcher's one-delivery-per-event check (hookstream_dispatcher.once) for batches of 1,
  100 and 1,000 delivery ids, half of them stored: its cost per job.
Works on a database of its own, dropped at the end.
"""

import argparse
import asyncio
import hashlib
import secrets
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from hookstream_api.dependencies import DELIVERY_SORTS
from hookstream_api.paging import Cursor, PageRequest
from hookstream_api.repository import DeliveryRepository
from hookstream_api.schemas import DeliveryQuery
from hookstream_common.db import create_pool, ensure_partitions, json_codecs, migrate
from hookstream_common.delivery import Attempt
from hookstream_common.events import Event
from hookstream_common.history import Outcome, record_outcomes
from hookstream_dev import infra
from hookstream_dev.events import sample_event
from hookstream_dispatcher.once import succeeded_in

CREATED = "com.qlik.v1.app.created"

_CHUNK = 5_000
"""Outcomes per `record_outcomes` transaction while filling."""


def _say(message: str) -> None:
    print(f"bench-history: {message}", file=sys.stderr, flush=True)


def _outcome(n: int, webhooks: list[uuid.UUID], at: datetime) -> Outcome:
    """Delivery `n`: one attempt at `at`, every tenth failed."""
    doc = sample_event(CREATED, "bench", "bench-user", {"id": n})
    doc["eventId"] = f"e{n}"
    attempt = Attempt(started_at=at, duration_ms=3.5, status_code=500 if n % 10 == 0 else 200)
    return Outcome(
        delivery_id=str(uuid.UUID(bytes=hashlib.md5(f"d{n}".encode()).digest())),
        tenant_id="bench",
        webhook_id=str(webhooks[n % len(webhooks)]),
        event=Event.from_legacy(doc),
        cloud_event=False,
        status="success" if attempt.succeeded else "fail",
        status_message=attempt.status_message(),
        triggered_at=at,
        request={"url": "https://hooks.example.com/x", "headers": {"User-Agent": "Qlik Webhook"}},
        attempt_number=1,
        attempt=attempt,
    )


async def _fill(dsn: str, total: int, webhooks: list[uuid.UUID], start: datetime) -> None:
    """`total` deliveries spread evenly over seven days from `start`, stored as the dispatcher
    stores them (`record_outcomes`, bodies, attempts and health included), with progress."""
    spacing = timedelta(seconds=7 * 86400 / total)
    connection = await asyncpg.connect(dsn)
    await json_codecs(connection)
    try:
        for first in range(0, total, _CHUNK):
            last = min(total, first + _CHUNK)
            outcomes = [_outcome(n, webhooks, start + n * spacing) for n in range(first, last)]
            async with connection.transaction():
                await record_outcomes(connection, outcomes)
            if last % 50_000 == 0 or last == total:
                _say(f"  filled {last:,} of {total:,}")
        await connection.execute("ANALYZE deliveries; ANALYZE event_bodies")
    finally:
        await connection.close()


async def _time_prune(dsn: str, day: datetime) -> dict[str, float]:
    """DELETE of the day's rows (rolled back) against DROP of its partitions."""
    connection = await asyncpg.connect(dsn)
    try:
        suffix = f"{day:%Y%m%d}"
        rows = await connection.fetchval(f"SELECT count(*) FROM deliveries_p{suffix}")
        transaction = connection.transaction()
        await transaction.start()
        started = time.perf_counter()
        for table in ("delivery_attempts", "deliveries", "event_bodies"):
            await connection.execute(
                f"DELETE FROM {table} WHERE triggered_at >= $1 AND triggered_at < $2",
                day,
                day + timedelta(days=1),
            )
        delete_seconds = time.perf_counter() - started
        await transaction.rollback()
        started = time.perf_counter()
        async with connection.transaction():
            for table in ("delivery_attempts", "deliveries", "event_bodies"):
                await connection.execute(f"DROP TABLE {table}_p{suffix}")
        drop_seconds = time.perf_counter() - started
        return {"day_rows": rows, "delete_seconds": delete_seconds, "drop_seconds": drop_seconds}
    finally:
        await connection.close()


async def _time_pages(dsn: str, webhook: uuid.UUID) -> dict[str, float]:
    """Median of 20 runs of the API's deliveries query: first page, and a deep page."""
    pool = await create_pool(dsn, max_size=2)
    try:
        repository = DeliveryRepository(pool, timedelta(days=7))
        sort = DELIVERY_SORTS.parse(None)
        rows = await pool.fetch(
            "SELECT id, triggered_at FROM deliveries WHERE webhook_id = $1"
            " ORDER BY triggered_at DESC, id DESC",
            webhook,
        )
        deep = rows[int(len(rows) * 0.9)]
        cursor = Cursor("-triggeredAt", deep["triggered_at"], deep["id"], False)
        timings: dict[str, float] = {"webhook_rows": len(rows)}
        for name, page_cursor in (("first_page_ms", None), ("deep_page_ms", cursor)):
            samples = []
            for _ in range(20):
                started = time.perf_counter()
                request = PageRequest(sort, page_cursor, 20)
                page = await repository.list("bench", webhook, DeliveryQuery(), request)
                samples.append((time.perf_counter() - started) * 1000)
                assert len(page.rows) == 20
            timings[name] = statistics.median(samples)
        return timings
    finally:
        await pool.close()


async def _time_once(dsn: str, total: int) -> dict[str, float]:
    """Median of 20 lookups per batch size; half the ids are stored deliveries, half unknown."""
    pool = await create_pool(dsn, max_size=2)
    try:
        lookup = succeeded_in(pool, timedelta(days=7))
        timings: dict[str, float] = {}
        for size in (1, 100, 1000):
            samples = []
            for run_number in range(20):
                stored = await pool.fetch(
                    "SELECT md5('d' || n)::text AS id FROM generate_series($1::bigint, $2) n",
                    run_number * size % total,
                    run_number * size % total + size // 2,
                )
                ids = [str(uuid.UUID(r["id"])) for r in stored][: max(1, size // 2)]
                ids += [str(uuid.uuid4()) for _ in range(size - len(ids))]
                started = time.perf_counter()
                await lookup(ids)
                samples.append((time.perf_counter() - started) * 1000)
            timings[f"once_{size}_ms"] = statistics.median(samples)
        return timings
    finally:
        await pool.close()


async def run(total: int, webhook_count: int) -> dict[str, float]:
    """Fill, then time; always drop the database."""
    server = infra.ensure_postgres()
    name = f"hookstream_history_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{server.rpartition('/')[0]}/{name}"
    try:
        await migrate(dsn)
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=6)
        connection = await asyncpg.connect(dsn)
        await ensure_partitions(connection, 7, today=start.date())
        await connection.close()
        webhooks = [uuid.uuid4() for _ in range(webhook_count)]
        _say(f"filling 7 days with {total:,} deliveries for {webhook_count} webhooks")
        started = time.perf_counter()
        await _fill(dsn, total, webhooks, start)
        results: dict[str, float] = {"fill_seconds": time.perf_counter() - started}
        _say("timing the deliveries list (first page, deep page)")
        results.update(await _time_pages(dsn, webhooks[0]))
        _say("timing the one-delivery-per-event check")
        results.update(await _time_once(dsn, total))
        _say("timing the pruning of the oldest day: DELETE against DROP PARTITION")
        results.update(await _time_prune(dsn, start))
        return results
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m hookstream_dev.bench_history")
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--webhooks", type=int, default=100)
    args = parser.parse_args(argv)
    r = asyncio.run(run(args.deliveries, args.webhooks))
    print(
        f"deliveries             {args.deliveries:,} over 7 days, {args.webhooks} webhooks"
        f" (filled in {r['fill_seconds']:.0f} s)\n"
        f"prune one day          DROP PARTITION {r['drop_seconds'] * 1000:.1f} ms;"
        f" DELETE {r['delete_seconds'] * 1000:.0f} ms ({r['day_rows']:,} deliveries)\n"
        f"deliveries list        first page {r['first_page_ms']:.2f} ms;"
        f" deep page {r['deep_page_ms']:.2f} ms ({r['webhook_rows']:,} rows of one webhook)\n"
        f"once-per-event check   1 id {r['once_1_ms']:.2f} ms; 100 ids {r['once_100_ms']:.2f} ms;"
        f" 1,000 ids {r['once_1000_ms']:.2f} ms ({r['once_1000_ms']:.3f} µs a job in a full batch)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
