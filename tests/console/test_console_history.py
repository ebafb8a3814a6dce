"""Item 6: a row's delivery history: newest first, paged, filtered by status, resend, the
request and response of each delivery, and nothing older than the retention."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from console_support import (
    CREATED,
    DELETED,
    SECRET,
    V1,
    LiveTenant,
    assert_accessible,
)
from console_support import screenshot as save_screenshot
from e2e.history_rows import insert_delivery
from playwright.async_api import Page, expect

from hookstream_common.db import ensure_partitions
from support import bearer, wait_until

REPLY = '{"received":true,"queue":"orders"}'


async def webhook_with_deliveries(
    live: LiveTenant, events: list[str]
) -> tuple[dict[str, Any], str]:
    """A webhook whose receiver answered each event with `REPLY`; and its receiver path."""
    path = f"/hooks/history-{uuid.uuid4().hex}"
    live.receiver.respond(path, status=200, body=REPLY)
    webhook = await live.create(
        name="history",
        url=live.url(path),
        eventTypes=[CREATED, DELETED],
        secret=SECRET,
        encryptedHeaders={"X-Api-Key": "top-secret"},
    )
    await live.routed({webhook["id"]})
    for event_type in events:
        await live.publish(event_type)

    async def stored() -> bool:
        listed = await live.api.get(
            f"{V1}/{webhook['id']}/deliveries", params={"limit": 100}, headers=bearer(live.auth)
        )
        return len(listed.json()["data"]) == len(events)

    await wait_until(stored, timeout=30)
    return webhook, path


async def expand(page: Page, name: str) -> Any:
    await page.get_by_role("button", name=f"Delivery history of {name}").click()
    history = page.get_by_role("region", name=f"Delivery history of {name}")
    await expect(history).to_be_visible()
    return history


async def test_history_newest_first_with_request_response_and_resend(
    open_console: Any,
    live: LiveTenant,
) -> None:
    webhook, path = await webhook_with_deliveries(live, [CREATED, DELETED])
    page = await open_console(live.auth)
    history = await expand(page, "history")
    rows = history.locator("tbody > tr[data-delivery]")
    await expect(rows).to_have_count(2)
    times = await rows.locator("time").evaluate_all("ts => ts.map(t => t.dateTime)")
    assert times == sorted(times, reverse=True)
    await expect(rows.locator("td.event-type")).to_have_text(
        ["App deleted", "App created"], ignore_case=False
    )
    await expect(rows.first).to_contain_text("Success")

    await rows.first.get_by_role("button", name="Request and response").click()
    details = history.locator(".exchange")
    request_part = details.get_by_role("region", name="Request")
    response_part = details.get_by_role("region", name="Response")
    await expect(request_part).to_contain_text(live.url(path))
    api_key = request_part.locator("tr", has_text="X-Api-Key")
    await expect(api_key).to_contain_text("**OMITTED**")
    assert "top-secret" not in await page.content()
    body = await request_part.locator("pre").inner_text()
    assert json.loads(body)["eventType"] == DELETED and '\n  "eventType"' in body
    await expect(response_part).to_contain_text("200")
    await expect(response_part.locator("pre")).to_have_text(json.dumps(json.loads(REPLY), indent=2))
    await save_screenshot(page, "history")
    await assert_accessible(page, "history with a delivery's request and response")

    live.receiver.respond(path, status=500, body='{"error":"down"}')
    await rows.nth(1).get_by_role("button", name="Resend").click()
    await expect(rows).to_have_count(3)
    await expect(rows.first).to_have_class("fresh")
    await expect(rows.first).to_contain_text("Failed")
    await expect(rows.first.locator("td.event-type")).to_have_text("App created")
    await expect(page.locator("#announcer")).to_contain_text("Sent again: Failed")
    listed = await live.api.get(f"{V1}/{webhook['id']}/deliveries", headers=bearer(live.auth))
    newest = listed.json()["data"][0]
    assert newest["status"] == "fail"
    assert await rows.first.get_attribute("data-delivery") == newest["id"]

    await history.get_by_label("Status").select_option(label="Failed")
    await expect(rows).to_have_count(1)
    await history.get_by_label("Status").select_option(label="Success")
    await expect(rows).to_have_count(2)


async def test_history_pages_and_hides_what_is_past_the_retention(
    open_console: Any,
    live: LiveTenant,
    db: asyncpg.Connection,
) -> None:
    webhook, _ = await webhook_with_deliveries(live, [CREATED] * 11)
    now = datetime.now(UTC)
    await ensure_partitions(db, 1, today=(now - timedelta(days=8)).date())
    old = await insert_delivery(db, live.id, webhook["id"], now - timedelta(days=8), "fail")
    page = await open_console(live.auth)
    history = await expand(page, "history")
    await expect(history).to_contain_text("kept for 7 days")
    rows = history.locator("tbody > tr[data-delivery]")
    await expect(rows).to_have_count(10)
    await history.get_by_role("button", name="Next").click()
    await expect(rows).to_have_count(1)
    await expect(history.get_by_role("button", name="Next")).to_be_disabled()
    assert await history.locator(f'tr[data-delivery="{old}"]').count() == 0
    await history.get_by_role("button", name="Previous").click()
    await expect(rows).to_have_count(10)
    assert await history.locator(f'tr[data-delivery="{old}"]').count() == 0
