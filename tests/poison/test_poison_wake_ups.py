"""Garbage on the shard topic, where the dispatchers read wake-ups.

A wake-up names a webhook whose topic has work (hookstream_common.shards). One that names none
is logged with where it came from and counted (`hookstream_dead_letters_total{stage="wake-ups"}`);
it is not parked, since it asks for nothing, and the shard's wake-ups behind it are read.
"""

from typing import Any

import pytest
from poison_harness import DEAD_LETTERS, Poison

CORPUS: list[tuple[str, Any]] = [
    ("a key that is not a webhook id", b"not-a-webhook"),
    ("an empty key", b""),
    ("no key", None),
    ("a binary key", b"\xff\xfe\x00\x01"),
    ("a webhook id with a suffix", b"00000000-0000-4000-8000-000000000000/../x"),
]


@pytest.mark.parametrize(("name", "key"), CORPUS, ids=[c[0] for c in CORPUS])
async def test_an_unreadable_wake_up_is_counted_and_delivery_goes_on(
    poison: Poison, name: str, key: Any
) -> None:
    async with poison.case("wake-ups", name) as case:
        before = await poison.scrape("dispatcher")
        for shard in (0, 63):  # whichever dispatcher owns a shard reads it
            await poison.produce(poison.topics.dispatch_shards, b"", key, partition=shard)
        await poison.counted("dispatcher", before, DEAD_LETTERS, stage="wake-ups")
        case.counted = True
        await poison.next_good_event_delivered(case)
        poison.services_alive()
