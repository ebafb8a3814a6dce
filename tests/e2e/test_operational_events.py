"""Operational events (a Hookstream extension) on the real stack: raised when Hookstream disables
a webhook, when a delivery fails for good, and when a failing webhook recovers; delivered signed
to the tenant's other webhooks that subscribe, never to the webhook they are about.

The session's dispatcher retries at 1 s, 2 s and 4 s (four attempts), disables a webhook after 4
failures over 2 s, and counts a success after 2 failures as a recovery; see conftest.py.
"""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import trustme
from aiokafka import AIOKafkaConsumer, TopicPartition
from e2e.scenario import CREATED, V1, Scenario, marker_delivered, unique_path

from hookstream_client import AsyncClient, Webhook
from hookstream_common.kafka import client_options
from hookstream_common.operational import (
    CERTIFICATE_EXPIRING,
    DELIVERY_EXHAUSTED,
    WEBHOOK_DISABLED,
    WEBHOOK_RECOVERED,
)
from hookstream_common.signing import qlik_signature
from hookstream_common.topics import Topics
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from hookstream_janitor.certificates import notice_expiring_certificates
from support import jobs_routed_to, receiver_url, wait_routed, wait_until

SECRET = "o" * 40
TROUBLE = [WEBHOOK_DISABLED, DELIVERY_EXHAUSTED, WEBHOOK_RECOVERED]


def notices(receiver: Receiver, path: str, event_type: str, about: Webhook) -> list[Any]:
    """The events of `event_type` about webhook `about` that arrived at `path`."""
    events = [orjson.loads(r.body) for r in receiver.received(path)]
    return [e for e in events if e["eventType"] == event_type and e["data"]["id"] == about.id]


async def routed_types(stack: ServiceSet, webhook_id: str) -> list[str]:
    """The event types of every job in the webhook's delivery topic (retries included)."""
    consumer = AIOKafkaConsumer(**client_options(stack.env["KAFKA_BOOTSTRAP_SERVERS"]))
    await consumer.start()
    try:
        topic = Topics(stack.env["HOOKSTREAM_TOPIC_PREFIX"]).deliveries(webhook_id)
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        types = []
        while await consumer.position(partition) < end:
            batch = await consumer.getmany(partition, timeout_ms=1000)
            types += [orjson.loads(r.value)["event"]["eventType"] for r in batch.get(partition, [])]
        return types
    finally:
        await consumer.stop()


