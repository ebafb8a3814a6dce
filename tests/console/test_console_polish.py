"""Issue 22 item 5: the console speaks Polish to the end and its table fits.

Errors are translated from the API's code and field, never shown in the API's English; the
webhooks table, with every column and the row menu's ⋮, fits in its frame at 1,400 and at
1,280 px without scrolling sideways, in both languages.
"""

from typing import Any

import httpx
import pytest
from console_support import CREATED, DELETED, USER_DELETED, create_webhook
from playwright.async_api import Page, expect

from support import new_tenant

EVENT_TYPES = [
    CREATED,
    DELETED,
    "com.qlik.v1.app.data.updated",
    "com.qlik.v1.app.reload.finished",
    "com.qlik.v1.app.published",
    "com.qlik.v1.app.exported",
    "com.qlik.v1.user.created",
    USER_DELETED,
]


async def overflow(page: Page) -> dict[str, Any]:
    """How far the page, the table and each row's ⋮ reach past the table's frame."""
    return await page.evaluate(
        """() => {
          const frame = document.querySelector('.table-wrap').getBoundingClientRect();
          const table = document.getElementById('webhooks-table').getBoundingClientRect();
          const menus = [...document.querySelectorAll('#webhooks-body .row-menu-button')]
            .map((b) => b.getBoundingClientRect());
          const heads = [...document.querySelectorAll('#webhooks-head th')]
            .map((th) => th.getBoundingClientRect());
          return {
            page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
            table: Math.max(0, table.right - frame.right),
            menus: menus.map((m) => Math.max(0, m.right - frame.right, m.right - innerWidth)),
            heads: heads.map((h) => Math.max(0, h.right - frame.right)),
            count: menus.length,
          };
        }"""
    )


@pytest.mark.parametrize("locale", ["en-US", "pl-PL"])
@pytest.mark.parametrize("width", [1400, 1280])
async def test_every_column_and_the_row_menu_fit_without_scrolling_sideways(
    open_console: Any, api: httpx.AsyncClient, token: Any, locale: str, width: int
) -> None:
    auth = token(new_tenant(), "u1")
    for number in range(3):
        await create_webhook(
            api,
            auth,
            name=f"Nightly reload alerts for the finance team {number}",
            url=f"https://hooks.example.com/services/finance/reloads/alerts/{number}?team=fin",
            eventTypes=EVENT_TYPES,
        )
    page = await open_console(auth, locale, width)
    await expect(page.locator("#webhooks-body tr[data-id]")).to_have_count(3)
    reach = await overflow(page)
    assert reach["count"] == 3
    assert reach["page"] <= 0, reach
    assert reach["table"] <= 0.5, reach
    assert max(reach["menus"]) <= 0.5 and max(reach["heads"]) <= 0.5, reach
    for button in await page.locator("#webhooks-body .row-menu-button").all():
        await expect(button).to_be_in_viewport()


async def test_an_error_shows_in_polish_from_its_code_and_field(
    open_console: Any, token: Any
) -> None:
    page = await open_console(token(new_tenant(), "u1"), locale="pl-PL")
    await page.get_by_role("button", name="Utwórz nowy").first.click()
    dialog = page.get_by_role("dialog", name="Utwórz webhook")
    await dialog.get_by_label("Nazwa", exact=True).fill("zły")
    await dialog.get_by_role("group", name="Aplikacje").get_by_label("Aplikacja utworzona").check()
    await dialog.get_by_label("Adres URL webhooka").fill("https://10.0.0.1/hook")
    await dialog.get_by_role("button", name="Utwórz", exact=True).click()
    url_error = page.locator("#create-error-url")
    await expect(url_error).to_have_text(
        "Podaj adres https z pełną nazwą domeny (nie adres IP ani localhost), najwyżej 2048 znaków."
    )

    await dialog.get_by_label("Adres URL webhooka").fill("https://hooks.example.com/hook")
    await dialog.get_by_label("Klucz tajny").fill("za-krótki")
    await dialog.get_by_role("button", name="Utwórz", exact=True).click()
    await expect(page.locator("#create-error-secret")).to_have_text(
        "Klucz tajny musi mieć od 32 do 64 znaków."
    )
    await expect(url_error).to_be_hidden()


async def test_an_unknown_error_falls_back_to_a_generic_polish_message_with_the_field(
    open_console: Any, token: Any
) -> None:
    page = await open_console(token(new_tenant(), "u1"), locale="pl-PL")
    described = await page.evaluate(
        """async () => {
          const { describeError } = await import('./static/errors.js');
          return [
            describeError({ code: 'HOOKSTREAM-499', detail: 'widget.size: is too big' }),
            describeError({ code: 'HOOKSTREAM-400', detail: 'widget: must be round' }),
            describeError({ code: 'HOOKSTREAM-499', detail: 'Something English happened.' }),
          ];
        }"""
    )
    assert described == [
        "Coś poszło nie tak z polem widget.size.",
        "Wartość pola widget jest niepoprawna.",
        "Coś poszło nie tak.",
    ]
