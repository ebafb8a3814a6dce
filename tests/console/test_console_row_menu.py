"""Item 4: the row menu: edit in a side panel (secret replaced, never shown), enable,
disable, delete; why a webhook was disabled automatically, in words."""

import hashlib
import hmac
import uuid
from typing import Any

import asyncpg
import httpx
from console_support import (
    CREATED,
    SECRET,
    LiveTenant,
    assert_accessible,
    create_webhook,
    get_webhook,
    screenshot,
)
from playwright.async_api import Page, expect

from support import new_tenant, wait_until

NEW_SECRET = "n" * 48


def row(page: Page, webhook: dict[str, Any]) -> Any:
    return page.locator(f'#webhooks-body tr[data-id="{webhook["id"]}"]')


async def choose(page: Page, webhook: dict[str, Any], item: str) -> None:
    await page.get_by_role("button", name=f"Actions for {webhook['name']}").click()
    await page.get_by_role("menuitem", name=item).click()


async def test_edit_in_a_side_panel_replaces_the_secret_without_showing_it(
    open_console: Any,
    live: LiveTenant,
) -> None:
    path = f"/hooks/edit-{uuid.uuid4().hex}"
    webhook = await live.create(
        name="before",
        url=live.url(path),
        secret=SECRET,
        headers={"X-Team": "data"},
        encryptedHeaders={"X-Api-Key": "kept-value"},
    )
    page = await open_console(live.auth)
    await choose(page, webhook, "Edit")
    panel = page.get_by_role("dialog", name="Edit webhook")
    await expect(panel).to_be_visible()
    await expect(panel.get_by_label("Name", exact=True)).to_have_value("before")
    await expect(panel.get_by_label("Webhook URL")).to_have_value(webhook["url"])
    await expect(panel.get_by_label("Secret")).to_have_value("")
    await expect(panel).to_contain_text("A secret is set")
    assert SECRET not in await page.content() and "kept-value" not in await page.content()
    await screenshot(page, "edit-panel")
    await assert_accessible(page, "edit panel")

    await panel.get_by_label("Name", exact=True).fill("after")
    await panel.get_by_label("Secret").fill(NEW_SECRET)
    await panel.get_by_role("button", name="Save").click()
    await expect(panel).to_be_hidden()
    await expect(row(page, webhook).locator("td.name")).to_have_text("after")
    stored = (await live.get(webhook["id"])).json()
    assert stored["name"] == "after" and stored["headers"] == {"X-Team": "data"}
    assert stored["encryptedHeaders"] == ["X-Api-Key"] and stored["secretKeyAdded"]

    await live.routed({webhook["id"]})
    await live.publish(CREATED)
    (request,) = await live.receiver.wait_for(1, timeout=30, path=path)
    expected = hmac.new(NEW_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["qlik-signature"] == expected
    assert request.headers["x-api-key"] == "kept-value"


async def test_enable_and_disable_from_the_row_menu_with_the_keyboard(
    open_console: Any, api: httpx.AsyncClient, token: Any
) -> None:
    auth = token(new_tenant(), "u1")
    webhook = await create_webhook(api, auth, name="switchable")
    page = await open_console(auth)
    menu_button = page.get_by_role("button", name="Actions for switchable")
    await menu_button.focus()
    await page.keyboard.press("Enter")
    menu = page.get_by_role("menu", name="Actions for switchable")
    await expect(menu).to_be_visible()
    await expect(menu.get_by_role("menuitem")).to_have_text(
        ["Edit", "Rotate secret", "Send test event", "Disable webhook", "Audit trail", "Delete"]
    )
    await assert_accessible(page, "row menu")
    await page.keyboard.press("ArrowDown")
    await expect(menu.get_by_role("menuitem", name="Rotate secret")).to_be_focused()
    await page.keyboard.press("ArrowDown")
    await expect(menu.get_by_role("menuitem", name="Send test event")).to_be_focused()
    await page.keyboard.press("ArrowDown")
    await expect(menu.get_by_role("menuitem", name="Disable webhook")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(row(page, webhook).locator("td.state")).to_have_text("Disabled")
    assert (await get_webhook(api, auth, webhook["id"])).json()["enabled"] is False

    await choose(page, webhook, "Enable webhook")
    await expect(row(page, webhook).locator("td.state")).to_have_text("Enabled")
    assert (await get_webhook(api, auth, webhook["id"])).json()["enabled"] is True


async def test_delete_from_the_row_menu(
    open_console: Any, api: httpx.AsyncClient, token: Any
) -> None:
    auth = token(new_tenant(), "u1")
    webhook = await create_webhook(api, auth, name="doomed")
    page = await open_console(auth)
    await choose(page, webhook, "Delete")
    confirm = page.get_by_role("dialog", name="Delete webhooks")
    await expect(confirm).to_contain_text("doomed")
    await confirm.get_by_role("button", name="Delete").click()
    await expect(page.locator("#empty-state")).to_be_visible()
    assert (await get_webhook(api, auth, webhook["id"])).status_code == 404


async def test_a_webhook_disabled_automatically_says_why(
    open_console: Any,
    live: LiveTenant,
    db: asyncpg.Connection,
) -> None:
    path = f"/hooks/gone-{uuid.uuid4().hex}"
    live.receiver.respond(path, status=410)
    gone = await live.create(name="gone", url=live.url(path))
    failing = await live.create(name="failing")
    await live.routed({gone["id"]})
    await live.publish(CREATED)

    async def disabled() -> bool:
        return (await live.get(gone["id"])).json()["enabled"] is False

    await wait_until(disabled, timeout=30)
    # The dispatcher's other reason needs a day of failures: set it as the dispatcher would.
    await db.execute(
        "UPDATE webhooks SET enabled = false, disabled_reason_code = 'DELIVERY_FAILURES',"
        " disabled_reason = 'failed' WHERE id = $1",
        uuid.UUID(failing["id"]),
    )
    page = await open_console(live.auth)
    await expect(row(page, gone).locator("td.state")).to_contain_text(
        "the endpoint answered 410 Gone"
    )
    await expect(row(page, failing).locator("td.state")).to_contain_text(
        "every delivery failed for too long"
    )