async def outbox_events(database_url: str, webhook_id: str) -> list[str]:
    """The types of the operational events raised about a webhook so far, in order."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT event->>'eventType' AS type FROM outbox WHERE kind = 'event'"
            " AND webhook_id = $1 ORDER BY id",
            uuid.UUID(webhook_id),
        )
    finally:
        await connection.close()
    return [row["type"] for row in rows]


async def test_the_catalogue_lists_them_under_webhooks(
    scenario: Scenario, api: httpx.AsyncClient
) -> None:
    response = await api.get(f"{V1}/event-types", headers=scenario.auth)
    types = {t["name"]: t for t in response.json()["data"]}
    assert {types[name]["category"] for name in TROUBLE} == {"webhooks"}
    assert all(types[name]["levels"] == ["tenant", "user"] for name in TROUBLE)


async def test_disabled_and_exhausted_reach_a_watcher_signed_and_never_loop(
    scenario: Scenario, receiver: Receiver, database_url: str
) -> None:
    watched, watcher_path, echo_path = (unique_path(n) for n in ("failing", "watcher", "echo"))
    receiver.respond(watched, status=503)
    receiver.respond(echo_path, status=503)
    watcher = await scenario.webhook(
        receiver_url(receiver, watcher_path), name="watcher", eventTypes=TROUBLE, secret=SECRET
    )
    failing = await scenario.webhook(
        receiver_url(receiver, watched), name="orders", eventTypes=[CREATED, *TROUBLE]
    )
    # Fails too, and hears of the first one's trouble: its failures must not start a loop.
    echo = await scenario.webhook(
        receiver_url(receiver, echo_path), name="echo", eventTypes=[WEBHOOK_DISABLED]
    )
    [published] = await scenario.publish()

    await wait_until(lambda: notices(receiver, watcher_path, WEBHOOK_DISABLED, failing), 60)
    [disabled] = notices(receiver, watcher_path, WEBHOOK_DISABLED, failing)
    assert disabled["extensions"] == {
        "tenantId": scenario.tenant,
        "ownerId": failing.owner_id,
        "topLevelResourceId": failing.id,
    }
    assert disabled["data"]["name"] == "orders"
    assert disabled["data"]["disabledReasonCode"] == "DELIVERY_FAILURES"
    assert disabled["data"]["disabledReason"] == (await scenario.get(failing)).disabled_reason
    [request] = [
        r for r in receiver.received(watcher_path) if disabled["eventId"].encode() in r.body
    ]
    assert request.headers["qlik-signature"] == qlik_signature(SECRET, request.body)
    assert receiver.url.split("//")[1] not in request.body.decode(), "no URL in the event"

    await wait_until(lambda: notices(receiver, watcher_path, DELIVERY_EXHAUSTED, failing), 30)
    [exhausted] = notices(receiver, watcher_path, DELIVERY_EXHAUSTED, failing)
    [delivery] = await scenario.deliveries(failing)
    assert exhausted["data"]["deliveryId"] == delivery.id
    assert exhausted["data"]["eventId"] == published["eventId"]
    assert (exhausted["data"]["attempts"], exhausted["data"]["lastStatusCode"]) == (4, 503)

    # The echo failed to deliver the disabled event 4 times: it is disabled in turn, and that
    # reaches the watcher; the delivery it exhausted raised nothing, as it carried trouble news.
    await wait_until(lambda: notices(receiver, watcher_path, WEBHOOK_DISABLED, echo), 60)
    assert await outbox_events(database_url, echo.id) == [WEBHOOK_DISABLED]
    assert await outbox_events(database_url, failing.id) == [DELIVERY_EXHAUSTED, WEBHOOK_DISABLED]
    assert {orjson.loads(r.body)["eventType"] for r in receiver.received(watched)} == {CREATED}
    assert len(receiver.received(echo_path)) == 4
    assert await jobs_routed_to(scenario.stack, watcher.id) == 3


async def test_recovered_reaches_others_never_itself_and_respects_owners(
    scenario: Scenario, receiver: Receiver, client_for: Callable[..., AsyncClient]
) -> None:
    flaky_path, mine_path, admin_path, other_path = (
        unique_path(n) for n in ("flaky", "mine", "admin", "other")
    )
    receiver.respond(flaky_path, status=503)
    flaky = await scenario.webhook(
        receiver_url(receiver, flaky_path), name="flaky", eventTypes=[CREATED, *TROUBLE]
    )
    assert flaky.level == "user" and flaky.owner_id == "u1"
    mine = await scenario.webhook(receiver_url(receiver, mine_path), eventTypes=TROUBLE)
    tenant_wide = await client_for(scenario.tenant, "admin", admin=True).create_webhook(
        {
            "name": "tenant-wide",
            "url": receiver_url(receiver, admin_path),
            "eventTypes": TROUBLE,
            "level": "tenant",
        }
    )
    others = await client_for(scenario.tenant, "u2").create_webhook(
        {"name": "not u1's", "url": receiver_url(receiver, other_path), "eventTypes": TROUBLE}
    )
    await wait_routed(scenario.stack, scenario.tenant, {tenant_wide.id, others.id})
    await scenario.publish()

    await receiver.wait_for(2, timeout=30, path=flaky_path)
    receiver.respond(flaky_path, status=200)  # the next retry, 2 s later, succeeds
    await wait_until(lambda: notices(receiver, mine_path, WEBHOOK_RECOVERED, flaky), 30)
    await wait_until(lambda: notices(receiver, admin_path, WEBHOOK_RECOVERED, flaky), 30)
    [recovered] = notices(receiver, mine_path, WEBHOOK_RECOVERED, flaky)
    [delivery] = await scenario.deliveries(flaky)
    assert delivery.status == "success"
    assert recovered["data"]["deliveryId"] == delivery.id
    assert recovered["data"]["failedAttemptsBefore"] >= 2
    assert (await scenario.get(flaky)).enabled

    # Once the event reached two webhooks, the matcher has routed it to every one that wants it.
    assert set(await routed_types(scenario.stack, flaky.id)) == {CREATED}, "never its own"
    assert await jobs_routed_to(scenario.stack, others.id) == 0, "a user-level webhook of u2"
    assert await jobs_routed_to(scenario.stack, mine.id) == 1


async def test_a_test_event_that_succeeds_after_failures_recovers_the_webhook(
    scenario: Scenario, receiver: Receiver
) -> None:
    """The API's single attempts (test events, resends) keep the same run of failures."""
    flaky_path, watcher_path = unique_path("tried"), unique_path("told")
    receiver.respond(flaky_path, status=500)
    flaky = await scenario.webhook(receiver_url(receiver, flaky_path), name="tried")
    await scenario.webhook(receiver_url(receiver, watcher_path), eventTypes=[WEBHOOK_RECOVERED])
    for _ in range(2):
        assert (await scenario.client.send_test_event(flaky.id)).status == "fail"
    receiver.respond(flaky_path, status=200)
    sent = await scenario.client.send_test_event(flaky.id)
    assert sent.status == "success"

    await wait_until(lambda: notices(receiver, watcher_path, WEBHOOK_RECOVERED, flaky), 30)
    [recovered] = notices(receiver, watcher_path, WEBHOOK_RECOVERED, flaky)
    assert recovered["data"]["deliveryId"] == sent.id
    assert recovered["data"]["failedAttemptsBefore"] == 2


