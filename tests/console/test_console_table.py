"""Item 2: the webhooks table: every column sorts and filters on the server, paging, empty."""

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from console_support import (
    CREATED,
    DELETED,
    USER_DELETED,
    V1,
    assert_accessible,
    create_webhook,
    row_names,
    screenshot,
)
from playwright.async_api import Page, Request, expect

from support import bearer, new_tenant

COLUMNS = {
    # header: the API's sort field
    "Name": "name",
    "URL": "url",
    "Event types": "eventTypes",
    "Status": "enabled",
    "Level / owner": "level",
    "Updated": "updatedAt",
}


@pytest.fixture
async def tenant_with_webhooks(api: httpx.AsyncClient, token: Any) -> tuple[str, str]:
    """Four webhooks that differ in every column; the admin's token."""
    tenant = new_tenant()
    admin = token(tenant, "admin", admin=True)
    await create_webhook(
        api,
        admin,
        name="kilo",
        url="https://b.example.com/k",
        eventTypes=[USER_DELETED],
        level="tenant",
    )
    await create_webhook(
        api,
        admin,
        name="alfa",
        url="https://d.example.com/a",
        eventTypes=[DELETED],
        level="user",
        ownerId="bob-the-owner",
    )
    await create_webhook(
        api,
        admin,
        name="Zulu",
        url="https://a.example.com/z",
        eventTypes=[CREATED],
        enabled=False,
        level="user",
    )
    mike = await create_webhook(
        api, admin, name="mike", url="https://c.example.com/m", eventTypes=[CREATED, DELETED]
    )
    touched = await api.patch(
        f"{V1}/{mike['id']}",
        json=[{"op": "replace", "path": "/description", "value": "touched last"}],
        headers=bearer(admin),
    )
    assert touched.status_code == 204
    return tenant, admin


async def api_names(api: httpx.AsyncClient, admin: str, **params: str) -> list[str]:
    response = await api.get(V1, params=params, headers=bearer(admin))
    assert response.status_code == 200, response.text
    return [w["name"] for w in response.json()["data"]]


def record_list_requests(page: Page) -> list[dict[str, list[str]]]:
    """The query of every list request the page makes to the API."""
    seen: list[dict[str, list[str]]] = []

    def on_request(request: Request) -> None:
        url = urlsplit(request.url)
        if url.path == V1:
            seen.append(parse_qs(url.query))

    page.on("request", on_request)
    return seen


async def test_every_column_sorts_both_ways_on_the_server(
    open_console: Any, api: httpx.AsyncClient, tenant_with_webhooks: tuple[str, str]
) -> None:
    _, admin = tenant_with_webhooks
    page = await open_console(admin)
    await expect(page.locator("#webhooks-body tr[data-id]")).to_have_count(4)
    await screenshot(page, "table")
    await assert_accessible(page, "webhooks table")
    requests = record_list_requests(page)
    for header, field in COLUMNS.items():
        button = page.locator("#webhooks-head").get_by_role("button", name=header, exact=True)
        cell = page.locator(f'#webhooks-head th:has(button[data-sort="{field}"])')
        ascending = await api_names(api, admin, sort=field)
        descending = await api_names(api, admin, sort=f"-{field}")
        assert ascending != descending, field

        await button.click()
        await expect(cell).to_have_attribute("aria-sort", "ascending")
        await expect(page.locator("#webhooks-body td.name")).to_have_text(ascending)
        assert requests[-1]["sort"] == [field] and requests[-1]["limit"] == ["20"]

        await page.locator("#webhooks-head").get_by_role("button", name=header, exact=True).click()
        await expect(cell).to_have_attribute("aria-sort", "descending")
        await expect(page.locator("#webhooks-body td.name")).to_have_text(descending)
        assert requests[-1]["sort"] == [f"-{field}"]
    assert await row_names(page) == await api_names(api, admin, sort="-updatedAt")


async def apply_filter(page: Page, header: str, **fields: str) -> None:
    """Open a column's filter with its icon, fill it by labels, apply."""
    await page.get_by_role("button", name=f"Filter: {header}").click()
    popover = page.get_by_role("group", name=f"Filter: {header}")
    for label, value in fields.items():
        control = popover.get_by_label(label.replace("_", " "), exact=True)
        if await control.evaluate("e => e.tagName") == "SELECT":
            await control.select_option(label=value)
        else:
            await control.fill(value)
    await popover.get_by_role("button", name="Apply").click()


