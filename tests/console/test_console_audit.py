"""Issue 23 item 3: a webhook's audit trail from its row menu, in English and in Polish: what
was done, by whom, which fields and from where; never a value."""

from typing import Any

import httpx
import pytest
from console_support import SECRET, assert_accessible, create_webhook
from playwright.async_api import expect

from support import bearer, new_tenant

V1 = "/api/v1/webhooks"
WORDS = {
    "en-US": {
        "menu": "Actions for audited",
        "item": "Audit trail",
        "panel": "Audit trail",
        "actions": ["Secret rotated", "Disabled", "Updated", "Created"],
        "close": "Close",
    },
    "pl-PL": {
        "menu": "Akcje dla audited",
        "item": "Dziennik zmian",
        "panel": "Dziennik zmian",
        "actions": ["Zmieniono klucz tajny", "Wyłączono", "Zaktualizowano", "Utworzono"],
        "close": "Zamknij",
    },
}


@pytest.mark.parametrize("locale", ["en-US", "pl-PL"])
async def test_the_row_menu_opens_the_webhooks_audit_trail(
    open_console: Any, api: httpx.AsyncClient, token: Any, locale: str
) -> None:
    words = WORDS[locale]
    auth = token(new_tenant(), "u1")
    webhook = await create_webhook(api, auth, name="audited", secret=SECRET)
    url = f"{V1}/{webhook['id']}"
    for operations in (
        [{"op": "replace", "path": "/description", "value": "nightly"}],
        [{"op": "replace", "path": "/enabled", "value": False}],
        [{"op": "replace", "path": "/secret", "value": "r" * 40}],
    ):
        response = await api.patch(url, json=operations, headers=bearer(auth))
        assert response.status_code == 204, response.text

    page = await open_console(auth, locale=locale)
    await page.get_by_role("button", name=words["menu"]).click()
    await page.get_by_role("menuitem", name=words["item"]).click()
    panel = page.get_by_role("dialog", name=words["panel"])
    await expect(panel).to_be_visible()
    rows = panel.locator("tbody tr")
    await expect(rows.locator("td.audit-action")).to_have_text(words["actions"])
    await expect(rows.locator("td.audit-actor")).to_have_text(["u1"] * 4)
    await expect(rows.locator("td.audit-source")).to_have_text(["127.0.0.1"] * 4)
    await expect(rows.nth(0).locator("td.audit-changed")).to_have_text("secret")
    await expect(rows.nth(2).locator("td.audit-changed")).to_have_text("description")
    assert SECRET not in await page.content() and "r" * 40 not in await page.content()
    await assert_accessible(page, f"audit panel ({locale})")
    await panel.get_by_role("button", name=words["close"]).click()
    await expect(panel).to_be_hidden()
