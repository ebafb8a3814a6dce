"""Issue 22 item 3: "Send test event" from the row menu and from the create dialog's result,
in English and Polish, with the outcome the receiver gave."""

import uuid
from typing import Any

import orjson
import pytest
from console_support import CREATED, SECRET, LiveTenant, assert_accessible
from playwright.async_api import expect

from hookstream_common.signing import qlik_signature

WORDS = {
    "en-US": {
        "actions": "Actions for {name}",
        "test": "Send test event",
        "delivered": "Test event delivered to {name}: the receiver answered 200.",
        "failed": "The test event to {name} failed: the receiver answered 500.",
        "create": "Create new",
        "dialog": "Create webhook",
        "name": "Name",
        "url": "Webhook URL",
        "group": "Apps",
        "event": "App created",
        "submit": "Create",
        "created": "Webhook {name} created.",
        "close": "Close",
    },
    "pl-PL": {
        "actions": "Akcje dla {name}",
        "test": "Wyślij zdarzenie testowe",
        "delivered": "Zdarzenie testowe dostarczone do {name}: odbiorca odpowiedział 200.",
        "failed": "Zdarzenie testowe do {name} nie powiodło się: odbiorca odpowiedział 500.",
        "create": "Utwórz nowy",
        "dialog": "Utwórz webhook",
        "name": "Nazwa",
        "url": "Adres URL webhooka",
        "group": "Aplikacje",
        "event": "Aplikacja utworzona",
        "submit": "Utwórz",
        "created": "Utworzono webhook {name}.",
        "close": "Zamknij",
    },
}


@pytest.mark.parametrize("locale", WORDS)
async def test_send_a_test_event_from_the_row_menu(
    open_console: Any, live: LiveTenant, locale: str
) -> None:
    words = WORDS[locale]
    path = f"/hooks/console-test-{uuid.uuid4().hex}"
    name = f"tested-{locale}"
    webhook = await live.create(name=name, url=live.url(path), secret=SECRET)
    page = await open_console(live.auth, locale=locale)

    async def send_test() -> None:
        await page.get_by_role("button", name=words["actions"].format(name=name)).click()
        await page.get_by_role("menuitem", name=words["test"]).click()

    await send_test()
    notice = page.locator("#page-notice")
    await expect(notice).to_have_text(words["delivered"].format(name=name))
    [arrived] = live.receiver.received(path)
    assert arrived.headers["qlik-signature"] == qlik_signature(SECRET, arrived.body)
    assert orjson.loads(arrived.body)["data"]["test"] is True
    await assert_accessible(page, "test event sent")

    live.receiver.respond(path, status=500)
    await send_test()
    await expect(notice).to_have_text(words["failed"].format(name=name))
    await expect(notice).to_have_attribute("data-status", "fail")
    deliveries = (
        await live.api.get(
            f"/api/v1/webhooks/{webhook['id']}/deliveries",
            headers={"Authorization": f"Bearer {live.auth}"},
        )
    ).json()
    assert [d["status"] for d in deliveries["data"]] == ["fail", "success"]


@pytest.mark.parametrize("locale", WORDS)
async def test_send_a_test_event_from_the_create_dialogs_result(
    open_console: Any, live: LiveTenant, locale: str
) -> None:
    words = WORDS[locale]
    path = f"/hooks/created-test-{uuid.uuid4().hex}"
    name = f"fresh-{locale}"
    page = await open_console(live.auth, locale=locale)
    await page.get_by_role("button", name=words["create"]).first.click()
    dialog = page.get_by_role("dialog", name=words["dialog"])
    await dialog.get_by_label(words["name"], exact=True).fill(name)
    await dialog.get_by_label(words["url"]).fill(live.url(path))
    await dialog.get_by_role("group", name=words["group"]).get_by_label(words["event"]).check()
    await dialog.get_by_role("button", name=words["submit"], exact=True).click()

    await expect(dialog).to_contain_text(words["created"].format(name=name))
    send = dialog.get_by_role("button", name=words["test"])
    await expect(send).to_be_focused()
    await send.click()
    await expect(dialog.locator("#create-test-result")).to_have_text(
        words["delivered"].format(name=name)
    )
    [arrived] = live.receiver.received(path)
    assert orjson.loads(arrived.body)["eventType"] == CREATED
    await assert_accessible(page, "create dialog's result")
    await dialog.get_by_role("button", name=words["close"]).click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#webhooks-body tr[data-id] td.name")).to_have_text([name])
