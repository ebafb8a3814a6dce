"""Issue 22 item 2: the operational event types in the create dialog's picker, in their own
*Webhooks* group, in English and Polish, and a webhook subscribed to them from there."""

from typing import Any

import httpx
import pytest
from console_support import get_webhook
from playwright.async_api import expect

from support import new_tenant

TROUBLE = [
    "com.hookstream.v1.webhook.disabled",
    "com.hookstream.v1.delivery.exhausted",
    "com.hookstream.v1.webhook.recovered",
    "com.hookstream.v1.webhook.certificate.expiring",
]
WORDS = {
    "en-US": {
        "create": "Create new",
        "dialog": "Create webhook",
        "name": "Name",
        "url": "Webhook URL",
        "submit": "Create",
        "group": "Webhooks",
        "types": [
            "Webhook disabled",
            "Delivery failed for good",
            "Webhook recovered",
            "Client certificate expiring",
        ],
    },
    "pl-PL": {
        "create": "Utwórz nowy",
        "dialog": "Utwórz webhook",
        "name": "Nazwa",
        "url": "Adres URL webhooka",
        "submit": "Utwórz",
        "group": "Webhooki",
        "types": [
            "Webhook wyłączony",
            "Dostarczenie ostatecznie nieudane",
            "Webhook znów działa",
            "Certyfikat klienta wkrótce wygasa",
        ],
    },
}


@pytest.mark.parametrize("locale", list(WORDS))
async def test_the_picker_groups_operational_events_under_webhooks(
    open_console: Any, api: httpx.AsyncClient, token: Any, locale: str
) -> None:
    words = WORDS[locale]
    auth = token(new_tenant(), "u1")
    page = await open_console(auth, locale=locale)
    await page.get_by_role("button", name=words["create"]).first.click()
    dialog = page.get_by_role("dialog", name=words["dialog"])
    group = dialog.get_by_role("group", name=words["group"], exact=True)
    for label in words["types"]:
        await expect(group.get_by_label(label)).to_be_visible()
    await expect(group.get_by_role("checkbox")).to_have_count(len(TROUBLE))

    await dialog.get_by_label(words["name"], exact=True).fill("watcher")
    await dialog.get_by_label(words["url"]).fill("https://hooks.example.com/trouble")
    for label in words["types"]:
        await group.get_by_label(label).check()
    await dialog.get_by_role("button", name=words["submit"], exact=True).click()
    row = page.locator("#webhooks-body tr[data-id]")
    await expect(row).to_have_count(1)
    webhook = (await get_webhook(api, auth, await row.get_attribute("data-id"))).json()
    assert webhook["eventTypes"] == TROUBLE
