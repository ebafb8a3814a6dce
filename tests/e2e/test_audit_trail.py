"""The audit trail (issue 23 item 3) on the real services and Postgres: every management action
leaves its row, with who, when, from where and which fields, never a secret or header value;
the lists page and filter, are visible as the webhooks are, and the janitor prunes them."""

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from e2e.scenario import Scenario, unique_path

from hookstream_dev.receiver import Receiver
from hookstream_janitor.housekeeping import PassReport, prune_audit
from support import bearer, new_tenant, receiver_url, wait_until

V1 = "/api/v1/webhooks"
CORE = "/api/core/webhooks"
CREATED, DELETED = "com.qlik.v1.app.created", "com.qlik.v1.app.deleted"
SECRET = f"audit-secret-{secrets.token_hex(12)}"
NEW_SECRET = f"audit-rotated-{secrets.token_hex(12)}"
HEADER_VALUE = f"audit-header-{secrets.token_hex(8)}"
PLAIN_VALUE = f"audit-plain-{secrets.token_hex(8)}"


def traceparent() -> tuple[str, dict[str, str]]:
    """A trace id and the `traceparent` header that carries it."""
    trace_id = secrets.token_hex(16)
    return trace_id, {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}


async def ok(response: httpx.Response, status: int) -> httpx.Response:
    assert response.status_code == status, response.text
    return response


async def create(api: httpx.AsyncClient, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"name": "hook", "url": "https://hooks.example.com/in", "eventTypes": [CREATED]}
    response = await ok(await api.post(V1, json=body | fields, headers=auth), 201)
    return response.json()


async def patch(api: httpx.AsyncClient, auth: dict[str, str], webhook_id: str, **fields: Any):
    operations = [{"op": "replace", "path": f"/{k}", "value": v} for k, v in fields.items()]
    await ok(await api.patch(f"{V1}/{webhook_id}", json=operations, headers=auth), 204)


async def trail(
    api: httpx.AsyncClient, auth: dict[str, str], webhook_id: str | None = None, **params: Any
) -> list[dict[str, Any]]:
    """Every row of a list, following `next` links."""
    path = f"{V1}/{webhook_id}/audit" if webhook_id else f"{V1}/audit"
    response = await ok(await api.get(path, params={"limit": 100, **params}, headers=auth), 200)
    rows = response.json()["data"]
    while "next" in response.json()["links"]:
        response = await ok(
            await api.get(response.json()["links"]["next"]["href"], headers=auth), 200
        )
        rows += response.json()["data"]
    return rows


