"""Shard leases (decision 4): webhook churn rebalances nothing, and shards move cleanly."""

import asyncio
import dataclasses
import signal
import uuid
from collections import Counter
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from e2e.scenario import V1, Scenario, unique_path

from hookstream_common.jobs import DeliveryJob
from hookstream_common.kafka import client_options, producer
from hookstream_common.shards import shard_of
from hookstream_common.topics import Topics
from hookstream_dev import infra
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet, free_port
from hookstream_dispatcher.reader import TopicReader
from support import carrying, metric, receiver_url, scrape, wait_until


async def _publish_steadily(scenario: Scenario, count: int, per_second: float) -> list[Any]:
    events = []
    for _ in range(count):
        events += await scenario.publish()
        await asyncio.sleep(1 / per_second)
    return events


def _ids(receiver: Receiver, path: str) -> list[str]:
    return [r.headers["webhook-id"] for r in receiver.received(path)]


async def _shards_owned(url: str) -> int:
    return int(metric(await scrape(url), "hookstream_dispatcher_shards_owned", absent=-1))


async def _first_job(bootstrap: str, topic: str) -> ConsumerRecord:
    consumer = AIOKafkaConsumer(topic, **client_options(bootstrap), auto_offset_reset="earliest")
    await consumer.start()
    try:
        return await consumer.getone()
    finally:
        await consumer.stop()


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
    await _markers_delivered(scenario, receiver, [path])
    ids = _ids(receiver, path)
    assert len(ids) == len(set(ids)) == len(events) + 1


async def test_a_topic_is_read_only_while_it_has_work(
    scenario: Scenario, receiver: Receiver, stack: ServiceSet
) -> None:
    """Idle topics are let go (so 10,000 webhooks cost what their busy ones cost); a wake-up
    takes one up again, and a job that no wake-up announced is found by the shard scan."""
    path = unique_path("idle")
    webhook = await scenario.webhook(receiver_url(receiver, path))
    url = stack.url("dispatcher")
    reading = "hookstream_dispatcher_topics_read"
    found = "hookstream_dispatcher_topics_found_total"
    await scenario.publish()
    await receiver.wait_for(1, timeout=10, path=path)

    await wait_until(lambda: _is(url, reading, 0), timeout=60)
    woken = metric(await scrape(url), found, by="wake-up")
    await scenario.publish()
    await receiver.wait_for(2, timeout=10, path=path)
    assert metric(await scrape(url), found, by="wake-up") > woken

    await wait_until(lambda: _is(url, reading, 0), timeout=60)
    scanned = metric(await scrape(url), found, by="scan")
    topic = f"{stack.env['HOOKSTREAM_TOPIC_PREFIX']}.deliveries.{webhook.id}"
    job = await _first_job(stack.env["KAFKA_BOOTSTRAP_SERVERS"], topic)
    kafka = producer(stack.env["KAFKA_BOOTSTRAP_SERVERS"])
    await kafka.start()
    try:
        fresh = _as_new_delivery(job.value)
        await kafka.send_and_wait(topic, fresh, key=job.key, partition=0)  # no wake-up
    finally:
        await kafka.stop()
    await receiver.wait_for(3, timeout=30, path=path)
    assert metric(await scrape(url), found, by="scan") > scanned


async def test_a_wake_up_names_the_offset_after_its_webhooks_jobs(
    scenario: Scenario, receiver: Receiver, stack: ServiceSet
) -> None:
    """The owner reads a topic only up to the jobs announced, so the wake-up must say where
    they end: for two events, the offset after the second job."""
    path = unique_path("wake-offset")
    webhook = await scenario.webhook(receiver_url(receiver, path))
    await scenario.publish()
    await receiver.wait_for(1, timeout=10, path=path)
    await scenario.publish()
    await receiver.wait_for(2, timeout=10, path=path)
    topics = Topics(stack.env["HOOKSTREAM_TOPIC_PREFIX"])
    shard = shard_of(webhook.id, int(stack.env.get("HOOKSTREAM_DISPATCH_SHARDS", "64")))
    bootstrap = stack.env["KAFKA_BOOTSTRAP_SERVERS"]
    consumer = AIOKafkaConsumer(**client_options(bootstrap), auto_offset_reset="earliest")
    partition = TopicPartition(topics.dispatch_shards, shard)
    consumer.assign([partition])
    await consumer.start()
    try:
        end = (await consumer.end_offsets([partition]))[partition]
        values = []
        while await consumer.position(partition) < end:
            batch = await consumer.getmany(partition, timeout_ms=1000)
            values += [r.value for r in batch.get(partition, []) if r.key == webhook.id.encode()]
    finally:
        await consumer.stop()
    assert values[-1] == b"2", values


