"""The delivery engine on real Kafka, Postgres and HTTPS receivers.

The session's dispatcher runs with a compressed retry schedule (1s, 2s, 4s: four attempts in
all) and auto-disable after 4 failures over 2 seconds; see conftest.py.
"""

import base64
import itertools
import socket
import statistics
import time
import uuid
from datetime import datetime

import asyncpg
import orjson
import pytest
from e2e.scenario import CREATED, Scenario, marker_delivered, unique_path
from standardwebhooks.webhooks import Webhook as StandardWebhook

from hookstream_client import Delivery, Webhook
from hookstream_dev.receiver import Receiver
from support import (
    jobs_routed_to,
    matcher_routes,
    metric,
    receiver_url,
    scrape,
    wait_until,
)

SECRET = "e" * 40
HEARD = "hookstream_dispatcher_webhook_changes_heard_total"


async def next_attempt_at(database_url: str, delivery_id: str) -> datetime | None:
    """When the delivery's next attempt is due; None when no retry is scheduled."""
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetchval(
            "SELECT next_attempt_at FROM deliveries WHERE id = $1", uuid.UUID(delivery_id)
        )
    finally:
        await connection.close()


async def attempts_of(database_url: str, delivery_id: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetch(
            "SELECT * FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt",
            uuid.UUID(delivery_id),
        )
    finally:
        await connection.close()


async def test_5xx_retries_through_the_schedule_to_exhaustion(
    scenario: Scenario, receiver: Receiver, database_url: str
) -> None:
    path = unique_path("broken")
    receiver.respond(path, status=500, body="boom")
    webhook = await scenario.webhook(receiver_url(receiver, path))
    await scenario.publish()

    arrived = await receiver.wait_for(4, timeout=30, path=path)
    assert len({r.headers["webhook-id"] for r in arrived}) == 1, "same delivery id on retries"
    gaps = [b.received_at - a.received_at for a, b in itertools.pairwise(arrived)]
    for gap, tier in zip(gaps, (1, 2, 4), strict=True):
        assert tier * 0.85 <= gap <= tier * 1.1 + 1.5, (gaps, tier)

    async def failed_for_good() -> Delivery | None:
        deliveries = await scenario.deliveries(webhook)
        return next((d for d in deliveries if "Failed for good" in d.status_message), None)

    delivery = await wait_until(failed_for_good, timeout=10)
    assert delivery.status == "fail"
    assert "Failed for good after 4 attempts" in delivery.status_message
    # No marker here: 4 failures in 2 s disable the webhook (see conftest.py). What the last
    # attempt stored says whether it scheduled another.
    assert await next_attempt_at(database_url, delivery.id) is None, "no retry is scheduled"
    assert len(receiver.received(path)) == 4, "1 attempt + 3 retries, then no more"
    rows = await attempts_of(database_url, delivery.id)
    assert [r["attempt"] for r in rows] == [1, 2, 3, 4]
    assert {r["status_code"] for r in rows} == {500}
    assert rows[0]["duration_ms"] > 0
    assert delivery.response is not None and delivery.response.body == "boom"


@pytest.mark.parametrize(("status", "headers"), [(404, {}), (302, {"Location": "/elsewhere"})])
async def test_4xx_and_redirects_fail_without_retry(
    scenario: Scenario,
    receiver: Receiver,
    database_url: str,
    status: int,
    headers: dict[str, str],
) -> None:
    path = unique_path(f"status{status}")
    receiver.respond(path, status=status, headers=headers)
    webhook = await scenario.webhook(receiver_url(receiver, path))
    await scenario.publish()
    await receiver.wait_for(1, timeout=30, path=path)
    [delivery] = await wait_until(lambda: scenario.deliveries(webhook), timeout=10)
    assert await next_attempt_at(database_url, delivery.id) is None, "no retry is scheduled"
    await marker_delivered(scenario, receiver, path)
    assert len(receiver.received(path)) == 2, "the one attempt, then only the marker"
    assert receiver.received("/elsewhere") == []
    assert delivery.status == "fail"
    assert delivery.response is not None and delivery.response.status_code == status
    if status == 302:
        assert "redirects are not followed" in delivery.status_message


async def test_retry_after_is_honoured(scenario: Scenario, receiver: Receiver) -> None:
    path = unique_path("busy")
    receiver.respond(path, status=429, headers={"Retry-After": "3"})
    await scenario.webhook(receiver_url(receiver, path))
    await scenario.publish()
    first, second = (await receiver.wait_for(2, timeout=30, path=path))[:2]
    # The schedule says 1 s; Retry-After asks for 3, which moves the retry to the 4 s tier.
    assert second.received_at - first.received_at >= 3.0


async def test_410_disables_the_webhook_and_routing_stops(
    scenario: Scenario, receiver: Receiver
) -> None:
    path, witness_path = unique_path("gone"), unique_path("witness")
    receiver.respond(path, status=410)
    webhook = await scenario.webhook(receiver_url(receiver, path))
    await scenario.webhook(receiver_url(receiver, witness_path))
    await scenario.publish()
    await receiver.wait_for(1, timeout=30, path=path)

    async def disabled() -> Webhook | None:
        current = await scenario.get(webhook)
        return current if not current.enabled else None

    current = await wait_until(disabled, timeout=10)
    assert current.disabled_reason_code == "ENDPOINT_GONE"
    assert "410" in (current.disabled_reason or "")

    async def matcher_knows() -> bool:
        routes = await matcher_routes(scenario.stack, scenario.tenant)
        return any(r["id"] == webhook.id and not r["enabled"] for r in routes)

    await wait_until(matcher_knows, timeout=10)
    assert await jobs_routed_to(scenario.stack, webhook.id) == 1
    # The witness takes the same events: once it has them, the matcher has routed them.
    await scenario.publish(2)
    await receiver.wait_for(3, timeout=30, path=witness_path)
    assert await jobs_routed_to(scenario.stack, webhook.id) == 1, "the matcher still routes to it"
    assert len(receiver.received(path)) == 1


async def test_auto_disable_after_a_run_of_failures_and_re_enable_resets(
    scenario: Scenario, receiver: Receiver, database_url: str
) -> None:
    path = unique_path("failing")
    receiver.respond(path, status=503)
    webhook = await scenario.webhook(receiver_url(receiver, path))
    await scenario.publish()

    async def disabled() -> Webhook | None:
        current = await scenario.get(webhook)
        return current if not current.enabled else None

    current = await wait_until(disabled, timeout=30)
    assert current.disabled_reason_code == "DELIVERY_FAILURES"
    assert len(receiver.received(path)) >= 4

    await scenario.client.enable_webhook(webhook.id)
    enabled = await scenario.get(webhook)
    assert enabled.enabled and enabled.disabled_reason_code is None
    connection = await asyncpg.connect(database_url)
    health = await connection.fetchrow(
        "SELECT * FROM webhook_health WHERE webhook_id = $1", uuid.UUID(webhook.id)
    )
    await connection.close()
    assert health["consecutive_failures"] == 0, "enabling resets the run of failures"
    assert health["failing_since"] is None
    assert enabled.consecutive_failures == 0 and enabled.last_status == "fail"  # still shown


@pytest.mark.parametrize(
    "host", ["private.hookstream.test", "metadata.hookstream.test", "v6-loopback.hookstream.test"]
)
async def test_non_public_addresses_are_refused(scenario: Scenario, host: str) -> None:
    webhook = await scenario.webhook(f"https://{host}/hook")
    await scenario.publish()
    [delivery] = await wait_until(lambda: scenario.deliveries(webhook), timeout=30)
    assert delivery.status == "fail"
    assert "blocked" in delivery.status_message
    assert delivery.response is None


async def test_connection_refused_is_retried(
    scenario: Scenario, receiver: Receiver, database_url: str
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    webhook = await scenario.webhook(f"https://receiver.hookstream.test:{closed_port}/x")
    await scenario.publish()

    async def retried() -> list[asyncpg.Record]:
        deliveries = await scenario.deliveries(webhook)
        if not deliveries:
            return []
        rows = await attempts_of(database_url, deliveries[0].id)
        return rows if len(rows) >= 2 else []

    rows = await wait_until(retried, timeout=30)
    assert {r["error_class"] for r in rows} == {"connection"}


async def test_signatures_verify_with_standard_webhooks_and_cloudevents_shape(
    scenario: Scenario, receiver: Receiver
) -> None:
    path = unique_path("signed")
    await scenario.webhook(
        receiver_url(receiver, path), secret=SECRET, enableCloudEventDelivery=True
    )
    [event] = await scenario.publish()
    [request] = await receiver.wait_for(1, timeout=30, path=path)

    verifier = StandardWebhook(base64.b64encode(SECRET.encode()).decode())
    payload = verifier.verify(request.body, request.headers)
    assert payload["specversion"] == "1.0"
    assert payload["id"] == event["eventId"] and payload["type"] == CREATED
    assert payload["tenantid"] == scenario.tenant and payload["data"] == event["data"]
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 30

    tampered = {**request.headers, "webhook-timestamp": str(int(time.time()) - 3600)}
    with pytest.raises(Exception, match=r"(?i)timestamp"):
        verifier.verify(request.body, tampered)


async def test_changes_reach_the_dispatcher_within_a_second(
    scenario: Scenario, receiver: Receiver
) -> None:
    old, new = unique_path("old"), unique_path("new")
    webhook = await scenario.webhook(receiver_url(receiver, old))
    await scenario.publish()
    await receiver.wait_for(1, timeout=30, path=old)

    change = [
        {"op": "replace", "path": "/url", "value": receiver_url(receiver, new)},
        {"op": "add", "path": "/headers/X-Version", "value": "2"},
    ]
    dispatcher = scenario.stack.url("dispatcher")
    heard = metric(await scrape(dispatcher), HEARD)
    await scenario.client.patch_webhook(webhook.id, change)

    async def change_heard() -> bool:
        return metric(await scrape(dispatcher), HEARD) > heard

    await wait_until(change_heard, timeout=1.0, interval=0.05)
    await scenario.publish()
    [request] = await receiver.wait_for(1, timeout=30, path=new)
    assert request.headers["x-version"] == "2"
    assert len(receiver.received(old)) == 1


async def test_bad_receivers_do_not_hold_back_a_healthy_webhook(
    scenario: Scenario, receiver: Receiver
) -> None:
    healthy = unique_path("healthy")
    await scenario.webhook(receiver_url(receiver, healthy))

    async def healthy_latencies(count: int) -> list[float]:
        before = len(receiver.received(healthy))
        events = await scenario.publish(count)
        arrived = (await receiver.wait_for(before + count, timeout=30, path=healthy))[before:]
        sent = {e["eventId"]: e["eventTime"] for e in events}
        return sorted(
            r.received_at
            - datetime.fromisoformat(sent[orjson.loads(r.body)["eventId"]]).timestamp()
            for r in arrived
        )

    alone = await healthy_latencies(20)

    hang, slow = unique_path("hang"), unique_path("slow")
    receiver.respond(hang, delay=60)  # past the 10 s timeout
    receiver.respond(slow, delay=9)  # just inside it
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    await scenario.webhook(receiver_url(receiver, hang))
    await scenario.webhook(receiver_url(receiver, slow))
    await scenario.webhook(f"https://receiver.hookstream.test:{closed_port}/refused")
    beside_bad = await healthy_latencies(20)

    print(
        f"\nhealthy webhook latency, alone: median {statistics.median(alone) * 1000:.0f} ms,"
        f" max {alone[-1] * 1000:.0f} ms; beside a hanging, a 9 s and a refusing receiver:"
        f" median {statistics.median(beside_bad) * 1000:.0f} ms, max {beside_bad[-1] * 1000:.0f} ms"
    )
    assert len(beside_bad) == 20
    assert beside_bad[-1] < 3.0, "the healthy webhook waited for the bad ones"
    # Each bad webhook had at most its own concurrency (default 8) of requests in flight.
    assert len(receiver.received(slow)) <= 8 and len(receiver.received(hang)) <= 8
