"""Shard leases (decision 4): webhook churn rebalances nothing, and shards move cleanly."""

import asyncio
import re
import signal
from typing import Any

import httpx
import pytest
from test_delivery_engine import V1, Scenario, unique_path

from hookstream_dev import infra
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet, free_port
from support import receiver_url, wait_until


@pytest.fixture
def scenario(api: httpx.AsyncClient, stack: ServiceSet, publisher: Any, token: Any) -> Scenario:
    return Scenario(api, stack, publisher, token)


async def _publish_steadily(scenario: Scenario, count: int, per_second: float) -> list[Any]:
    events = []
    for _ in range(count):
        events += await scenario.publish()
        await asyncio.sleep(1 / per_second)
    return events


def _ids(receiver: Receiver, path: str) -> list[str]:
    return [r.headers["webhook-id"] for r in receiver.received(path)]


async def _shards_owned(url: str) -> int:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"{url}/metrics")).text
    match = re.search(r"^hookstream_dispatcher_shards_owned (\S+)$", text, re.M)
    return int(float(match[1])) if match else -1


async def test_webhook_churn_during_load_delivers_nothing_twice(
    scenario: Scenario, receiver: Receiver
) -> None:
    path = unique_path("steady")
    await scenario.webhook(receiver_url(receiver, path))
    load = asyncio.create_task(_publish_steadily(scenario, 300, 100))
    churned = []
    for i in range(15):
        body = {
            "name": f"churn {i}",
            "url": receiver_url(receiver, unique_path("churn")),
            "eventTypes": ["com.qlik.v1.user.created"],
        }
        response = await scenario.api.post(V1, json=body, headers=scenario.auth)
        assert response.status_code == 201, response.text
        churned.append(response.json()["id"])
        if i % 3 == 2:
            gone = churned.pop(0)
            deleted = await scenario.api.delete(f"{V1}/{gone}", headers=scenario.auth)
            assert deleted.status_code == 204
        await asyncio.sleep(0.15)
    events = await load
    await receiver.wait_for(len(events), timeout=60, path=path)
    await asyncio.sleep(2)  # a duplicate would arrive within this time
    ids = _ids(receiver, path)
    assert len(ids) == len(set(ids)) == len(events)


async def test_shards_move_to_a_second_dispatcher_and_back_without_loss(
    scenario: Scenario, receiver: Receiver, stack: ServiceSet
) -> None:
    paths = [unique_path(f"handover{i}") for i in range(4)]
    for path in paths:
        await scenario.webhook(receiver_url(receiver, path))
    second = ServiceSet(
        env=stack.env,
        ports={"dispatcher": free_port()},
        log_dir=infra.STATE_DIR / "test-logs" / f"{stack.env['HOOKSTREAM_TOPIC_PREFIX']}-second",
    )
    load = asyncio.create_task(_publish_steadily(scenario, 400, 50))
    try:
        await asyncio.to_thread(second.start, "dispatcher")
        await wait_until(
            lambda: _both_own_some(stack.url("dispatcher"), second.url("dispatcher")), timeout=30
        )
        await asyncio.sleep(2)
        second.stop("dispatcher", sig=signal.SIGTERM)  # graceful: hands its shards back
        await wait_until(lambda: _owns_all(stack.url("dispatcher")), timeout=30)
    finally:
        second.stop_all()
    events = await load
    for path in paths:
        await receiver.wait_for(len(events), timeout=60, path=path)
    await asyncio.sleep(2)
    delivered = [_ids(receiver, path) for path in paths]
    assert all(len(set(ids)) == len(events) for ids in delivered), "a delivery was lost"
    duplicates = sum(len(ids) - len(set(ids)) for ids in delivered)
    print(f"\nhandover under load: {duplicates} of {4 * len(events)} deliveries arrived twice")
    assert duplicates <= 0.001 * 4 * len(events)


async def _both_own_some(first: str, second: str) -> bool:
    return await _shards_owned(first) > 0 and await _shards_owned(second) > 0


async def _owns_all(url: str) -> bool:
    return await _shards_owned(url) == 64