async def test_an_expiring_client_certificate_is_news_to_the_other_webhooks_once(
    scenario: Scenario, receiver: Receiver, database_url: str
) -> None:
    watcher_path, holder_path = unique_path("cert-watcher"), unique_path("cert-holder")
    not_after = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
    leaf = trustme.CA().issue_cert("client.example.com", not_after=not_after)
    await scenario.webhook(receiver_url(receiver, watcher_path), eventTypes=[CERTIFICATE_EXPIRING])
    holder = await scenario.webhook(
        receiver_url(receiver, holder_path),
        name="mtls orders",
        eventTypes=[CREATED, CERTIFICATE_EXPIRING],
        clientCertificate={
            "certificate": leaf.cert_chain_pems[0].bytes().decode(),
            "key": leaf.private_key_pem.bytes().decode(),
        },
    )
    connection = await asyncpg.connect(database_url)
    try:  # what the janitor's pass does, twice: the second finds it noticed already
        for _ in range(2):
            await notice_expiring_certificates(connection, datetime.now(UTC), timedelta(days=14))
    finally:
        await connection.close()

    await wait_until(lambda: notices(receiver, watcher_path, CERTIFICATE_EXPIRING, holder), 60)
    [expiring] = notices(receiver, watcher_path, CERTIFICATE_EXPIRING, holder)
    assert expiring["data"]["name"] == "mtls orders"
    assert "O=trustme" in expiring["data"]["certificateSubject"]
    assert datetime.fromisoformat(expiring["data"]["notAfter"]) == not_after
    assert expiring["data"]["daysLeft"] in (9, 10)
    assert "PRIVATE KEY" not in orjson.dumps(expiring).decode()
    assert await outbox_events(database_url, holder.id) == [CERTIFICATE_EXPIRING]
    await marker_delivered(scenario, receiver, holder_path)
    assert notices(receiver, holder_path, CERTIFICATE_EXPIRING, holder) == [], "not to itself"
