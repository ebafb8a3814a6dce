"""Fixtures of the console's browser tests: the e2e stack and a Chromium from Debian.

The stack (Kafka, Postgres, the four services, an HTTPS receiver) is tests/e2e's, imported
whole; the browser is Debian's `chromium` package driven by Playwright, never a downloaded
build, so the suite runs offline.
"""

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from console_support import LiveTenant
from e2e.conftest import *  # noqa: F403  (the stack's fixtures)
from playwright.async_api import Browser, Page, async_playwright, expect

from hookstream_common.sdk import EventPublisher
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from support import new_tenant

OpenConsole = Callable[..., Awaitable[Page]]

# The whole suite shares two cores: give the page time to answer while other tests run.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the session."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("no chromium on PATH: `make install` installs Debian's chromium package")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable)
        yield browser
        await browser.close()


@pytest.fixture
async def open_console(browser: Browser, stack: ServiceSet) -> AsyncIterator[OpenConsole]:
    """`await open_console(token, locale="en-US", width=1440)`: a fresh browser context on
    /console, `width` pixels wide.

    With a token the page opens through the sign-in link `make run` prints, and accepts it
    (a link never signs in without asking); without one it shows the sign-in form.
    """
    contexts = []

    async def open_page(token: str | None = None, locale: str = "en-US", width: int = 1440) -> Page:
        context = await browser.new_context(
            locale=locale, viewport={"width": width, "height": 900}, base_url=stack.url("api")
        )
        contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(15_000)
        await page.goto(f"/console/#token={token}" if token else "/console/")
        if token:
            await page.locator("#link-form button[type=submit]").click()
            await page.locator("#webhooks-view").wait_for()
        return page

    yield open_page
    for context in contexts:
        await context.close()


@pytest.fixture
def live(
    api: httpx.AsyncClient,
    token: Callable[..., str],
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
) -> LiveTenant:
    """A new tenant whose webhooks get real deliveries."""
    tenant = new_tenant()
    return LiveTenant(tenant, token(tenant, "u1"), api, stack, receiver, publisher)
