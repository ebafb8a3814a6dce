"""Helpers of the console tests: accessibility checks, screenshots, webhooks made by the API."""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page

from hookstream_common.sdk import EventPublisher
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from support import bearer, receiver_url, repo_root, wait_routed

V1 = "/api/v1/webhooks"
CREATED, DELETED = "com.qlik.v1.app.created", "com.qlik.v1.app.deleted"
USER_DELETED = "com.qlik.v1.user.deleted"
SECRET = "s" * 40
BLOCKING = ("serious", "critical")

_axe = Axe()


async def assert_accessible(page: Page, view: str) -> None:
    """axe-core (served from the installed package, not a CDN) finds nothing serious."""
    results = await _axe.run(page)
    blocking = [v for v in results.response["violations"] if v["impact"] in BLOCKING]
    details = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in blocking
    ]
    assert not blocking, f"{view}: " + "\n".join(details)


async def screenshot(page: Page, name: str) -> None:
    """Save the page for the README when HOOKSTREAM_CONSOLE_SCREENSHOTS is set (a folder)."""
    folder = os.environ.get("HOOKSTREAM_CONSOLE_SCREENSHOTS")
    if folder:
        path = Path(folder) if Path(folder).is_absolute() else repo_root() / folder
        path.mkdir(parents=True, exist_ok=True)
        viewport = page.viewport_size
        # An open dialog scrolls inside the viewport: make the viewport tall enough to show it.
        height = await page.evaluate(
            "() => Math.max(document.documentElement.scrollHeight,"
            " ...[...document.querySelectorAll('dialog[open]')].map(d => d.scrollHeight + 80))"
        )
        await page.set_viewport_size({"width": viewport["width"], "height": height})
        await page.screenshot(path=str(path / f"{name}.png"))
        await page.set_viewport_size(viewport)


async def create_webhook(api: httpx.AsyncClient, auth: str, **fields: Any) -> dict[str, Any]:
    """A webhook made through the API, with defaults for what the test does not care about."""
    body = {"name": "hook", "url": "https://hooks.example.com/in", "eventTypes": [CREATED]}
    body.update(fields)
    response = await api.post(V1, json=body, headers=bearer(auth))
    assert response.status_code == 201, response.text
    return response.json()


async def get_webhook(api: httpx.AsyncClient, auth: str, webhook_id: str) -> httpx.Response:
    return await api.get(f"{V1}/{webhook_id}", headers=bearer(auth))


async def row_names(page: Page) -> list[str]:
    """The names in the webhooks table, top to bottom."""
    return await page.locator("#webhooks-body tr[data-id] td.name").all_inner_texts()


@dataclass(frozen=True)
class LiveTenant:
    """A new tenant (user u1) whose webhooks get real deliveries: the set-up every test that
    watches the console follow deliveries shares."""

    id: str
    auth: str
    api: httpx.AsyncClient
    stack: ServiceSet
    receiver: Receiver
    publisher: EventPublisher

    async def create(self, **fields: Any) -> dict[str, Any]:
        return await create_webhook(self.api, self.auth, **fields)

    async def get(self, webhook_id: str) -> httpx.Response:
        return await get_webhook(self.api, self.auth, webhook_id)

    def url(self, path: str) -> str:
        """The receiver's URL of `path`."""
        return receiver_url(self.receiver, path)

    async def routed(self, webhook_ids: set[str]) -> None:
        """Wait until the matcher routes to these webhooks."""
        await wait_routed(self.stack, self.id, webhook_ids)

    async def publish(self, event_type: str = CREATED) -> dict[str, Any]:
        event = sample_event(event_type, self.id, "u1")
        await self.publisher.publish(event)
        return event
