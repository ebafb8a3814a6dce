"""Which shard a webhook belongs to, and how its shard's owner learns that work is waiting.

Decision 4: a webhook belongs to shard `stable_hash(webhookId) mod S`, and the dispatcher that
owns partition k of `hookstream.dispatch.shards` owns shard k. That owner reads only the
delivery topics that have work: whoever queues a job (the matcher, the retry tiers, a recovery)
then writes a wake-up, the webhook id, to the shard's partition. A wake-up is written after
the job is acknowledged, so an owner that starts reading a shard at its end and then scans the
shard's topics for uncommitted jobs misses neither.
"""

import asyncio
import hashlib
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaProducer

from hookstream_common.topics import Topics


@lru_cache(maxsize=1 << 17)
def shard_of(webhook_id: str, shards: int) -> int:
    """The webhook's shard: the same on every machine and every Python run (unlike `hash`)."""
    digest = hashlib.blake2b(webhook_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


async def wake_owners(
    producer: AIOKafkaProducer, topics: Topics, shards: int, webhook_ids: Iterable[str]
) -> list[asyncio.Future[Any]]:
    """Write one wake-up per webhook to its shard; the futures resolve on the broker's ack.

    Call it only after the jobs themselves are acknowledged (see the module's docstring).
    """
    return [
        await producer.send(
            topics.dispatch_shards,
            b"",
            key=webhook_id.encode(),
            partition=shard_of(webhook_id, shards),
        )
        for webhook_id in set(webhook_ids)
    ]