async def test_each_action_records_who_what_when_and_from_where(
    api: httpx.AsyncClient, token: Any, receiver: Receiver
) -> None:
    auth = bearer(token(new_tenant(), "u1"))
    path = unique_path("audit")
    receiver.respond(path, status=200)
    started = datetime.now(UTC)
    created_trace, created_headers = traceparent()
    response = await api.post(
        V1,
        json={
            "name": "audited",
            "url": receiver_url(receiver, path),
            "eventTypes": [CREATED],
            "secret": SECRET,
            "headers": {"X-Plain": PLAIN_VALUE},
            "encryptedHeaders": {"X-Key": HEADER_VALUE},
        },
        headers=auth | created_headers,
    )
    webhook = (await ok(response, 201)).json()
    hook_id = webhook["id"]
    await patch(api, auth, hook_id, url=receiver_url(receiver, path + "/v2"), eventTypes=[DELETED])
    receiver.respond(path + "/v2", status=200)
    await patch(api, auth, hook_id, enabled=False)
    await patch(api, auth, hook_id, enabled=True)
    await patch(api, auth, hook_id, secret=NEW_SECRET)
    replacement = {
        "name": "replaced",
        "url": webhook["url"],
        "eventTypes": [DELETED],
        "enabled": True,
    }
    await ok(await api.put(f"{V1}/{hook_id}", json=replacement, headers=auth), 200)
    tested = (await ok(await api.post(f"{V1}/{hook_id}/actions/test", headers=auth), 201)).json()
    resent = (
        await ok(
            await api.post(
                f"{V1}/{hook_id}/deliveries/{tested['id']}/actions/resend", headers=auth
            ),
            201,
        )
    ).json()
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    recovery = (
        await ok(
            await api.post(f"{V1}/{hook_id}/actions/recover", json={"since": since}, headers=auth),
            202,
        )
    ).json()
    await ok(await api.delete(f"{V1}/{hook_id}", headers=auth), 204)

    response = await ok(await api.get(f"{V1}/{hook_id}/audit", headers=auth), 200)
    for value in (SECRET, NEW_SECRET, HEADER_VALUE, PLAIN_VALUE):
        assert value not in response.text
    rows = list(reversed(response.json()["data"]))
    assert [(row["action"], row["changedFields"]) for row in rows] == [
        (
            "create",
            [
                "checkCertificateRevocation",
                "enableCloudEventDelivery",
                "enabled",
                "encryptedHeaders",
                "eventTypes",
                "headers",
                "level",
                "name",
                "ownerId",
                "secret",
                "secretRotationGraceSeconds",
                "url",
            ],
        ),
        ("update", ["eventTypes", "url"]),
        ("disable", ["enabled"]),
        ("enable", ["enabled"]),
        ("rotateSecret", ["secret"]),
        ("update", ["encryptedHeaders", "headers", "name", "secret", "url"]),
        ("test", []),
        ("resend", []),
        ("recover", []),
        ("delete", []),
    ]
    for row in rows:
        assert row["webhookId"] == hook_id and row["actor"] == "u1"
        assert row["sourceAddress"] == "127.0.0.1"
        assert started <= datetime.fromisoformat(row["createdAt"]) <= datetime.now(UTC)
        assert len(row["traceId"]) == 32
    assert rows[0]["traceId"] == created_trace
    assert rows[6]["details"] == {"deliveryId": tested["id"], "eventType": DELETED}
    assert rows[7]["details"] == {"deliveryId": resent["id"], "resentDeliveryId": tested["id"]}
    assert rows[8]["details"]["recoveryId"] == recovery["id"]
    assert rows[8]["details"]["total"] == recovery["total"]
    assert [row["details"] for row in rows[:6] + rows[9:]] == [{}] * 7


async def test_auto_disable_is_recorded_as_the_systems(
    scenario: Scenario, receiver: Receiver
) -> None:
    path = unique_path("audit-gone")
    receiver.respond(path, status=410)
    webhook = await scenario.webhook(receiver_url(receiver, path))
    await scenario.publish()

    async def disabled() -> list[dict[str, Any]]:
        rows = await trail(scenario.api, scenario.auth, webhook.id, action="disable")
        return rows

    [row] = await wait_until(disabled, timeout=60)
    assert row["actor"] == "system" and row["sourceAddress"] is None
    assert row["changedFields"] == ["enabled"]
    assert row["details"] == {"reasonCode": "ENDPOINT_GONE"}


