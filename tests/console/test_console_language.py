"""Item 7: English and Polish, from the browser or the switch, every visible string translated."""

import json
import re
from pathlib import Path
from typing import Any

import httpx
from console_support import CREATED, assert_accessible, create_webhook
from playwright.async_api import Page, expect

from support import new_tenant

LOCALES = Path(__file__).parents[2] / "services/api/hookstream_api/console/static/locales"
VISIBLE_TEXT = """() => {
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const parent = node.parentElement;
    if (!node.textContent.trim() || !parent.checkVisibility()) continue;
    texts.push(node.textContent.trim());
  }
  for (const element of document.querySelectorAll('[aria-label], [placeholder], option')) {
    if (!element.checkVisibility() && element.tagName !== 'OPTION') continue;
    for (const name of ['aria-label', 'placeholder']) {
      if (element.getAttribute(name)) texts.push(element.getAttribute(name));
    }
  }
  texts.push(document.title);
  return texts;
}"""


def catalogue(language: str) -> dict[str, str]:
    return json.loads((LOCALES / f"{language}.json").read_text())


def test_both_catalogues_hold_the_same_messages() -> None:
    english, polish = catalogue("en"), catalogue("pl")
    assert english.keys() == polish.keys()
    assert all(polish.values()) and all(english.values())
    for key, text in english.items():
        assert re.findall(r"\{\w+\}", text) == re.findall(r"\{\w+\}", polish[key]), key


def english_only_fragments() -> set[str]:
    """Pieces of English messages that no Polish message contains: seeing one is a miss."""
    english, polish = catalogue("en"), catalogue("pl")
    fragments = set()
    for key, text in english.items():
        if text == polish[key]:
            continue
        for piece in re.split(r"\{\w+\}", text):
            piece = piece.strip(" .:()")
            if len(piece) > 2 and not any(piece in value for value in polish.values()):
                fragments.add(piece)
    return fragments


async def show_everything(page: Page) -> None:
    """Open every part of the page that has words: history, a delivery, the menu."""
    await page.locator("#webhooks-body .expander").first.click()
    await page.locator(".history").first.wait_for()
    await page.locator(".row-menu-button").first.click()


async def test_polish_from_the_browser_with_every_visible_string_translated(
    open_console: Any, api: httpx.AsyncClient, token: Any
) -> None:
    auth = token(new_tenant(), "u1")
    await create_webhook(api, auth, name="zamówienia", eventTypes=[CREATED], enabled=False)
    page = await open_console(auth, locale="pl-PL")
    await expect(page.locator("html")).to_have_attribute("lang", "pl")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Webhooki")
    await expect(page.get_by_role("button", name="Utwórz nowy")).to_be_visible()
    await show_everything(page)
    await assert_accessible(page, "the page in Polish")

    untranslated = english_only_fragments()
    assert untranslated, "the check needs English-only words to look for"
    texts = await page.evaluate(VISIBLE_TEXT)
    missed = {piece for piece in untranslated for text in texts if piece in text}
    assert not missed, missed

    await page.keyboard.press("Escape")
    await page.get_by_role("button", name="Utwórz nowy").click()
    await expect(page.get_by_role("dialog", name="Utwórz webhook")).to_be_visible()
    await page.get_by_role("button", name="Dodaj nagłówek").click()
    texts = await page.evaluate(VISIBLE_TEXT)
    missed = {piece for piece in untranslated for text in texts if piece in text}
    assert not missed, missed


async def test_the_switch_changes_the_language_and_remembers_it(
    open_console: Any, api: httpx.AsyncClient, token: Any
) -> None:
    auth = token(new_tenant(), "u1")
    await create_webhook(api, auth, name="hook")
    page = await open_console(auth, locale="en-GB")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Webhooks")
    await page.get_by_label("Language").select_option("pl")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Webhooki")
    await expect(page.locator("#webhooks-head")).to_contain_text("Nazwa")
    await expect(page.locator("#webhooks-body td.state")).to_have_text("Włączony")
    await expect(page).to_have_title("Webhooki · Hookstream")
    await page.reload()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Webhooki")
    await page.get_by_label("Język").select_option("en")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Webhooks")
    await expect(page.locator("#webhooks-body td.state")).to_have_text("Enabled")
