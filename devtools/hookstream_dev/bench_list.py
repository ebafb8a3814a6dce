"""Benchmark (h)'s parts: a tenant's last 24 h of history, seeded through the store-outcome
step, and the webhook list read by many clients at once.

The history is written by `record_outcomes` (the one writer of history rows, issue 24), in
batches from a few connections at once, as the dispatcher's writer does: each event fans out to
every webhook of the tenant; one attempt in twenty fails, one failure in ten has a retry due in
the coming hours.
"""

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from hookstream_common.db import create_pool
from hookstream_common.delivery import Attempt
from hookstream_common.events import Event
from hookstream_common.history import Outcome, record_outcomes
from hookstream_dev.bench_sink import EVENT_TYPE, percentile
from hookstream_dev.events import sample_event

_DAY = timedelta(hours=24)
_REQUEST = {"url": "https://receiver.example.com/hook", "headers": {"User-Agent": "Qlik Webhook"}}


def outcomes(
    tenant: str, webhook_ids: list[str], deliveries: int, now: datetime
) -> Iterator[Outcome]:
    """`deliveries` outcomes spread evenly over the 24 h before `now`."""
    events = max(1, deliveries // len(webhook_ids))
    spacing = (_DAY - timedelta(minutes=1)) / events
    start = now - _DAY + timedelta(seconds=30)
    count = 0
    for index in range(events):
        triggered = start + index * spacing
        event = Event.from_legacy(sample_event(EVENT_TYPE, tenant, "bench-user"))
        for webhook_id in webhook_ids:
            count += 1
            code = 500 if count % 20 == 0 else 200
            attempt = Attempt(started_at=triggered, duration_ms=4.0, status_code=code, body="ok")
            retry = now + timedelta(minutes=count % 600) if count % 200 == 0 else None
            yield Outcome(
                delivery_id=str(uuid.uuid4()),
                tenant_id=tenant,
                webhook_id=webhook_id,
                event=event,
                cloud_event=False,
                status="success" if attempt.succeeded else "fail",
                status_message=attempt.status_message(),
                triggered_at=triggered,
                request=_REQUEST,
                attempt_number=1,
                attempt=attempt,
                next_attempt_at=retry,
            )


async def seed(
    dsn: str, tenant: str, webhook_ids: list[str], deliveries: int, batch: int = 5_000
) -> float:
    """Store the tenant's last 24 h of deliveries; the seconds it took."""
    started = time.monotonic()
    source = outcomes(tenant, webhook_ids, deliveries, datetime.now(UTC))
    lock = asyncio.Lock()
    pool = await create_pool(dsn, max_size=3)

    async def writer() -> None:
        while True:
            async with lock:
                chunk = [o for _, o in zip(range(batch), source, strict=False)]
            if not chunk:
                return
            async with pool.acquire() as conn, conn.transaction():
                await record_outcomes(conn, chunk)

    try:
        await asyncio.gather(*(writer() for _ in range(3)))
        await pool.execute("ANALYZE")
    finally:
        await pool.close()
    return time.monotonic() - started


async def read_list(
    url: str, headers: dict[str, str], clients: int, seconds: float
) -> dict[str, Any]:
    """`clients` clients each GETting `url` back to back for `seconds` (after a second's
    warm-up): requests/s, p50/p99 latency and answers other than 200."""
    latencies: list[float] = []
    failures = 0
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def client(until: float, record: bool) -> None:
            nonlocal failures
            while (sent := time.perf_counter()) < until:
                async with session.get(url) as response:
                    await response.read()
                    if record:
                        latencies.append((time.perf_counter() - sent) * 1000)
                        failures += response.status != 200

        await asyncio.gather(*(client(time.perf_counter() + 1, False) for _ in range(clients)))
        started = time.perf_counter()
        await asyncio.gather(*(client(started + seconds, True) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "rate": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "failures": failures,
    }
