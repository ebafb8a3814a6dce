"""Limits on what a tenant writes, and on what the outbox relay can publish, on the real services.

- the webhook cap holds under concurrent creates;
- a tenant's writes are rate-limited (429 with Retry-After), across API replicas;
- a route set the broker can never take is parked, and every other tenant's changes go on;
- a webhook whose secret no key decrypts cannot be patched (409) but can be replaced.
"""

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet
from test_api import body, create

from hookstream_common.webhook_store import record_change
from hookstream_dev.stack import ServiceSet, free_port
from support import bearer, metric, new_tenant, scrape, wait_routed, wait_until

V1 = "/api/v1/webhooks"
SECRET = "s" * 40
LOW_RATE = {
    "HOOKSTREAM_WRITE_RATE_PER_SECOND": "0.5",
    "HOOKSTREAM_WRITE_BURST": "3",
    "HOOKSTREAM_USER_RATE_SHARE": "1",
}
"""One write every 2 s, 3 at once: what the replicas of the rate-limit test run with. One user
may use all of it: this test is about the tenant's bucket across replicas (the users' shares
are tests/security/test_limits.py's)."""


def error_of(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    envelope = response.json()
    assert set(envelope) == {"errors", "traceId"}
    return envelope["errors"][0]


async def test_concurrent_creates_stop_exactly_at_the_cap(
    api: httpx.AsyncClient, token: Callable[..., str], settings_env: dict[str, str]
) -> None:
    cap = int(settings_env["HOOKSTREAM_MAX_WEBHOOKS_PER_TENANT"])
    auth = token(new_tenant(), "u1")
    await asyncio.gather(*(create(api, auth) for _ in range(cap - 5)))
    responses = await asyncio.gather(
        *(api.post(V1, json=body(), headers=bearer(auth)) for _ in range(20))
    )
    assert Counter(r.status_code for r in responses) == {201: 5, 403: 15}
    listed = await api.get(V1, params={"limit": 100}, headers=bearer(auth))
    assert len(listed.json()["data"]) == cap


@pytest.fixture
async def slow_replicas(stack: ServiceSet) -> AsyncIterator[ServiceSet]:
    """Two more API replicas on the session's database, both with a low write rate; stopped
    after the test, so their relays leave the outbox to the session's API again."""
    replicas = ServiceSet(
        env={**stack.env, **LOW_RATE},
        ports={"api-2": free_port(), "api-3": free_port()},
        log_dir=stack.log_dir,
    )
    try:
        for name in replicas.ports:
            replicas.start(name, wait=False)
        for name in replicas.ports:
            await asyncio.to_thread(replicas.wait_ready, name)
        yield replicas
    finally:
        await asyncio.to_thread(replicas.stop_all)


async def test_writes_are_rate_limited_per_tenant_across_replicas(
    slow_replicas: ServiceSet, token: Callable[..., str]
) -> None:
    auth = token(new_tenant(), "u1")
    async with (
        httpx.AsyncClient(base_url=slow_replicas.url("api-2"), timeout=15) as one,
        httpx.AsyncClient(base_url=slow_replicas.url("api-3"), timeout=15) as other,
    ):
        made = [await create(one, auth) for _ in range(3)]  # the burst
        refused = await other.post(V1, json=body(), headers=bearer(auth))  # the same bucket
        error = error_of(refused, 429)
        assert error["code"] == "HOOKSTREAM-429" and "a second" in error["detail"]
        wait = int(refused.headers["Retry-After"])
        assert 1 <= wait <= 2
        assert (await other.get(V1, headers=bearer(auth))).status_code == 200  # reads are free
        await create(other, token(new_tenant(), "u1"))  # another tenant is not held up

        await asyncio.sleep(wait)
        path = f"{V1}/{made[0]['id']}"
        assert (await other.delete(path, headers=bearer(auth))).status_code == 204
        rename = [{"op": "replace", "path": "/name", "value": "x"}]
        patched = await one.patch(f"{V1}/{made[1]['id']}", json=rename, headers=bearer(auth))
        error_of(patched, 429)
        replaced = await one.put(f"{V1}/{made[1]['id']}", json=body(), headers=bearer(auth))
        error_of(replaced, 429)


async def _put_routes_over_the_message_limit(database_url: str, tenant: str) -> None:
    """Three webhooks whose owner ids (written before the API bounded them) make the tenant's
    route set 1.2 MB: more than the broker takes in one record."""
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            for _ in range(3):
                webhook_id = uuid.uuid4()
                await conn.execute(
                    "INSERT INTO webhooks (id, tenant_id, name, url, event_types, level, owner_id,"
                    " created_by_user_id, updated_by_user_id) VALUES ($1, $2, 'big',"
                    " 'https://hooks.example.com/', '{com.qlik.v1.app.created}', 'user', $3,"
                    " 'u1', 'u1')",
                    webhook_id,
                    tenant,
                    "o" * 400_000,
                )
                await record_change(conn, tenant, webhook_id, "updated")
    finally:
        await conn.close()


async def _outbox_of(database_url: str, tenant: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(
            "SELECT published_at, failed_at, error FROM outbox WHERE tenant_id = $1 ORDER BY id",
            tenant,
        )
    finally:
        await conn.close()


async def test_relay_parks_a_route_set_too_large_to_publish_and_goes_on(
    api: httpx.AsyncClient, stack: ServiceSet, token: Callable[..., str], database_url: str
) -> None:
    poisoned, healthy = new_tenant(), new_tenant()
    await _put_routes_over_the_message_limit(database_url, poisoned)
    webhook = await create(api, token(healthy, "u1"))
    await wait_routed(stack, healthy, {webhook["id"]})

    rows = await _outbox_of(database_url, poisoned)  # handled before the healthy tenant's
    assert len(rows) == 3
    assert all(r["failed_at"] and not r["published_at"] for r in rows)
    assert all("MessageSizeTooLargeError" in r["error"] for r in rows)
    failed = metric(
        await scrape(stack.ops_url("api")),
        "hookstream_outbox_failed_rows_total",
        error="MessageSizeTooLargeError",
    )
    assert failed >= 3

    # The tenant's next change publishes its whole set again: here, empty (a tombstone).
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            for webhook_id in await conn.fetch(
                "DELETE FROM webhooks WHERE tenant_id = $1 RETURNING id", poisoned
            ):
                await record_change(conn, poisoned, webhook_id["id"], "deleted")
    finally:
        await conn.close()

    async def republished() -> bool:
        rows = await _outbox_of(database_url, poisoned)
        return len(rows) == 6 and all(r["published_at"] for r in rows[3:])

    await wait_until(republished)


async def test_undecryptable_secret_is_a_409_until_put_replaces_it(
    api: httpx.AsyncClient, token: Callable[..., str], database_url: str
) -> None:
    auth = token(new_tenant(), "u1")
    webhook = await create(api, auth, secret=SECRET)
    conn = await asyncpg.connect(database_url)
    try:  # as if the key that sealed it had been dropped
        await conn.execute(
            "UPDATE webhooks SET secret = $2 WHERE id = $1",
            uuid.UUID(webhook["id"]),
            Fernet(Fernet.generate_key()).encrypt(SECRET.encode()),
        )
    finally:
        await conn.close()
    path = f"{V1}/{webhook['id']}"
    rename = [{"op": "replace", "path": "/name", "value": "renamed"}]
    error = error_of(await api.patch(path, json=rename, headers=bearer(auth)), 409)
    assert "cannot be decrypted; replace the webhook with PUT" in error["detail"]

    replaced = await api.put(path, json=body(secret=SECRET, enabled=True), headers=bearer(auth))
    assert replaced.status_code == 200, replaced.text
    audited = (await api.get(f"{path}/audit", headers=bearer(auth))).json()["data"][0]
    assert audited["changedFields"] == ["secret"]  # what no key opened counts as changed
    assert (await api.patch(path, json=rename, headers=bearer(auth))).status_code == 204
    assert (await api.get(path, headers=bearer(auth))).json()["name"] == "renamed"
