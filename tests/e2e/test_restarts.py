"""Services killed and restarted: on services of this module's own, never the session's.

The module's `stack` (and its `publisher`) is an installation of its own (support.installation),
so a restart that goes wrong fails only these tests, not every later test of the shared stack.
The matcher rebuilds its route table on a restart and on a first start from nothing (issue 8,
points 1 and 2); a dispatcher killed or stopped loses nothing and commits what it finished; a
dispatcher with HOOKSTREAM_WEBHOOK_CONCURRENCY=1 keeps first attempts in publish order.
"""

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from e2e.scenario import Scenario, marker_delivered, unique_path

from hookstream_client import AsyncClient
from hookstream_common.sdk import EventPublisher
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from support import carrying, installation, new_tenant, receiver_url, wait_routed, wait_until

APP_CREATED = "com.qlik.v1.app.created"
SERVICES = ("matcher", "api", "dispatcher")  # the matcher first: see the first-start test


@pytest.fixture(scope="module")
async def stack(settings_env: dict[str, str]) -> AsyncIterator[ServiceSet]:
    """This module's services, in place of the session's: its tests stop and kill them."""
    async with installation(settings_env, SERVICES, "restarts") as services:
        yield services


@pytest.fixture(scope="module")
async def publisher(stack: ServiceSet) -> AsyncIterator[EventPublisher]:
    """The producer SDK, pointed at this module's topics."""
    kafka, prefix = stack.env["KAFKA_BOOTSTRAP_SERVERS"], stack.env["HOOKSTREAM_TOPIC_PREFIX"]
    async with EventPublisher(kafka, prefix) as pub:
        yield pub


async def _webhook(client: AsyncClient, url: str) -> str:
    body = {"name": "restart", "url": url, "eventTypes": [APP_CREATED]}
    return (await client.create_webhook(body)).id


async def _delivered(receiver: Receiver, publisher: EventPublisher, tenant: str, path: str) -> None:
    event = sample_event(APP_CREATED, tenant, "u1")
    await publisher.publish(event)
    await wait_until(lambda: carrying(receiver, path, event), timeout=30)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_a_restarted_matcher_routes_as_before(
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    client_for: Callable[..., AsyncClient],
    sig: signal.Signals,
) -> None:
    tenant = new_tenant()
    path = unique_path("restart")
    webhook_id = await _webhook(client_for(tenant, "u1"), receiver_url(receiver, path))
    await wait_routed(stack, tenant, {webhook_id})
    await _delivered(receiver, publisher, tenant, path)

    stack.stop("matcher", sig=sig)
    await asyncio.to_thread(stack.start, "matcher")

    await wait_routed(stack, tenant, {webhook_id})
    await _delivered(receiver, publisher, tenant, path)


async def test_a_first_start_from_nothing_routes(
    settings_env: dict[str, str], receiver: Receiver, token: Any
) -> None:
    """A new installation (its own topics and database) whose matcher starts first."""
    async with installation(settings_env, SERVICES, "fresh") as services:
        tenant = new_tenant()
        path = unique_path("fresh")
        async with AsyncClient(services.url("api"), token(tenant, "u1"), timeout=15) as client:
            webhook_id = await _webhook(client, receiver_url(receiver, path))
        await wait_routed(services, tenant, {webhook_id})
        env = services.env
        async with EventPublisher(
            env["KAFKA_BOOTSTRAP_SERVERS"], env["HOOKSTREAM_TOPIC_PREFIX"]
        ) as publisher:
            await _delivered(receiver, publisher, tenant, path)


