"""Every action a tenant can repeat is rate limited and fair, and every stored thing is capped
and purged (issue 18 items 4 and 7).

Seen before: 300 concurrent resends of one delivery were 300 times 201; response headers were
stored uncapped (aiohttp takes 128 of 8 KiB each) and response bodies twice; the `recoveries`
table was never purged; one user could spend its whole tenant's write bucket; a plain user could
delete a level=tenant webhook it owned although it could not edit it.
"""

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from hookstream_api.rate_limits import InFlight, Limit, Rate
from hookstream_common.delivery import (
    HEADERS_CUT,
    MAX_STORED_HEADER_BYTES,
    MAX_STORED_HEADERS,
    stored_headers,
)
from hookstream_common.sdk import EventPublisher
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from hookstream_janitor.housekeeping import PassReport, purge_records
from support import bearer, new_tenant, receiver_url, wait_routed, wait_until

V1 = "/api/v1/webhooks"
CREATED = "com.qlik.v1.app.created"


def test_stored_response_headers_are_capped_in_count_and_bytes() -> None:
    many = [(f"X-Pad-{i}", "v" * 10) for i in range(128)]
    kept = stored_headers(many)
    assert len(kept) == MAX_STORED_HEADERS + 1
    assert kept[HEADERS_CUT] == str(128 - MAX_STORED_HEADERS)
    large = [(f"X-Big-{i}", "v" * 4000) for i in range(8)]
    kept = stored_headers(large)
    stored = sum(len(k) + len(v) for k, v in kept.items() if k != HEADERS_CUT)
    assert stored <= MAX_STORED_HEADER_BYTES and kept[HEADERS_CUT] == "6"
    assert stored_headers([("A", "b\x00")]) == {"A": "b\ufffd"}


def test_each_user_gets_a_share_of_the_tenant_rate() -> None:
    limit = Limit("action", Rate(1.0, 20), user_share=0.5)
    [(user_bucket, user_rate), (tenant_bucket, tenant_rate)] = limit.buckets("t", "u")
    assert (user_bucket, tenant_bucket) == ("action/user/t/u", "action/tenant/t")
    assert (user_rate.per_second, user_rate.burst) == (0.5, 10)
    assert tenant_rate == Rate(1.0, 20)
    assert Rate(1.0, 1).share(0.5).burst == 1


def test_in_flight_slots_are_per_tenant_and_given_back() -> None:
    slots = InFlight(per_tenant=2)
    assert slots.enter("a") and slots.enter("a") and not slots.enter("a")
    assert slots.enter("b")
    slots.leave("a")
    assert slots.enter("a")
    for tenant in ("a", "a", "b"):
        slots.leave(tenant)
    assert slots.enter("a") and slots.enter("a") and slots.enter("b")


async def _delivered(
    api: httpx.AsyncClient,
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    tenant: str,
    path: str,
) -> tuple[str, str]:
    """A webhook of the tenant on `path` and one delivery of it; returns both ids."""
    response = await api.post(
        V1, json={"name": "limits", "url": receiver_url(receiver, path), "eventTypes": [CREATED]}
    )
    assert response.status_code == 201, response.text
    webhook_id = response.json()["id"]
    await wait_routed(stack, tenant, {webhook_id})
    await publisher.publish(sample_event(CREATED, tenant, "admin"))

    async def delivered() -> str | None:
        data = (await api.get(f"{V1}/{webhook_id}/deliveries")).json()["data"]
        return data[0]["id"] if data else None

    return webhook_id, await wait_until(delivered, timeout=60)


async def test_resends_are_rate_limited_and_one_user_cannot_spend_the_tenant(
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    token: Callable[..., str],
) -> None:
    tenant = new_tenant()
    base = stack.url("api")
    async with (
        httpx.AsyncClient(
            base_url=base, headers=bearer(token(tenant, "admin", admin=True)), timeout=30
        ) as admin,
        httpx.AsyncClient(
            base_url=base, headers=bearer(token(tenant, "other", admin=True)), timeout=30
        ) as other,
    ):
        webhook_id, delivery_id = await _delivered(
            admin, stack, receiver, publisher, tenant, "/hooks/limits-resend"
        )
        resend = f"{V1}/{webhook_id}/deliveries/{delivery_id}/actions/resend"
        answers = await asyncio.gather(*(admin.post(resend) for _ in range(60)))
        statuses = Counter(answer.status_code for answer in answers)
        assert set(statuses) == {201, 429}, statuses
        # The default action burst is 20 a tenant, half of it a user; a few more refill.
        assert statuses[201] <= 14, statuses
        refused = next(a for a in answers if a.status_code == 429)
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["errors"][0]["code"] == "HOOKSTREAM-429"
        # Another user of the same tenant still has the rest of the tenant's burst.
        assert (await other.post(resend)).status_code == 201


