"""The edit panel takes a client certificate and key (a Hookstream extension), says which part
is wrong in the reader's language, shows only the subject and expiry of the stored one, and
removes it on request; the key never reaches the page."""

from typing import Any

import httpx
import pytest
import trustme
from console_support import assert_accessible, create_webhook, get_webhook
from playwright.async_api import Page, expect

from support import new_tenant

CA = trustme.CA()
LEAF = CA.issue_cert("console-client.example.com", common_name="console-client.example.com")
CERTIFICATE = LEAF.cert_chain_pems[0].bytes().decode()
KEY = LEAF.private_key_pem.bytes().decode()
OTHER_KEY = CA.issue_cert("other.example.com").private_key_pem.bytes().decode()
TEXT = {
    "en-US": {
        "actions": "Actions for {name}",
        "edit": "Edit",
        "panel": "Edit webhook",
        "certificate": "Certificate (PEM, then any intermediates)",
        "key": "Private key (PEM, without a password)",
        "remove": "Remove the client certificate",
        "save": "Save",
        "wrong key": "Paste the certificate's own private key",
        "set": "A certificate is set: ",
    },
    "pl-PL": {
        "actions": "Akcje dla {name}",
        "edit": "Edytuj",
        "panel": "Edytuj webhook",
        "certificate": "Certyfikat (PEM, a po nim ewentualne certyfikaty pośrednie)",
        "key": "Klucz prywatny (PEM, bez hasła)",
        "remove": "Usuń certyfikat klienta",
        "save": "Zapisz",
        "wrong key": "Wklej klucz prywatny tego certyfikatu",
        "set": "Certyfikat jest ustawiony: ",
    },
}


async def _edit(page: Page, text: dict[str, str], name: str) -> Any:
    await page.get_by_role("button", name=text["actions"].format(name=name)).click()
    await page.get_by_role("menuitem", name=text["edit"]).click()
    panel = page.get_by_role("dialog", name=text["panel"])
    await expect(panel).to_be_visible()
    return panel


@pytest.mark.parametrize("locale", ["en-US", "pl-PL"])
async def test_the_edit_panel_sets_shows_and_removes_a_client_certificate(
    open_console: Any, api: httpx.AsyncClient, token: Any, locale: str
) -> None:
    text = TEXT[locale]
    auth = token(new_tenant(), "u1")
    webhook = await create_webhook(api, auth, name="mtls")
    page = await open_console(auth, locale=locale)

    panel = await _edit(page, text, "mtls")
    await expect(panel.get_by_label(text["remove"])).to_be_hidden()
    await panel.get_by_label(text["certificate"]).fill(CERTIFICATE)
    await panel.get_by_label(text["key"]).fill(OTHER_KEY)
    await panel.get_by_role("button", name=text["save"]).click()
    await expect(panel).to_contain_text(text["wrong key"])
    await expect(panel.get_by_label(text["key"])).to_have_attribute("aria-invalid", "true")

    await panel.get_by_label(text["key"]).fill(KEY)
    await panel.get_by_role("button", name=text["save"]).click()
    await expect(panel).to_be_hidden()
    stored = (await get_webhook(api, auth, webhook["id"])).json()
    assert "CN=console-client.example.com" in stored["clientCertificate"]["subject"]

    panel = await _edit(page, text, "mtls")
    await expect(panel).to_contain_text(text["set"] + stored["clientCertificate"]["subject"])
    await expect(panel.get_by_label(text["key"])).to_have_value("")
    assert KEY.splitlines()[1] not in await page.content()
    await assert_accessible(page, f"edit panel with a client certificate ({locale})")
    await panel.get_by_label(text["remove"]).check()
    await panel.get_by_role("button", name=text["save"]).click()
    await expect(panel).to_be_hidden()
    assert (await get_webhook(api, auth, webhook["id"])).json()["clientCertificate"] is None
