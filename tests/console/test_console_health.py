"""Issue 14: a webhook's health (Hookstream extension fields) in the table and the edit panel,
changing as deliveries succeed and fail, and the table's filter on the latest status."""

import re
import uuid
from typing import Any

from console_support import (
    CREATED,
    DELETED,
    V1,
    LiveTenant,
    assert_accessible,
    screenshot,
)
from playwright.async_api import Page, expect
from test_console_table import record_list_requests

from support import bearer, wait_until

IN_A_ROW = re.compile(r"^Failures in a row: [1-9]\d*$")


def health(page: Page, webhook: dict[str, Any]) -> Any:
    return page.locator(f'#webhooks-body tr[data-id="{webhook["id"]}"] td.health')


async def wait_health(live: LiveTenant, webhook: dict[str, Any], **expected: Any) -> dict[str, Any]:
    """The webhook from the API once its fields have the expected values."""

    async def reached() -> dict[str, Any] | None:
        current = (await live.get(webhook["id"])).json()
        return current if all(current[k] == v for k, v in expected.items()) else None

    return await wait_until(reached, timeout=30)


async def percent(page: Page, share: float) -> str:
    return await page.evaluate(
        "s => new Intl.NumberFormat('en', {style: 'percent', maximumFractionDigits: 1}).format(s)",
        share,
    )


async def test_health_in_the_table_and_the_panel_follows_deliveries(
    open_console: Any,
    live: LiveTenant,
) -> None:
    path = f"/hooks/health-{uuid.uuid4().hex}"
    webhook = await live.create(name="health", url=live.url(path))
    quiet = await live.create(name="quiet", eventTypes=[DELETED])
    page = await open_console(live.auth)
    await expect(health(page, webhook).locator(".last-status")).to_have_text("No deliveries yet")
    await expect(health(page, quiet).locator(".rates")).to_have_text(
        "Success rate: 1 h: — · 24 h: —"
    )

    await live.routed({webhook["id"]})
    await live.publish(CREATED)
    ok = await wait_health(live, webhook, lastStatus="success")
    await page.get_by_role("button", name="Refresh").click()
    cell = health(page, webhook)
    await expect(cell.locator(".last-status")).to_have_text("Success")
    await expect(cell.locator("time")).to_have_attribute("datetime", ok["lastDeliveryAt"])
    await expect(cell.locator(".rates")).to_contain_text("1 h: 100% · 24 h: 100%")
    await expect(cell.locator(".failures, .retries")).to_have_count(0)

    live.receiver.respond(path, status=503)  # retried: 1 s, 2 s, 4 s in tests
    await live.publish(CREATED)
    await wait_health(live, webhook, lastStatus="fail", pendingRetries=1)
    await page.get_by_role("button", name="Refresh").click()
    await expect(cell.locator(".last-status")).to_have_text("Failed")
    await expect(cell.locator(".failures")).to_have_text(IN_A_ROW)
    await expect(cell.locator(".retries")).to_have_text("Retries pending: 1")
    await expect(cell.locator("time")).not_to_have_attribute("datetime", ok["lastDeliveryAt"])
    await screenshot(page, "health")
    await assert_accessible(page, "table with health")

    live.receiver.respond(path, status=200)  # the next retry succeeds
    healed = await wait_health(live, webhook, lastStatus="success", pendingRetries=0)
    await page.get_by_role("button", name="Refresh").click()
    await expect(cell.locator(".last-status")).to_have_text("Success")
    await expect(cell.locator(".failures, .retries")).to_have_count(0)
    hour = await percent(page, healed["successRate1h"])
    day = await percent(page, healed["successRate24h"])
    await expect(cell.locator(".rates")).to_contain_text(f"1 h: {hour} · 24 h: {day}")
    assert hour != "100%"

    await page.get_by_role("button", name="Actions for health").click()
    await page.get_by_role("menuitem", name="Edit").click()
    panel = page.get_by_role("dialog", name="Edit webhook")
    shown = panel.get_by_role("region", name="Delivery health")
    await expect(shown.locator('dd[data-field="lastStatus"]')).to_have_text("Success")
    await expect(shown.locator('dd[data-field="lastDeliveryAt"] time')).to_have_attribute(
        "datetime", healed["lastDeliveryAt"]
    )
    await expect(shown.locator('dd[data-field="consecutiveFailures"]')).to_have_text("0")
    await expect(shown.locator('dd[data-field="successRate1h"]')).to_have_text(hour)
    await expect(shown.locator('dd[data-field="successRate24h"]')).to_have_text(day)
    await expect(shown.locator('dd[data-field="pendingRetries"]')).to_have_text("0")
    assert await shown.locator("input, textarea, select").count() == 0  # read-only
    await assert_accessible(page, "edit panel with health")


async def test_the_latest_status_filter_is_sent_to_the_api(
    open_console: Any,
    live: LiveTenant,
) -> None:
    good_path, bad_path = (f"/hooks/{kind}-{uuid.uuid4().hex}" for kind in ("good", "bad"))
    live.receiver.respond(bad_path, status=503)
    good = await live.create(name="good", url=live.url(good_path))
    bad = await live.create(name="bad", url=live.url(bad_path))
    await live.create(name="never", eventTypes=[DELETED])  # gets nothing
    await live.routed({good["id"], bad["id"]})
    await live.publish(CREATED)
    await wait_health(live, good, lastStatus="success")
    await wait_health(live, bad, lastStatus="fail")

    page = await open_console(live.auth)
    requests = record_list_requests(page)
    rows = page.locator("#webhooks-body td.name")
    await expect(rows).to_have_count(3)
    header = page.locator('#webhooks-head th[data-column="health"]')
    assert await header.get_attribute("aria-sort") is None  # the API does not sort on it

    for label, value, names in (("Failed", "fail", ["bad"]), ("Success", "success", ["good"])):
        await page.get_by_role("button", name="Filter: Last delivery").click()
        popover = page.get_by_role("group", name="Filter: Last delivery")
        await popover.get_by_label("Latest delivery status").select_option(label=label)
        if value == "fail":
            await assert_accessible(page, "latest status filter")
        await popover.get_by_role("button", name="Apply").click()
        await expect(rows).to_have_text(names)
        assert requests[-1]["lastStatus"] == [value], requests[-1]
        listed = await live.api.get(V1, params={"lastStatus": value}, headers=bearer(live.auth))
        assert [w["name"] for w in listed.json()["data"]] == names
        filter_button = page.get_by_role("button", name="Filter: Last delivery")
        await expect(filter_button).to_have_attribute("aria-pressed", "true")
    await page.get_by_role("button", name="Clear all filters").click()
    await expect(rows).to_have_count(3)
    assert "lastStatus" not in requests[-1]
