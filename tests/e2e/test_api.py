"""The webhooks management API, operation by operation, on the real services and Postgres."""

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from hookstream_client import AsyncClient
from support import bearer, new_tenant

V1 = "/api/v1/webhooks"
CORE = "/api/core/webhooks"
SECRET = "s" * 40
URL = "https://hooks.example.com/qlik"


def body(**fields: Any) -> dict[str, Any]:
    return {"name": "hook", "url": URL, "eventTypes": ["com.qlik.v1.app.created"], **fields}


async def create(api: httpx.AsyncClient, token: str, **fields: Any) -> dict[str, Any]:
    """Create with the client; the tests here check the API's JSON form of what it returns."""
    async with AsyncClient(str(api.base_url), token) as client:
        return (await client.create_webhook(body(**fields))).to_json()


def assert_error(response: httpx.Response, status: int, detail_part: str = "") -> None:
    assert response.status_code == status, response.text
    envelope = response.json()
    assert set(envelope) == {"errors", "traceId"}
    [error] = envelope["errors"][:1]
    assert set(error) == {"code", "title", "detail"}
    assert detail_part in error["detail"], error["detail"]


async def test_create_returns_every_field_with_defaults(api: httpx.AsyncClient, token: Any) -> None:
    tenant = new_tenant()
    webhook = await create(
        api,
        token(tenant, "u1"),
        secret=SECRET,
        headers={"X-Team": "data"},
        encryptedHeaders={"X-Api-Key": "hidden-value"},
    )
    assert webhook["level"] == "user" and webhook["ownerId"] == "u1"
    assert webhook["enabled"] is True and webhook["origin"] == "api"
    assert webhook["secretKeyAdded"] is True and "secret" not in webhook
    assert webhook["encryptedHeaders"] == ["X-Api-Key"]
    assert webhook["headers"] == {"X-Team": "data"}
    assert webhook["createdByUserId"] == webhook["updatedByUserId"] == "u1"
    assert webhook["disabledReason"] is None and webhook["disabledReasonCode"] is None
    assert "hidden-value" not in str(webhook)
    admin_hook = await create(api, token(tenant, "boss", admin=True), origin="automations")
    assert admin_hook["level"] == "tenant" and admin_hook["origin"] == "automations"


async def test_both_prefixes_serve_the_same_webhooks(api: httpx.AsyncClient, token: Any) -> None:
    auth = token(new_tenant(), "u1")
    webhook = await create(api, auth)
    for prefix in (V1, CORE):
        response = await api.get(f"{prefix}/{webhook['id']}", headers=bearer(auth))
        assert response.status_code == 200 and response.json() == webhook


