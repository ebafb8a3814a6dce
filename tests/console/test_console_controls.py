"""Issue 14: the rate limit and rotation grace in the edit panel, and the Rotate action, which
shows until when the previous secret is accepted and never a secret."""

from typing import Any

import httpx
from console_support import SECRET, assert_accessible, create_webhook, get_webhook
from playwright.async_api import Page, expect

from support import new_tenant

NEW_SECRET, NEWER_SECRET = "n" * 48, "w" * 40


async def edit(page: Page, name: str) -> Any:
    await page.get_by_role("button", name=f"Actions for {name}").click()
    await page.get_by_role("menuitem", name="Edit").click()
    panel = page.get_by_role("dialog", name="Edit webhook")
    await expect(panel).to_be_visible()
    return panel


async def test_rate_limit_saved_shown_refused_and_cleared(
    open_console: Any, api: httpx.AsyncClient, token: Any
) -> None:
    auth = token(new_tenant(), "u1")
    webhook = await create_webhook(api, auth, name="limited")
    page = await open_console(auth)
    panel = await edit(page, "limited")
    await panel.get_by_label("Deliveries per second").fill("0")
    await panel.get_by_role("button", name="Save").click()
    error = panel.locator("#edit-error-rateLimit")
    await expect(error).to_have_text(
        "The rate limit needs deliveries per second above 0 and at most 10,000, and a burst"
        " from 1 to 10,000, or neither."
    )
    await expect(panel.get_by_label("Deliveries per second")).to_have_attribute(
        "aria-invalid", "true"
    )
    await assert_accessible(page, "edit panel with a rate limit error")

    await panel.get_by_label("Deliveries per second").fill("2.5")
    await panel.get_by_label("Burst").fill("4")
    await panel.get_by_label("Rotation grace period (seconds)").fill("3600")
    await panel.get_by_role("button", name="Save").click()
    await expect(panel).to_be_hidden()
    stored = (await get_webhook(api, auth, webhook["id"])).json()
    assert stored["rateLimit"] == {"perSecond": 2.5, "burst": 4}
    assert stored["secretRotationGraceSeconds"] == 3600

    panel = await edit(page, "limited")
    await expect(panel.get_by_label("Deliveries per second")).to_have_value("2.5")
    await expect(panel.get_by_label("Burst")).to_have_value("4")
    await expect(panel.get_by_label("Rotation grace period (seconds)")).to_have_value("3600")
    await panel.get_by_role("button", name="No limit").click()
    await panel.get_by_role("button", name="Save").click()
    await expect(panel).to_be_hidden()
    assert (await get_webhook(api, auth, webhook["id"])).json()["rateLimit"] is None


async def test_rotate_shows_the_expiry_never_the_secret_and_ends_the_window(
    open_console: Any, api: httpx.AsyncClient, token: Any
) -> None:
    auth = token(new_tenant(), "u1")
    webhook = await create_webhook(
        api, auth, name="rotated", secret=SECRET, secretRotationGraceSeconds=3600
    )
    page = await open_console(auth)
    await page.get_by_role("button", name="Actions for rotated").click()
    await page.get_by_role("menuitem", name="Rotate secret").click()
    dialog = page.get_by_role("dialog", name="Rotate secret")
    await expect(dialog).to_contain_text("for 1 hour")
    await dialog.get_by_label("New secret").fill("too-short")
    await dialog.get_by_role("button", name="Rotate").click()
    await expect(dialog.locator("#rotate-error-secret")).to_contain_text("secret")
    await dialog.get_by_label("New secret").fill(NEW_SECRET)
    await dialog.get_by_role("button", name="Rotate").click()
    await expect(dialog.locator("#rotate-result")).to_contain_text("still accepted until")
    stored = (await get_webhook(api, auth, webhook["id"])).json()
    expires = stored["previousSecretExpiresAt"]
    assert expires
    shown = await page.evaluate(
        "iso => new Intl.DateTimeFormat('en', {dateStyle: 'medium', timeStyle: 'medium'})"
        ".format(new Date(iso))",
        expires,
    )
    await expect(dialog.locator("#rotate-result")).to_have_text(
        f"Secret rotated. The previous secret is still accepted until {shown}."
    )
    content = await page.content()
    assert NEW_SECRET not in content and SECRET not in content
    await assert_accessible(page, "rotate dialog after a rotation")
    await dialog.get_by_role("button", name="Close").click()

    panel = await edit(page, "rotated")
    window = panel.locator(".rotation-window")
    await expect(window).to_contain_text(f"still accepted until {shown}")
    await window.get_by_role("button", name="End the window now").click()
    await expect(window).to_contain_text("no longer accepted")
    stored = (await get_webhook(api, auth, webhook["id"])).json()
    assert stored["previousSecretExpiresAt"] is None
    assert stored["secretRotationGraceSeconds"] == 3600  # kept for the next rotation
    await panel.get_by_role("button", name="Cancel").click()

    await page.get_by_role("button", name="Actions for rotated").click()
    await page.get_by_role("menuitem", name="Rotate secret").click()
    await dialog.get_by_label("New secret").fill(NEWER_SECRET)
    await dialog.get_by_role("button", name="Rotate").click()
    await expect(dialog.locator("#rotate-result")).to_contain_text("still accepted until")
    await dialog.get_by_role("button", name="End the window now").click()
    await expect(dialog.locator("#rotate-result")).to_contain_text("no longer accepted")
    stored = (await get_webhook(api, auth, webhook["id"])).json()
    assert stored["previousSecretExpiresAt"] is None
    assert stored["secretRotationGraceSeconds"] == 3600
    assert NEWER_SECRET not in await page.content()
