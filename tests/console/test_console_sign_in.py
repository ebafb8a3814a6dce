"""Item 1: signing in with a bearer token, the sign-in link, signing out, bad tokens."""

from datetime import timedelta
from typing import Any

import httpx
from console_support import V1, assert_accessible, create_webhook
from playwright.async_api import Page, expect

from hookstream_dev.stack import ServiceSet
from hookstream_dev.tokens import mint_token
from support import bearer, new_tenant, wait_until


async def sign_in_form(page: Page) -> None:
    await expect(page.locator("#sign-in-view")).to_be_visible()
    await expect(page.locator("#webhooks-view")).to_be_hidden()


async def test_sign_in_with_a_token_then_sign_out(open_console: Any, token: Any) -> None:
    page = await open_console()
    await sign_in_form(page)
    await assert_accessible(page, "sign-in")

    await page.get_by_label("Bearer token").fill(token(new_tenant(), "alice"))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Webhooks", level=1)).to_be_visible()
    await expect(page.locator("#signed-in-as")).to_have_text("Signed in as alice")

    await page.get_by_role("button", name="Sign out").click()
    await sign_in_form(page)
    await expect(page.locator("#sign-in-message")).to_be_hidden()
    await page.reload()
    await sign_in_form(page)  # the token is gone, not only hidden


async def test_the_console_link_signs_in_and_leaves_no_token_in_the_address(
    open_console: Any, token: Any
) -> None:
    page = await open_console(token(new_tenant(), "demo-admin", admin=True))
    await expect(page.locator("#signed-in-as")).to_have_text("Signed in as demo-admin")
    assert "token" not in page.url
    await page.reload()  # the session survives a reload
    await expect(page.locator("#webhooks-view")).to_be_visible()


async def test_a_link_never_replaces_a_session_without_asking(
    open_console: Any, token: Any
) -> None:
    """Issue 18 item 9: a `#token=` link signed the reader into the sender's tenant at once
    (login CSRF). Now it names the user and tenant and waits for a yes."""
    page = await open_console(token(new_tenant(), "alice"))
    attacker = new_tenant()
    await page.goto(f"/console/#token={token(attacker, 'mallory')}")
    dialog = page.get_by_role("dialog", name="Sign in with a link")
    await expect(dialog).to_contain_text(f"mallory of tenant {attacker}")
    await expect(dialog).to_contain_text("You are signed in as alice")
    assert "token" not in page.url
    await assert_accessible(page, "sign-in link")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(page.locator("#signed-in-as")).to_have_text("Signed in as alice")
    await page.reload()
    await expect(page.locator("#signed-in-as")).to_have_text("Signed in as alice")

    await page.goto(f"/console/#token={token(attacker, 'mallory')}")
    await dialog.get_by_role("button", name="Sign in with this link").click()
    await expect(page.locator("#signed-in-as")).to_have_text("Signed in as mallory")


async def test_a_link_asks_in_polish_too(open_console: Any, token: Any) -> None:
    page = await open_console(locale="pl-PL")
    tenant = new_tenant()
    await page.goto(f"/console/#token={token(tenant, 'ola')}")
    dialog = page.get_by_role("dialog", name="Logowanie przez link")
    await expect(dialog).to_contain_text(f"ola w dzierżawie {tenant}")
    await expect(page.locator("#webhooks-view")).to_be_hidden()
    await dialog.get_by_role("button", name="Zaloguj się przez link").click()
    await expect(page.locator("#signed-in-as")).to_have_text("Zalogowano jako ola")


async def test_an_invalid_token_leads_back_to_sign_in_with_a_message(open_console: Any) -> None:
    page = await open_console()
    await page.goto("/console/#token=not-a-token")
    await page.get_by_role("button", name="Sign in with this link").click()
    await sign_in_form(page)
    await expect(page.locator("#sign-in-message")).to_contain_text("invalid or has expired")
    await assert_accessible(page, "sign-in with an error")


async def test_a_token_that_expires_during_the_session_leads_back_to_sign_in(
    open_console: Any, api: httpx.AsyncClient, token: Any, settings_env: dict[str, str]
) -> None:
    tenant = new_tenant()
    await create_webhook(api, token(tenant, "u1"))
    short = mint_token(
        settings_env["HOOKSTREAM_JWT_KEY"], tenant, "u1", [], ttl=timedelta(seconds=3)
    )
    page = await open_console(short)

    async def expired() -> bool:
        return (await api.get(V1, headers=bearer(short))).status_code == 401

    await wait_until(expired, timeout=30)
    await page.get_by_role("button", name="Name", exact=True).click()  # any call to the API
    await sign_in_form(page)
    await expect(page.locator("#sign-in-message")).to_contain_text("invalid or has expired")


async def test_every_asset_comes_from_the_api_itself(
    open_console: Any, api: httpx.AsyncClient, token: Any, stack: ServiceSet
) -> None:
    page = await open_console()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    response = await page.goto("/console")
    assert response is not None and response.url.endswith("/console/")
    policy = await response.header_value("content-security-policy")
    assert policy is not None and "default-src 'self'" in policy
    await page.get_by_label("Bearer token").fill(token(new_tenant(), "u1"))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#empty-state")).to_be_visible()
    assert requested and all(url.startswith(stack.url("api")) for url in requested), requested