async def test_dispatcher_killed_before_commit_redelivers_after_restart(
    scenario: Scenario, receiver: Receiver
) -> None:
    path = unique_path("slow")
    receiver.respond(path, status=200, delay=5.0)
    webhook = await scenario.webhook(receiver_url(receiver, path))
    await scenario.publish()
    await receiver.wait_for(1, timeout=30, path=path)
    # The dispatcher has consumed the job and is waiting for the answer: nothing is committed.
    scenario.stack.stop("dispatcher", sig=signal.SIGKILL)
    receiver.respond(path, status=200)
    await asyncio.to_thread(scenario.stack.start, "dispatcher")

    first, second = (await receiver.wait_for(2, timeout=60, path=path))[:2]
    assert first.headers["webhook-id"] == second.headers["webhook-id"]

    async def succeeded() -> bool:
        deliveries = await scenario.deliveries(webhook)
        return len(deliveries) == 1 and deliveries[0].status == "success"

    await wait_until(succeeded, timeout=20)


async def test_sigterm_finishes_the_request_in_flight(
    scenario: Scenario, receiver: Receiver
) -> None:
    path = unique_path("graceful")
    receiver.respond(path, status=200, delay=2.0)
    webhook = await scenario.webhook(receiver_url(receiver, path))
    await scenario.publish()
    await receiver.wait_for(1, timeout=30, path=path)
    started = time.monotonic()
    # In a thread: the receiver shares this event loop and must answer meanwhile.
    await asyncio.to_thread(scenario.stack.stop, "dispatcher", signal.SIGTERM)
    assert time.monotonic() - started < 15
    await asyncio.to_thread(scenario.stack.start, "dispatcher")
    [delivery] = await wait_until(lambda: scenario.deliveries(webhook), timeout=15)
    assert delivery.status == "success"
    await marker_delivered(scenario, receiver, path)
    sent = [r.headers["webhook-id"] for r in receiver.received(path)]
    assert sent.count(delivery.id) == 1, "finished and committed, so not sent again"


async def test_sigkill_in_the_middle_of_1000_deliveries_loses_none(
    scenario: Scenario, receiver: Receiver
) -> None:
    paths = [unique_path(f"bulk{i}") for i in range(4)]
    for path in paths:
        await scenario.webhook(receiver_url(receiver, path))
    events = []
    for _ in range(250):
        events += await scenario.publish()
    expected = 250 * len(paths)

    def arrived() -> int:
        return sum(len(receiver.received(path)) for path in paths)

    await wait_until(lambda: arrived() >= 200, timeout=60, interval=0.05)
    scenario.stack.stop("dispatcher", sig=signal.SIGKILL)
    killed_at = arrived()
    await asyncio.to_thread(scenario.stack.start, "dispatcher")

    def distinct() -> int:
        return sum(len({r.headers["webhook-id"] for r in receiver.received(p)}) for p in paths)

    await wait_until(lambda: distinct() >= expected, timeout=120)
    duplicates = arrived() - expected
    print(f"\nkilled after {killed_at} of {expected}; {duplicates} arrived twice")
    assert distinct() == expected
    event_ids = {e["eventId"] for e in events}
    for path in paths:
        received = {orjson.loads(r.body)["eventId"] for r in receiver.received(path)}
        assert received == event_ids


async def test_concurrency_one_delivers_in_publish_order(
    scenario: Scenario, stack: ServiceSet, receiver: Receiver
) -> None:
    path = unique_path("ordered")
    receiver.respond(path, delay=0.01)
    await scenario.webhook(receiver_url(receiver, path))
    ordered = ServiceSet(
        env={**stack.env, "HOOKSTREAM_WEBHOOK_CONCURRENCY": "1"},
        ports={"dispatcher": stack.ports["dispatcher"]},
        log_dir=stack.log_dir,
    )
    await asyncio.to_thread(stack.stop, "dispatcher", sig=signal.SIGTERM)
    try:
        await asyncio.to_thread(ordered.start, "dispatcher")
        events = await scenario.publish(60)
        arrived = await receiver.wait_for(60, timeout=60, path=path)
    finally:
        await asyncio.to_thread(ordered.stop_all)
        await asyncio.to_thread(stack.start, "dispatcher")
    sent = [e["eventId"] for e in events]
    assert [orjson.loads(r.body)["eventId"] for r in arrived] == sent