async def test_every_column_filters_on_whole_or_partial_values(
    open_console: Any, tenant_with_webhooks: tuple[str, str]
) -> None:
    _, admin = tenant_with_webhooks
    page = await open_console(admin)
    requests = record_list_requests(page)
    clear_all = page.get_by_role("button", name="Clear all filters")
    cases = [
        ("Name", {"Name_contains": "LF"}, {"name": ["LF"]}, ["alfa"]),
        ("Name", {"Name_contains": "zulu"}, {"name": ["zulu"]}, ["Zulu"]),
        ("URL", {"URL_contains": "c.example"}, {"url": ["c.example"]}, ["mike"]),
        (
            "Event types",
            {"Event_types_contains": "user.del"},
            {"eventTypesContains": ["user.del"]},
            ["kilo"],
        ),
        (
            "Event types",
            {"Event_types_contains": "com.qlik.v1.app.deleted"},
            {"eventTypesContains": ["com.qlik.v1.app.deleted"]},
            ["mike", "alfa"],
        ),
        ("Status", {"Status": "Disabled"}, {"enabled": ["false"]}, ["Zulu"]),
        ("Level / owner", {"Level": "Tenant"}, {"level": ["tenant"]}, ["mike", "kilo"]),
        (
            "Level / owner",
            {"Owner_contains": "BOB"},
            {"ownerIdContains": ["BOB"]},
            ["alfa"],
        ),
    ]
    for header, fields, params, names in cases:
        await apply_filter(page, header, **fields)
        await expect(page.locator("#webhooks-body td.name")).to_have_text(names)
        assert params.items() <= requests[-1].items(), (header, requests[-1])
        filter_button = page.get_by_role("button", name=f"Filter: {header}")
        await expect(filter_button).to_have_attribute("aria-pressed", "true")
        await clear_all.click()
        await expect(page.locator("#webhooks-body tr[data-id]")).to_have_count(4)

    today = await page.evaluate("new Date().toLocaleDateString('en-CA')")
    await apply_filter(page, "Updated", Updated_on=today)
    await expect(page.locator("#webhooks-body tr[data-id]")).to_have_count(4)
    assert {"updatedSince", "updatedUntil"} <= requests[-1].keys()
    await apply_filter(page, "Updated", Updated_on="2020-01-01")
    await expect(page.locator("#no-matches")).to_be_visible()
    await expect(page.locator("#webhooks-body tr[data-id]")).to_have_count(0)

    await page.get_by_role("button", name="Filter: Name").click()
    await assert_accessible(page, "filter popover")
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("group", name="Filter: Name")).to_be_hidden()
    await expect(page.get_by_role("button", name="Filter: Name")).to_be_focused()


async def test_paging_follows_the_api_links(
    open_console: Any, api: httpx.AsyncClient, token: Any
) -> None:
    auth = token(new_tenant(), "u1")
    for number in range(23):
        await create_webhook(api, auth, name=f"page-{number:02d}")
    page = await open_console(auth)
    requests = record_list_requests(page)
    rows = page.locator("#webhooks-body tr[data-id]")
    await expect(rows).to_have_count(20)
    first_page = await row_names(page)
    assert first_page == [f"page-{n:02d}" for n in range(22, 2, -1)]  # newest first

    await page.get_by_role("button", name="Next").click()
    await expect(rows).to_have_count(3)
    assert await row_names(page) == ["page-02", "page-01", "page-00"]
    assert "next" in requests[-1]
    await expect(page.get_by_role("button", name="Next")).to_be_disabled()

    await page.get_by_role("button", name="Previous").click()
    await expect(rows).to_have_count(20)
    assert "prev" in requests[-1]
    assert await row_names(page) == first_page


async def test_an_empty_tenant_sees_what_webhooks_are_and_create(
    open_console: Any, token: Any
) -> None:
    page = await open_console(token(new_tenant(), "u1"))
    empty = page.locator("#empty-state")
    await expect(empty).to_be_visible()
    await expect(empty).to_contain_text("signed HTTPS request")
    await expect(page.locator("#webhooks-table")).to_be_hidden()
    await assert_accessible(page, "empty state")
    await empty.get_by_role("button", name="Create new").click()
    await expect(page.get_by_role("dialog", name="Create webhook")).to_be_visible()
