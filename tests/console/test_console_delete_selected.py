"""Item 5: select rows, Delete at the top right, confirm in a dialog (or cancel)."""

from typing import Any

import httpx
from console_support import V1, assert_accessible, create_webhook, row_names
from playwright.async_api import expect

from support import bearer, new_tenant


async def test_delete_the_selected_webhooks_after_confirming(
    open_console: Any, api: httpx.AsyncClient, token: Any
) -> None:
    auth = token(new_tenant(), "u1")
    for name in ("one", "two", "three"):
        await create_webhook(api, auth, name=name)
    page = await open_console(auth)
    delete = page.locator("#delete-selected")
    await expect(delete).to_be_disabled()
    await page.get_by_label("Select one").check()
    await page.get_by_label("Select three").check()
    await expect(delete).to_have_text("Delete (2)")

    await delete.click()
    confirm = page.get_by_role("dialog", name="Delete webhooks")
    await expect(confirm.locator("li")).to_have_text(["three", "one"])
    await assert_accessible(page, "delete confirmation")
    await confirm.get_by_role("button", name="Cancel").click()
    await expect(confirm).to_be_hidden()
    assert len((await api.get(V1, headers=bearer(auth))).json()["data"]) == 3

    await delete.click()
    await confirm.get_by_role("button", name="Delete").click()
    await expect(confirm).to_be_hidden()
    await expect(page.locator("#webhooks-body tr[data-id]")).to_have_count(1)
    assert await row_names(page) == ["two"]
    remaining = (await api.get(V1, headers=bearer(auth))).json()["data"]
    assert [w["name"] for w in remaining] == ["two"]
    await expect(delete).to_be_disabled()


async def test_select_all_selects_the_page(
    open_console: Any, api: httpx.AsyncClient, token: Any
) -> None:
    auth = token(new_tenant(), "u1")
    for name in ("a1", "a2"):
        await create_webhook(api, auth, name=name)
    page = await open_console(auth)
    await page.get_by_label("Select all webhooks on this page").check()
    await page.locator("#delete-selected").click()
    confirm = page.get_by_role("dialog", name="Delete webhooks")
    await confirm.get_by_role("button", name="Delete").click()
    await expect(page.locator("#empty-state")).to_be_visible()
    assert (await api.get(V1, headers=bearer(auth))).json()["data"] == []
