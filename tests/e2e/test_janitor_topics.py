"""The janitor deletes a deleted webhook's topic once the dispatchers have drained it."""

import asyncio
import os
import subprocess
import sys
import uuid
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from e2e.scenario import Scenario

from hookstream_common.kafka import client_options
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from support import receiver_url, wait_until


async def _topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(**client_options(bootstrap))
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def _janitor_once(stack: ServiceSet) -> None:
    subprocess.run(
        [sys.executable, "-m", "hookstream_janitor.main", "--once"],
        env={**os.environ, **stack.env},
        check=True,
        timeout=60,
        capture_output=True,
    )


async def test_a_drained_topic_of_a_deleted_webhook_is_deleted(
    api: Any, stack: ServiceSet, publisher: Any, token: Any, receiver: Receiver
) -> None:
    path = f"/hooks/reaped-{uuid.uuid4().hex}"
    async with Scenario(api, stack, publisher, token) as scenario:
        webhook = await scenario.webhook(receiver_url(receiver, path))
        topic = f"{stack.env['HOOKSTREAM_TOPIC_PREFIX']}.deliveries.{webhook.id}"
        await scenario.publish()
        await receiver.wait_for(1, timeout=30, path=path)
        assert topic in await _topics(stack.env["KAFKA_BOOTSTRAP_SERVERS"])
        await scenario.client.delete_webhook(webhook.id)

    async def reaped() -> bool:
        await asyncio.to_thread(_janitor_once, stack)
        return topic not in await _topics(stack.env["KAFKA_BOOTSTRAP_SERVERS"])

    await wait_until(reaped, timeout=60, interval=1)