async def test_the_reader_answers_for_topics_it_is_not_assigned(stack: ServiceSet) -> None:
    """A topic placed past its last announced job is in the book but never assigned: asking
    whether it was fetched must say no, not trip aiokafka's assertion (it ended a dispatcher
    during a broker freeze)."""
    topics = Topics(stack.env["HOOKSTREAM_TOPIC_PREFIX"])
    reader = TopicReader(
        client_options(stack.env["KAFKA_BOOTSTRAP_SERVERS"]),
        f"{topics.prefix}-reader-test",
        anchor=TopicPartition(topics.dispatch_shards, 0),
    )
    await reader.start()
    try:
        unassigned = TopicPartition(topics.deliveries(str(uuid.uuid4())), 0)
        assert not reader.has_fetched(unassigned)
        reader.resume(unassigned)
        assert reader.assigned == frozenset()
        assert reader.consumer.paused() == {TopicPartition(topics.dispatch_shards, 0)}
    finally:
        await reader.close()


def _as_new_delivery(raw: bytes) -> bytes:
    """A job like `raw` for a new event: a copy of a delivered job is (rightly) not sent again
    (hookstream_dispatcher.once)."""
    job = DeliveryJob.loads(raw)
    event = dataclasses.replace(job.event, id=str(uuid.uuid4()))
    return DeliveryJob.for_event(job.webhook_id, event, job.triggered_at).dumps()


async def _is(url: str, name: str, value: float) -> bool:
    return metric(await scrape(url), name, absent=-1) == value


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
        sent = len(receiver.received())
        await wait_until(lambda: len(receiver.received()) >= sent + 100, timeout=30)
        # Graceful: hands its shards back. Waited for in a thread, since the receiver runs in
        # this event loop: blocking it would time out the requests in flight, and enough of
        # those within seconds disable the webhooks.
        await asyncio.to_thread(second.stop, "dispatcher", sig=signal.SIGTERM)
        await wait_until(lambda: _owns_all(stack.url("dispatcher")), timeout=30)
    finally:
        await asyncio.to_thread(second.stop_all)
    events = await load
    for path in paths:
        await receiver.wait_for(len(events), timeout=120, path=path)
    await _markers_delivered(scenario, receiver, paths)
    delivered = [_ids(receiver, path) for path in paths]
    assert all(len(set(ids)) == len(events) + 1 for ids in delivered), "a delivery was lost"
    duplicates = sum(len(ids) - len(set(ids)) for ids in delivered)
    print(f"\nhandover under load: {duplicates} of {4 * len(events)} deliveries arrived twice")
    assert duplicates <= 0.001 * 4 * len(events), _arrivals_of_duplicates(receiver, paths)


async def _markers_delivered(scenario: Scenario, receiver: Receiver, paths: list[str]) -> None:
    """One more event, waited for at every path: a repeat of any earlier job is read, and so
    sent, before it (a webhook's jobs are read in order), where a fixed sleep only hoped."""
    [marker] = await scenario.publish()
    for path in paths:
        await wait_until(lambda path=path: carrying(receiver, path, marker), timeout=60)


def _arrivals_of_duplicates(receiver: Receiver, paths: list[str]) -> str:
    """Which deliveries arrived twice, and when: to tell a handover's repeat from a retry."""
    lines = []
    for path in paths:
        requests = receiver.received(path)
        counts = Counter(r.headers["webhook-id"] for r in requests)
        for delivery_id in (d for d, n in counts.items() if n > 1):
            times = [
                f"{r.received_at:.3f}" for r in requests if r.headers["webhook-id"] == delivery_id
            ]
            lines.append(f"{path} {delivery_id} at {', '.join(times)}")
    return "\n".join(lines)


async def _both_own_some(first: str, second: str) -> bool:
    return await _shards_owned(first) > 0 and await _shards_owned(second) > 0


async def _owns_all(url: str) -> bool:
    return await _shards_owned(url) == 64