@pytest.mark.parametrize(
    ("fields", "status", "detail"),
    [
        ({"url": "http://hooks.example.com/"}, 400, "url"),
        ({"url": "https://10.1.2.3/x"}, 400, "IP address"),
        ({"url": "https://0x7f000001/x"}, 400, "IP address"),
        ({"url": "https://[::ffff:127.0.0.1]/x"}, 400, "IP address"),
        ({"url": "https://me:pw@hooks.example.com/x"}, 400, "user information"),
        ({"url": "https://intranet/x"}, 400, "fully qualified"),
        ({"url": "https://" + "a" * 64 + ".example.com/x"}, 400, "label over 63"),
        ({"checkCertificateRevocation": True}, 400, "checkCertificateRevocation"),
        ({"secret": "short"}, 400, "secret"),
        ({"secret": "x" * 65}, 400, "secret"),
        ({"eventTypes": []}, 400, "eventTypes"),
        ({"eventTypes": ["com.qlik.v1.nope"]}, 400, "unknown event type"),
        ({"headers": {"Content-Type": "text/plain"}}, 400, "set by the service"),
        ({"headers": {"X-A": "1", "x-a": "2"}}, 400, "more than once"),
        ({"encryptedHeaders": {"X-Big": "v" * 2100}}, 400, "encryptedHeaders"),
        ({"headers": {"X-A": "1"}, "encryptedHeaders": {"x-a": "2"}}, 400, "also in headers"),
        ({"filter": 'spaceId eq "a'}, 400, "position"),
        ({"filter": 'data.status eq "ok"'}, 400, "data.status"),
        ({"name": ""}, 400, "name"),
        ({"id": "mine"}, 409, "id"),
        ({"createdAt": "2020-01-01T00:00:00Z"}, 409, "createdAt"),
        ({"level": "tenant"}, 403, "TenantAdmin"),
        ({"ownerId": "someone-else"}, 403, "ownerId"),
        ({"unknownField": 1}, 400, "unknownField"),
        # Bounded fields (a TenantAdmin's long ownerId once outgrew the broker's message limit)
        ({"name": "n" * 257}, 400, "name"),
        ({"description": "d" * 4097}, 400, "description"),
        ({"url": "https://hooks.example.com/" + "p" * 2048}, 400, "url"),
        ({"eventTypes": ["com.qlik.v1.app.created"] * 33}, 400, "eventTypes"),
        ({"eventTypes": ["x" * 129]}, 400, "eventTypes"),
        ({"filter": 'id eq "' + "x" * 1020 + '"'}, 400, "filter"),
        ({"secret": "s" * 10_000}, 400, "secret"),
        ({"headers": {"X-" + "h" * 255: "1"}}, 400, "headers"),
        ({"headers": {f"X-{i}": "1" for i in range(65)}}, 400, "headers"),
        # Characters Postgres or HTTP refuse: a 400 naming the field, never a 500
        ({"name": "nul\u0000byte"}, 400, "name"),
        ({"description": "nul\u0000byte"}, 400, "description"),
        ({"url": "https://hooks.example.com/\u0000"}, 400, "url"),
        ({"filter": 'id eq "\u0000"'}, 400, "filter"),
        ({"headers": {"X-Nul": "\u0000"}}, 400, "headers"),
        ({"encryptedHeaders": {"X-Nul\u0000": "1"}}, 400, "encryptedHeaders"),
    ],
)
async def test_create_validation(
    api: httpx.AsyncClient, token: Any, fields: dict[str, Any], status: int, detail: str
) -> None:
    response = await api.post(V1, json=body(**fields), headers=bearer(token(new_tenant(), "u1")))
    assert_error(response, status, detail)


async def test_owner_id_is_bounded_for_admins_too(api: httpx.AsyncClient, token: Any) -> None:
    admin = token(new_tenant(), "boss", admin=True)
    webhook = await create(api, admin, ownerId="o" * 256)
    assert webhook["ownerId"] == "o" * 256
    response = await api.post(V1, json=body(ownerId="o" * 257), headers=bearer(admin))
    assert_error(response, 400, "ownerId")
    patch = [{"op": "replace", "path": "/ownerId", "value": "o" * 300_000}]
    response = await api.patch(f"{V1}/{webhook['id']}", json=patch, headers=bearer(admin))
    assert_error(response, 400, "ownerId")
    long_user = token(new_tenant(), "u" * 257)  # the default owner is the caller
    assert_error(await api.post(V1, json=body(), headers=bearer(long_user)), 400, "ownerId")


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"name": "n" * 257}, "name"),
        ({"url": "u" * 513}, "url"),
        ({"ownerId": "o" * 257}, "ownerId"),
        ({"createdByUserId": "c" * 257}, "createdByUserId"),
        ({"eventTypes": "e" * 513}, "eventTypes"),
        ({"origins": "api," * 20}, "origins"),
        ({"sort": "+" * 17}, "sort"),
        ({"next": "c" * 2817}, "next"),
        ({"prev": "c" * 2817}, "prev"),
    ],
)
async def test_list_parameters_are_bounded(
    api: httpx.AsyncClient, token: Any, params: dict[str, str], detail: str
) -> None:
    response = await api.get(V1, params=params, headers=bearer(token(new_tenant(), "u1")))
    assert_error(response, 400, detail)


async def test_data_status_filter_needs_reload_finished_alone(
    api: httpx.AsyncClient, token: Any
) -> None:
    webhook = await create(
        api,
        token(new_tenant(), "u1"),
        eventTypes=["com.qlik.v1.app.reload.finished"],
        filter='data.status eq "error" and (spaceId eq "s1" or spaceId eq "s2")',
    )
    assert webhook["filter"].startswith("data.status")


