"""With HOOKSTREAM_WEBHOOK_CONCURRENCY=1 a webhook's first attempts arrive in publish order."""

import asyncio
import signal
from typing import Any

import orjson
from test_delivery_engine import Scenario, unique_path

from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from support import receiver_url


async def test_concurrency_one_delivers_in_publish_order(
    api: Any, stack: ServiceSet, publisher: Any, token: Any, receiver: Receiver
) -> None:
    path = unique_path("ordered")
    receiver.respond(path, delay=0.01)
    async with Scenario(api, stack, publisher, token) as scenario:
        await scenario.webhook(receiver_url(receiver, path))
    ordered = ServiceSet(
        env={**stack.env, "HOOKSTREAM_WEBHOOK_CONCURRENCY": "1"},
        ports={"dispatcher": stack.ports["dispatcher"]},
        log_dir=stack.log_dir,
    )
    stack.stop("dispatcher", sig=signal.SIGTERM)
    try:
        await asyncio.to_thread(ordered.start, "dispatcher")
        events = await scenario.publish(60)
        arrived = await receiver.wait_for(60, timeout=60, path=path)
    finally:
        ordered.stop_all()
        await asyncio.to_thread(stack.start, "dispatcher")
    sent = [e["eventId"] for e in events]
    assert [orjson.loads(r.body)["eventId"] for r in arrived] == sent
