"""Unreadable route sets on the compacted webhooks topic.

The matcher follows the topic (the dispatcher learns of work from wake-ups, not from it). An
unreadable record is logged with the reason and counted
(`hookstream_dead_letters_total{stage="webhooks"}`); the tenant keeps
its last good route set. It is not copied to a dead-letter topic: the compacted topic itself
keeps it until the API publishes that tenant's next set, and that is where to look for it.
"""

import uuid
from typing import Any

import orjson
import pytest
from poison_harness import CREATED, DEAD_LETTERS, Poison

ROUTE = {
    "id": "00000000-0000-4000-8000-000000000000",
    "event_types": [CREATED],
    "level": "tenant",
    "owner_id": "u1",
    "enabled": True,
    "filter": None,
    "cloud_event": False,
}


def _set(**changes: Any) -> bytes:
    doc: dict[str, Any] = {"tenantId": "{tenant}", "routes": [ROUTE]}
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return orjson.dumps(doc)


# A record without a key cannot be fed: the broker refuses it on a compacted topic.
DECOY = object()
"""Key the record with a tenant of its own, so no real tenant's last good set is replaced."""

CORPUS: list[tuple[str, Any, bytes]] = [
    ("not JSON", DECOY, b"{routes: nope"),
    ("empty bytes", DECOY, b""),
    ("binary with NULs", DECOY, b"\x00\x01\x02\xff" * 16),
    ("JSON array", DECOY, b"[]"),
    ("JSON string", DECOY, b'"routes"'),
    ("no routes", DECOY, _set(routes=None)),
    ("no tenantId", DECOY, _set(tenantId=None)),
    ("routes a string", DECOY, _set(routes="abc")),
    ("routes null", DECOY, b'{"tenantId": "t", "routes": null}'),
    ("route a number", DECOY, _set(routes=[1])),
    ("route missing fields", DECOY, _set(routes=[{"id": "x"}])),
    ("route with unknown field", DECOY, _set(routes=[{**ROUTE, "surprise": 1}])),
    ("event_types a number", DECOY, _set(routes=[{**ROUTE, "event_types": 5}])),
    ("invalid UTF-8 key", b"\xff\xfe-tenant", b"[]"),
    ("the harness tenant's key", "harness", b"not a route set"),
]


@pytest.mark.parametrize(("name", "key", "value"), CORPUS, ids=[c[0] for c in CORPUS])
async def test_an_unreadable_route_set_is_counted_and_routing_goes_on(
    poison: Poison, name: str, key: Any, value: bytes
) -> None:
    async with poison.case("webhooks", name) as case:
        if key is DECOY:
            key = f"poison-decoy-{uuid.uuid4().hex[:8]}".encode()
        elif key == "harness":
            key = poison.tenant.encode()
        matcher = await poison.scrape("matcher")
        await poison.produce(poison.topics.webhooks, value, key)

        # The matcher read it (and counted it) before the good event is published, so the event
        # is routed with whatever it made of it.
        await poison.counted("matcher", matcher, DEAD_LETTERS, stage="webhooks")
        case.counted = True
        # Not parked by design: the tenant keeps its last good set (the harness tenant's webhook
        # still receives), and the record stays on the compacted topic.
        await poison.next_good_event_delivered(case)
        case.other_evidence = True
        poison.services_alive()


POISONOUS_SETS = [
    # The API refuses such a filter, but a set written by another version or by hand is read:
    # the set is refused whole (counted as a webhooks dead letter).
    ("a filter that does not parse", {**ROUTE, "filter": "((( not a filter"}, "webhooks"),
    # The event is parked for that webhook (an events dead letter); other work goes on.
    (
        "a webhook whose delivery topic does not exist",
        {**ROUTE, "id": str(uuid.uuid4())},
        "events",
    ),
]


@pytest.mark.parametrize(
    ("name", "route", "stage"), POISONOUS_SETS, ids=[c[0] for c in POISONOUS_SETS]
)
async def test_a_readable_but_poisonous_route_set_costs_only_its_tenant(
    poison: Poison, name: str, route: dict[str, Any], stage: str
) -> None:
    """A set that parses but could not be routed with costs its tenant only."""
    async with poison.case("webhooks", name) as case:
        decoy = f"poison-decoy-{uuid.uuid4().hex[:8]}"
        value = orjson.dumps({"tenantId": decoy, "routes": [route]})
        matcher = await poison.scrape("matcher")
        await poison.produce(poison.topics.webhooks, value, decoy.encode())
        if stage == "events":
            # The set is applied; an event the matcher reads before the set (another topic)
            # would find no webhook and be parked by nobody.
            await poison.counted("matcher", matcher, "hookstream_matcher_tenants", within=30.0)
        await poison.good_event(tenant=decoy)

        await poison.next_good_event_delivered(case)
        # The matcher asks the broker again before it parks a job for a missing topic (its
        # metadata can lag a topic just made), which under a full suite takes more than 10 s.
        await poison.counted("matcher", matcher, DEAD_LETTERS, within=30.0, stage=stage)
        case.counted = True
        poison.services_alive()