async def test_lists_page_and_filter_under_both_prefixes(
    api: httpx.AsyncClient, token: Any
) -> None:
    admin = bearer(token(new_tenant(), "boss", admin=True))
    first = await create(api, admin, name="first")
    for number in range(4):
        await patch(api, admin, first["id"], name=f"first-{number}")
    middle = datetime.now(UTC)
    second = await create(api, admin, name="second")
    await patch(api, admin, second["id"], enabled=False)

    everything = await trail(api, admin)
    assert [row["action"] for row in everything] == ["disable", "create"] + ["update"] * 4 + [
        "create"
    ]
    pages, href = [], f"{CORE}/audit?limit=3"
    while href:
        page = (await ok(await api.get(href, headers=admin), 200)).json()
        pages.append([row["id"] for row in page["data"]])
        href = page["links"].get("next", {}).get("href")
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [row_id for page in pages for row_id in page] == [row["id"] for row in everything]
    second_page = (await ok(await api.get(f"{CORE}/audit?limit=3", headers=admin), 200)).json()
    second_page = (
        await ok(await api.get(second_page["links"]["next"]["href"], headers=admin), 200)
    ).json()
    back = (
        await ok(await api.get(second_page["links"]["prev"]["href"], headers=admin), 200)
    ).json()
    assert [row["id"] for row in back["data"]] == pages[0]
    oldest_first = await trail(api, admin, sort="+createdAt")
    assert [row["id"] for row in oldest_first] == [row["id"] for row in reversed(everything)]

    assert len(await trail(api, admin, first["id"])) == 5
    assert len(await trail(api, admin, webhookId=second["id"])) == 2
    assert len(await trail(api, admin, first["id"], action="update")) == 4
    assert len(await trail(api, admin, action="create,disable")) == 3
    assert len(await trail(api, admin, actor="boss")) == 7
    assert await trail(api, admin, actor="someone-else") == []
    assert [row["webhookId"] for row in await trail(api, admin, since=middle.isoformat())] == [
        second["id"]
    ] * 2
    assert len(await trail(api, admin, until=middle.isoformat())) == 5

    for params in ({"action": "explode"}, {"since": "y"}, {"sort": "actor"}, {"webhookId": "x"}):
        response = await api.get(f"{V1}/audit", params=params, headers=admin)
        assert response.status_code == 400, (params, response.text)
    wrong_method = await api.delete(f"{V1}/audit", headers=admin)
    assert wrong_method.status_code == 405


async def test_visible_as_the_webhooks_are(api: httpx.AsyncClient, token: Any) -> None:
    tenant = new_tenant()
    owner, colleague = bearer(token(tenant, "u1")), bearer(token(tenant, "u2"))
    admin = bearer(token(tenant, "boss", admin=True))
    stranger = bearer(token(new_tenant(), "boss", admin=True))
    mine = await create(api, owner)
    theirs = await create(api, colleague)

    assert [row["webhookId"] for row in await trail(api, owner)] == [mine["id"]]
    assert {row["webhookId"] for row in await trail(api, admin)} == {mine["id"], theirs["id"]}
    assert await trail(api, stranger) == []
    assert await trail(api, colleague, webhookId=mine["id"]) == []
    for caller in (colleague, stranger):
        response = await api.get(f"{V1}/{mine['id']}/audit", headers=caller)
        assert response.status_code == 404, response.text
    missing = await api.get(f"{V1}/{uuid.uuid4()}/audit", headers=admin)
    assert (
        missing.status_code == 404
        and (await api.get(f"{V1}/x/audit", headers=admin)).status_code == 404
    )

    await ok(await api.delete(f"{V1}/{mine['id']}", headers=owner), 204)
    assert [row["action"] for row in await trail(api, owner, mine["id"])] == ["delete", "create"]
    assert len(await trail(api, admin, mine["id"])) == 2
    response = await api.get(f"{V1}/{mine['id']}/audit", headers=colleague)
    assert response.status_code == 404


async def test_the_janitor_prunes_rows_past_the_retention(
    api: httpx.AsyncClient, token: Any, db: asyncpg.Connection
) -> None:
    auth = bearer(token(new_tenant(), "u1"))
    old = await create(api, auth, name="old")
    for number in range(4):
        await patch(api, auth, old["id"], name=f"old-{number}")
    recent = await create(api, auth, name="recent")
    await db.execute(
        "UPDATE audit_events SET created_at = now() - interval '91 days' WHERE webhook_id = $1",
        uuid.UUID(old["id"]),
    )
    report = PassReport()
    await prune_audit(db, datetime.now(UTC), timedelta(days=90), report, batch=2)
    assert report.audit_events_pruned == 5
    assert [row["webhookId"] for row in await trail(api, auth)] == [recent["id"]]