async def test_malformed_json_and_wrong_types_are_400(api: httpx.AsyncClient, token: Any) -> None:
    auth = bearer(token(new_tenant(), "u1"))
    response = await api.post(
        V1, content=b"{bad", headers={**auth, "Content-Type": "application/json"}
    )
    assert_error(response, 400)
    assert_error(await api.post(V1, json=body(enabled="maybe"), headers=auth), 400, "enabled")
    assert_error(await api.post(V1, json=[1, 2], headers=auth), 400)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-jwt", "Basic dXNlcjpwdw==", "Bearer eyJhbGciOiJub25lIn0.e30."],
)
async def test_missing_or_bad_tokens_are_401(
    api: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    assert_error(await api.get(V1, headers=headers), 401)


async def test_token_signed_with_another_key_is_401(api: httpx.AsyncClient) -> None:
    from hookstream_dev.tokens import mint_token

    forged = mint_token("some-other-key-of-enough-length!!", new_tenant(), "u1", ["TenantAdmin"])
    assert_error(await api.get(V1, headers=bearer(forged)), 401, "not valid")


async def test_tenants_never_see_each_other(api: httpx.AsyncClient, token: Any) -> None:
    mine, theirs = token(new_tenant(), "u1", admin=True), token(new_tenant(), "u1", admin=True)
    webhook = await create(api, mine)
    path = f"{V1}/{webhook['id']}"
    assert_error(await api.get(path, headers=bearer(theirs)), 404)
    assert_error(await api.delete(path, headers=bearer(theirs)), 404)
    assert_error(await api.put(path, json=body(), headers=bearer(theirs)), 404)
    patch = [{"op": "replace", "path": "/name", "value": "x"}]
    assert_error(await api.patch(path, json=patch, headers=bearer(theirs)), 404)
    assert_error(await api.get(f"{path}/deliveries", headers=bearer(theirs)), 404)
    listed = (await api.get(V1, headers=bearer(theirs))).json()["data"]
    assert webhook["id"] not in {w["id"] for w in listed}
    assert (await api.get(path, headers=bearer(mine))).status_code == 200


async def test_users_see_their_own_admins_see_all(api: httpx.AsyncClient, token: Any) -> None:
    tenant = new_tenant()
    alice, bob, admin = token(tenant, "alice"), token(tenant, "bob"), token(tenant, "a", admin=True)
    alices = await create(api, alice)
    bobs = await create(api, bob)
    assert_error(await api.get(f"{V1}/{alices['id']}", headers=bearer(bob)), 404)
    ids = {w["id"] for w in (await api.get(V1, headers=bearer(bob))).json()["data"]}
    assert ids == {bobs["id"]}
    ids = {w["id"] for w in (await api.get(V1, headers=bearer(admin))).json()["data"]}
    assert ids == {alices["id"], bobs["id"]}
    for_bob = await create(api, admin, ownerId="bob", level="user")
    assert for_bob["ownerId"] == "bob"
    assert (await api.get(f"{V1}/{for_bob['id']}", headers=bearer(bob))).status_code == 200


async def test_list_filters(api: httpx.AsyncClient, token: Any) -> None:
    tenant = new_tenant()
    admin = token(tenant, "boss", admin=True)
    a = await create(api, admin, name="Reload Alerts", url="https://a.example.com/Hook")
    b = await create(
        api,
        admin,
        name="exports",
        url="https://b.example.com/x",
        enabled=False,
        origin="automations",
        eventTypes=["com.qlik.v1.app.created", "com.qlik.v1.app.exported"],
    )
    c = await create(api, token(tenant, "u2"), name="user hook", url="https://c.example.com/y")

    async def ids(**params: Any) -> set[str]:
        response = await api.get(V1, params=params, headers=bearer(admin))
        assert response.status_code == 200, response.text
        return {w["id"] for w in response.json()["data"]}

    assert await ids(name="reload") == {a["id"]}
    assert await ids(url="A.EXAMPLE") == {a["id"]}
    assert await ids(enabled="false") == {b["id"]}
    assert await ids(eventTypes="com.qlik.v1.app.exported,com.qlik.v1.app.created") == {b["id"]}
    assert await ids(eventTypes="com.qlik.v1.app.created") == {a["id"], b["id"], c["id"]}
    assert await ids(origins="automations,management-console") == {b["id"]}
    assert await ids(level="user") == {c["id"]}
    assert await ids(ownerId="u2") == {c["id"]}
    assert await ids(createdByUserId="boss") == {a["id"], b["id"]}
    assert await ids(updatedByUserId="u2") == {c["id"]}
    assert_error(await api.get(V1, params={"origins": "elsewhere"}, headers=bearer(admin)), 400)
    assert_error(await api.get(V1, params={"limit": 0}, headers=bearer(admin)), 400, "limit")
    assert_error(await api.get(V1, params={"limit": 101}, headers=bearer(admin)), 400, "limit")
    assert_error(await api.get(V1, params={"sort": "secret"}, headers=bearer(admin)), 400, "sort")
    assert_error(await api.get(V1, params={"next": "garbage"}, headers=bearer(admin)), 400)


@pytest.mark.parametrize("sort", ["-createdAt", "+name", "name", "-url", "updatedAt"])
async def test_paging_is_stable_under_concurrent_inserts(
    api: httpx.AsyncClient, token: Any, sort: str
) -> None:
    admin = token(new_tenant(), "boss", admin=True)
    original = [
        (await create(api, admin, name=f"hook-{i:02d}", url=f"https://h{i:02d}.example.com/"))["id"]
        for i in range(12)
    ]
    seen: list[str] = []
    pages: list[dict[str, Any]] = []
    url: str | None = str(httpx.URL(V1, params={"limit": 5, "sort": sort}))
    while url:
        response = await api.get(url, headers=bearer(admin))
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        seen += [w["id"] for w in page["data"]]
        if len(pages) == 1:
            for i in range(3):  # new rows while paging: before and after the cursor
                await create(api, admin, name=f"hook-{i:02d}a", url=f"https://n{i}.example.com/")
        url = page["links"].get("next", {}).get("href")
    assert len(seen) == len(set(seen)), "a row appeared twice"
    assert set(original) <= set(seen), "a row was skipped"
    assert "prev" not in pages[0]["links"]
    # `prev` of page 2 is the five rows right before it in the current order, new ones included.
    everything = await api.get(V1, params={"limit": 100, "sort": sort}, headers=bearer(admin))
    order = [w["id"] for w in everything.json()["data"]]
    start = order.index(pages[1]["data"][0]["id"])
    back = await api.get(pages[1]["links"]["prev"]["href"], headers=bearer(admin))
    assert [w["id"] for w in back.json()["data"]] == order[max(0, start - 5) : start]


async def test_patch_changes_fields_and_validates_the_result(
    api: httpx.AsyncClient, token: Any
) -> None:
    auth = token(new_tenant(), "u1")
    webhook = await create(api, auth, secret=SECRET, encryptedHeaders={"X-Key": "v1"})
    path = f"{V1}/{webhook['id']}"
    operations = [
        {"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "replace", "path": "/enabled", "value": False},
        {"op": "add", "path": "/headers/X-Extra", "value": "1"},
        {"op": "add", "path": "/encryptedHeaders/X-Other", "value": "v2"},
        {"op": "remove", "path": "/secret"},
    ]
    response = await api.patch(path, json=operations, headers=bearer(auth))
    assert response.status_code == 204, response.text
    patched = (await api.get(path, headers=bearer(auth))).json()
    assert patched["name"] == "renamed" and patched["enabled"] is False
    assert patched["headers"] == {"X-Extra": "1"}
    assert patched["encryptedHeaders"] == ["X-Key", "X-Other"]
    assert patched["secretKeyAdded"] is False
    assert patched["updatedAt"] > webhook["updatedAt"]
    for operations, status in [
        ([{"op": "replace", "path": "/id", "value": "x"}], 409),
        ([{"op": "replace", "path": "/createdAt", "value": "x"}], 409),
        ([{"op": "replace", "path": "/origin", "value": "api"}], 409),
        ([{"op": "replace", "path": "/url", "value": "http://x.example.com"}], 400),
        ([{"op": "replace", "path": "/secret", "value": "short"}], 400),
        ([{"op": "replace", "path": "/headers/X-Missing", "value": "1"}], 400),
        ([{"op": "remove", "path": "/nothing"}], 400),
        ([{"op": "move", "path": "/name", "from": "/x"}], 400),
        ([], 400),
    ]:
        response = await api.patch(path, json=operations, headers=bearer(auth))
        assert_error(response, status)
    assert (await api.get(path, headers=bearer(auth))).json() == patched
    set_secret = [{"op": "replace", "path": "/secret", "value": SECRET}]
    assert (await api.patch(path, json=set_secret, headers=bearer(auth))).status_code == 204
    assert (await api.get(path, headers=bearer(auth))).json()["secretKeyAdded"] is True


async def test_put_replaces_everything_and_omitted_means_default(
    api: httpx.AsyncClient, token: Any
) -> None:
    auth = token(new_tenant(), "u1")
    webhook = await create(
        api, auth, secret=SECRET, headers={"X-A": "1"}, description="first", filter='id eq "a"'
    )
    path = f"{V1}/{webhook['id']}"
    response = await api.put(path, json=body(name="second"), headers=bearer(auth))
    assert response.status_code == 200, response.text
    replaced = response.json()
    assert replaced["name"] == "second" and replaced["description"] == ""
    assert replaced["headers"] == {} and replaced["filter"] is None
    assert replaced["secretKeyAdded"] is False and replaced["enabled"] is False
    assert replaced["createdAt"] == webhook["createdAt"] and replaced["origin"] == "api"
    assert_error(await api.put(path, json=body(origin="api"), headers=bearer(auth)), 409)
    assert_error(
        await api.put(path, json=body(url="ftp://x.example.com"), headers=bearer(auth)), 400
    )


async def test_enabling_clears_the_disabled_reason(
    api: httpx.AsyncClient, token: Any, database_url: str
) -> None:
    import asyncpg

    auth = token(new_tenant(), "u1")
    webhook = await create(api, auth)
    connection = await asyncpg.connect(database_url)
    await connection.execute(
        "UPDATE webhooks SET enabled = false, disabled_reason = 'gone',"
        " disabled_reason_code = 'ENDPOINT_GONE' WHERE id = $1",
        uuid.UUID(webhook["id"]),
    )
    await connection.close()
    path = f"{V1}/{webhook['id']}"
    disabled = (await api.get(path, headers=bearer(auth))).json()
    assert disabled["disabledReasonCode"] == "ENDPOINT_GONE"
    enable = [{"op": "replace", "path": "/enabled", "value": True}]
    assert (await api.patch(path, json=enable, headers=bearer(auth))).status_code == 204
    enabled = (await api.get(path, headers=bearer(auth))).json()
    assert enabled["enabled"] is True
    assert enabled["disabledReason"] is None and enabled["disabledReasonCode"] is None


async def test_delete_then_404(api: httpx.AsyncClient, token: Any) -> None:
    auth = token(new_tenant(), "u1")
    webhook = await create(api, auth)
    path = f"{V1}/{webhook['id']}"
    assert (await api.delete(path, headers=bearer(auth))).status_code == 204
    assert_error(await api.get(path, headers=bearer(auth)), 404)
    assert_error(await api.delete(path, headers=bearer(auth)), 404)
    assert_error(await api.get(f"{V1}/not-a-uuid", headers=bearer(auth)), 404)


async def test_tenant_limit_is_a_403_with_its_own_code(api: httpx.AsyncClient, token: Any) -> None:
    auth = token(new_tenant(), "u1")
    await asyncio.gather(*(create(api, auth) for _ in range(30)))
    response = await api.post(V1, json=body(), headers=bearer(auth))
    assert_error(response, 403, "30 webhooks")
    assert response.json()["errors"][0]["code"] == "HOOKSTREAM-LIMIT"


async def test_event_types_catalogue(api: httpx.AsyncClient, token: Any) -> None:
    response = await api.get(f"{V1}/event-types", headers=bearer(token(new_tenant(), "u1")))
    assert response.status_code == 200
    types = {t["name"]: t for t in response.json()["data"]}
    assert "com.qlik.v1.app.reload.finished" in types and "com.qlik.v1.user.deleted" in types
    assert set(types["com.qlik.v1.app.created"]) == {
        "name",
        "title",
        "description",
        "levels",
        "category",
    }


@pytest.mark.parametrize("prefix", [V1, CORE])
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "POST"])
async def test_other_methods_on_event_types_are_405(
    api: httpx.AsyncClient, token: Any, prefix: str, method: str
) -> None:
    """Not the `/{id}` routes' 404: `event-types` is a resource of its own, read-only."""
    auth = bearer(token(new_tenant(), "u1", admin=True))
    response = await api.request(method, f"{prefix}/event-types", headers=auth, json=[])
    assert_error(response, 405)
    assert response.headers["Allow"] == "GET"


async def test_product_info_for_the_qlik_client(api: httpx.AsyncClient) -> None:
    response = await api.get("/resources/autogenerated/product-info.json")
    assert response.status_code == 200
    assert response.json()["composition"]["provider"] == "hookstream"
