"""Which shard a webhook belongs to, and how its shard's owner learns that work is waiting.

Decision 4: a webhook belongs to shard `stable_hash(webhookId) mod S`, and the dispatcher that
owns partition k of `hookstream.dispatch.shards` owns shard k. That owner reads only the
delivery topics that have work: whoever queues a job (the matcher, the retry tiers, a recovery)
then writes a wake-up to the shard's partition: the webhook id as key, and as value the offset
just after its last job (ASCII digits), so the owner knows how far to read before it can stop
fetching that topic. A wake-up is written after the job is acknowledged, so an owner that
starts reading a shard at its end and then scans the shard's topics for uncommitted jobs
misses neither.
"""

import asyncio
import hashlib
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaProducer
from opentelemetry.context import Context

from hookstream_common import tracing
from hookstream_common.topics import Topics


@lru_cache(maxsize=1 << 17)
def shard_of(webhook_id: str, shards: int) -> int:
    """The webhook's shard: the same on every machine and every Python run (unlike `hash`)."""
    digest = hashlib.blake2b(webhook_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


class JobQueue:
    """The one way a delivery job is queued (decision 11), by the matcher, the retry tiers and
    recoveries alike: produced to its webhook's topic, and, once acknowledged, announced to the
    owner of the webhook's shard with a wake-up.

    Make one per batch: `send` produces a job and returns its ack; `wake` waits for every ack,
    then writes the wake-ups of their webhooks and waits for those. A batch that fails before
    `wake` leaves nothing behind for the next one.
    """

    def __init__(self, producer: AIOKafkaProducer, topics: Topics, shards: int) -> None:
        self._producer = producer
        self._topics = topics
        self._shards = shards
        self._acks: list[tuple[str, asyncio.Future[Any]]] = []

    async def send(
        self, webhook_id: str, job: bytes, trace: Context | None = None
    ) -> asyncio.Future[Any]:
        """Produce one job to its webhook's topic (its only partition: naming it skips the
        key's hash), in a producer span continuing `trace` (default: the current span)."""
        topic = self._topics.deliveries(webhook_id)
        with tracing.sending(topic, self._topics.deliveries("{webhookId}"), trace):
            ack = await self._producer.send(
                topic, job, key=webhook_id.encode(), partition=0, headers=tracing.headers()
            )
        self._acks.append((webhook_id, ack))
        return ack

    async def wake(self) -> None:
        """Wait for the jobs sent, then write one wake-up per webhook to its shard's partition
        and wait for those: a wake-up never goes out before its job is acknowledged."""
        ends: dict[str, int] = {}
        for webhook_id, ack in self._acks:
            end = (await ack).offset + 1
            ends[webhook_id] = max(end, ends.get(webhook_id, 0))
        wakes = [
            await self._producer.send(
                self._topics.dispatch_shards,
                str(end).encode(),
                key=webhook_id.encode(),
                partition=shard_of(webhook_id, self._shards),
            )
            for webhook_id, end in ends.items()
        ]
        await asyncio.gather(*wakes)


def wake_up_end(value: bytes | None) -> int | None:
    """The offset a wake-up says its topic has jobs up to, or None: a wake-up without one (from
    an older version), or unreadable, asks its topic to be read until it goes idle."""
    if value and value.isdigit() and len(value) < 20:
        return int(value)
    return None
