"""Item 3: the create dialog: every field, the API's errors beside their fields, the limit."""

from typing import Any

import httpx
from console_support import (
    CREATED,
    SECRET,
    USER_DELETED,
    assert_accessible,
    create_webhook,
    get_webhook,
    screenshot,
)
from playwright.async_api import Page, expect

from support import new_tenant


async def open_create(page: Page) -> Any:
    await page.get_by_role("button", name="Create new").first.click()
    dialog = page.get_by_role("dialog", name="Create webhook")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_label("Name", exact=True)).to_be_focused()
    return dialog


async def test_create_a_webhook_with_every_field(
    open_console: Any, api: httpx.AsyncClient, token: Any
) -> None:
    auth = token(new_tenant(), "u1")
    page = await open_console(auth)
    dialog = await open_create(page)

    apps = dialog.get_by_role("group", name="Apps")
    users = dialog.get_by_role("group", name="Users")
    app_types = ["created", "deleted", "data updated", "reloaded", "published", "exported"]
    for kind in app_types:
        await expect(apps.get_by_label(f"App {kind}")).to_be_visible()
    for kind in ("created", "deleted"):
        await expect(users.get_by_label(f"User {kind}")).to_be_visible()

    await dialog.get_by_label("Name", exact=True).fill("orders")
    await dialog.get_by_label("Description").fill("tells the shop")
    await dialog.get_by_label("Webhook URL").fill("https://hooks.example.com/orders")
    await dialog.get_by_label("Secret").fill(SECRET)
    await dialog.get_by_role("button", name="Add header").click()
    await dialog.get_by_label("Header name").last.fill("X-Team")
    await dialog.get_by_label("Header value").last.fill("data")
    await dialog.get_by_role("button", name="Add header").click()
    await dialog.get_by_label("Header name").last.fill("X-Api-Key")
    await dialog.get_by_label("Header value").last.fill("hidden-key")
    await dialog.get_by_label("Encrypt").last.check()
    await apps.get_by_label("App created").check()
    await users.get_by_label("User deleted").check()
    await dialog.get_by_label("Filter (optional)").fill('spaceId eq "s1"')
    await dialog.get_by_role("switch", name="Send events as CloudEvents 1.0").check()
    await screenshot(page, "create-dialog")
    await assert_accessible(page, "create dialog")
    await dialog.get_by_role("button", name="Create", exact=True).click()

    await expect(dialog).to_contain_text("Webhook orders created.")
    await dialog.get_by_role("button", name="Close").click()
    await expect(dialog).to_be_hidden()
    row = page.locator("#webhooks-body tr[data-id]")
    await expect(row).to_have_count(1)
    await expect(row.locator("td.state")).to_have_text("Enabled")
    webhook = (await get_webhook(api, auth, await row.get_attribute("data-id"))).json()
    assert webhook["name"] == "orders" and webhook["description"] == "tells the shop"
    assert webhook["url"] == "https://hooks.example.com/orders"
    assert webhook["enabled"] is True and webhook["secretKeyAdded"] is True
    assert webhook["headers"] == {"X-Team": "data"}
    assert webhook["encryptedHeaders"] == ["X-Api-Key"]
    assert webhook["eventTypes"] == [CREATED, USER_DELETED]
    assert webhook["filter"] == 'spaceId eq "s1"'
    assert webhook["enableCloudEventDelivery"] is True
    assert webhook["origin"] == "management-console"


async def field_error(page: Page, field: str) -> Any:
    return page.locator(f"#create-error-{field}")


async def test_the_api_errors_appear_next_to_their_fields(open_console: Any, token: Any) -> None:
    page = await open_console(token(new_tenant(), "u1"))
    dialog = await open_create(page)
    await dialog.get_by_label("Name", exact=True).fill("bad")
    await dialog.get_by_role("group", name="Apps").get_by_label("App created").check()
    url = dialog.get_by_label("Webhook URL")
    cases = [
        ("https://10.0.0.1/hook", "IP"),
        ("http://hooks.example.com/hook", "https"),
        ("https://localhost/hook", "fully qualified"),
    ]
    for value, says in cases:
        await url.fill(value)
        await dialog.get_by_role("button", name="Create", exact=True).click()
        error = page.locator("#create-error-url")
        await expect(error).to_be_visible()
        await expect(error).to_contain_text(says)
        await expect(url).to_have_attribute("aria-invalid", "true")
        await expect(url).to_have_accessible_description(
            "HTTPS, with a fully qualified domain name (not an IP address). "
            + await error.inner_text()
        )
    await assert_accessible(page, "create dialog with errors")

    await url.fill("https://hooks.example.com/hook")
    await dialog.get_by_label("Secret").fill("too-short")
    await dialog.get_by_role("button", name="Create", exact=True).click()
    await expect(page.locator("#create-error-secret")).to_contain_text("secret")
    await expect(page.locator("#create-error-url")).to_be_hidden()
    await expect(dialog.get_by_label("Secret")).to_be_focused()
    await expect(dialog).to_be_visible()


async def test_the_webhook_limit_is_shown_plainly(
    open_console: Any, api: httpx.AsyncClient, token: Any, settings_env: dict[str, str]
) -> None:
    auth = token(new_tenant(), "u1")
    limit = int(settings_env["HOOKSTREAM_MAX_WEBHOOKS_PER_TENANT"])
    for number in range(limit):
        await create_webhook(api, auth, name=f"w{number}")
    page = await open_console(auth)
    dialog = await open_create(page)
    await dialog.get_by_label("Name", exact=True).fill("one too many")
    await dialog.get_by_label("Webhook URL").fill("https://hooks.example.com/hook")
    await dialog.get_by_role("group", name="Apps").get_by_label("App created").check()
    await dialog.get_by_role("button", name="Create", exact=True).click()
    alert = dialog.get_by_role("alert").filter(has_text="webhooks")
    await expect(alert).to_have_text(
        "The tenant already has as many webhooks as it may; delete one first."
    )


async def test_the_page_works_from_the_keyboard(
    open_console: Any, api: httpx.AsyncClient, token: Any
) -> None:
    auth = token(new_tenant(), "u1")
    await create_webhook(api, auth, name="keys")
    page = await open_console(auth)
    await page.get_by_role("button", name="Create new").first.focus()
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Create webhook")
    await expect(dialog.get_by_label("Name", exact=True)).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()

    await page.get_by_role("button", name="Name", exact=True).focus()
    await page.keyboard.press("Enter")
    await expect(page.locator('#webhooks-head th[aria-sort="ascending"]')).to_have_count(1)
    await expect(page.get_by_role("button", name="Name", exact=True)).to_be_focused()

    expander = page.get_by_role("button", name="Delivery history of keys")
    await expander.focus()
    await page.keyboard.press("Enter")
    await expect(expander).to_have_attribute("aria-expanded", "true")
    await expect(page.get_by_role("region", name="Delivery history of keys")).to_contain_text(
        "No deliveries yet."
    )
    await expect(expander).to_be_focused()