async def test_response_headers_are_stored_capped(
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    token: Callable[..., str],
) -> None:
    tenant = new_tenant()
    path = f"/hooks/limits-headers-{uuid.uuid4().hex}"
    receiver.respond(path, headers={f"X-Pad-{i}": "v" * 200 for i in range(100)})
    auth = bearer(token(tenant, "admin", admin=True))
    async with httpx.AsyncClient(base_url=stack.url("api"), headers=auth, timeout=30) as api:
        webhook_id, delivery_id = await _delivered(api, stack, receiver, publisher, tenant, path)
        delivery = (await api.get(f"{V1}/{webhook_id}/deliveries/{delivery_id}")).json()
    headers = delivery["response"]["headers"]
    assert int(headers[HEADERS_CUT]) > 50
    assert sum(len(k) + len(v) for k, v in headers.items()) <= MAX_STORED_HEADER_BYTES + 64


async def test_a_tenant_has_a_bounded_number_of_recoveries_under_way(
    stack: ServiceSet, token: Callable[..., str], database_url: str, settings_env: dict[str, str]
) -> None:
    """Three running recoveries held locked (so the worker, which skips locked rows, leaves
    them running): the tenant's fourth request is a 429."""
    tenant = new_tenant()
    auth = bearer(token(tenant, "admin", admin=True))
    async with httpx.AsyncClient(base_url=stack.url("api"), headers=auth, timeout=30) as api:
        created = await api.post(
            V1, json={"name": "r", "url": "https://hooks.example.com/r", "eventTypes": [CREATED]}
        )
        webhook_id = created.json()["id"]
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        conn = await asyncpg.connect(database_url)
        try:
            ids = [uuid.uuid4() for _ in range(3)]
            await conn.executemany(
                "INSERT INTO recoveries (id, tenant_id, webhook_id, since, until, total)"
                " VALUES ($1, $2, $3, now() - interval '1 hour', now(), 1)",
                [(i, tenant, uuid.UUID(webhook_id)) for i in ids],
            )
            async with conn.transaction():
                await conn.fetch("SELECT 1 FROM recoveries WHERE id = ANY($1) FOR UPDATE", ids)
                refused = await api.post(
                    f"{V1}/{webhook_id}/actions/recover", json={"since": since}
                )
            assert refused.status_code == 429, refused.text
            assert "3 recoveries under way" in refused.json()["errors"][0]["detail"]
        finally:
            await conn.execute("DELETE FROM recoveries WHERE tenant_id = $1", tenant)
            await conn.close()


async def test_the_janitor_purges_old_recoveries_and_full_rate_buckets(
    db: asyncpg.Connection,
) -> None:
    now = datetime.now(UTC)
    old, recent = uuid.uuid4(), uuid.uuid4()
    await db.executemany(
        "INSERT INTO recoveries (id, tenant_id, webhook_id, since, until, total, state,"
        " finished_at) VALUES ($1, 'purge-test', $2, $3, $3, 0, 'done', $3)",
        [(old, uuid.uuid4(), now - timedelta(days=8)), (recent, uuid.uuid4(), now)],
    )
    full, draining = f"test/{uuid.uuid4()}", f"test/{uuid.uuid4()}"
    await db.executemany(
        "INSERT INTO rate_buckets (bucket, tat) VALUES ($1, $2)",
        [(full, now - timedelta(seconds=1)), (draining, now + timedelta(minutes=1))],
    )
    report = PassReport()
    await purge_records(db, now, timedelta(days=7), report)
    assert report.recoveries_purged >= 1 and report.rate_buckets_purged >= 1
    left = await db.fetch("SELECT id FROM recoveries WHERE id = ANY($1)", [old, recent])
    assert [r["id"] for r in left] == [recent]
    buckets = await db.fetch(
        "SELECT bucket FROM rate_buckets WHERE bucket = ANY($1)", [full, draining]
    )
    assert [r["bucket"] for r in buckets] == [draining]


@pytest.mark.parametrize("action", ["delete", "patch"])
async def test_only_a_tenant_admin_manages_a_tenant_level_webhook(
    stack: ServiceSet, token: Callable[..., str], action: str
) -> None:
    tenant = new_tenant()
    base = stack.url("api")
    async with (
        httpx.AsyncClient(
            base_url=base, headers=bearer(token(tenant, "admin", admin=True)), timeout=30
        ) as admin,
        httpx.AsyncClient(
            base_url=base, headers=bearer(token(tenant, "owner")), timeout=30
        ) as owner,
    ):
        created = await admin.post(
            V1,
            json={
                "name": "tenant-wide",
                "url": "https://hooks.example.com/t",
                "eventTypes": [CREATED],
                "level": "tenant",
                "ownerId": "owner",
            },
        )
        webhook = f"{V1}/{created.json()['id']}"
        assert (await owner.get(webhook)).status_code == 200
        if action == "delete":
            answer = await owner.delete(webhook)
        else:
            answer = await owner.patch(
                webhook, json=[{"op": "replace", "path": "/enabled", "value": False}]
            )
        assert answer.status_code == 403, answer.text
        assert (await admin.get(webhook)).json()["enabled"] is True
