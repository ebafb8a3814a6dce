"""The poison corpus's harness: feed a bad record, then prove the three things issue 9 asks.

For every bad input: the next good event reaches the receiver within `DELIVERED_WITHIN`
seconds; the bad record is parked with its reason (or, where parking is not the design, the
evidence of what happened instead); and a metric counted it. `TALLY` keeps the count per stage
for the session's report.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, RecordMetadata

from hookstream_common.sdk import EventPublisher
from hookstream_common.topics import Topics
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver, RecordedRequest
from hookstream_dev.stack import ServiceSet
from support import Metrics, metric, scrape

MAX_EVENT_BYTES = 64 * 1024
"""The corpus's event limit: an over-size event still fits in a broker message (1 MiB)."""
DELIVERED_WITHIN = 5.0
"""The next good event reaches the receiver within this many seconds of a bad record."""
PARKED_WITHIN = 10.0
CREATED = "com.qlik.v1.app.created"
STAGES = ("events", "webhooks", "wake-ups", "deliveries", "retries", "history", "api")
DEAD_LETTERS = "hookstream_dead_letters_total"
MATCHER_EVENTS = "hookstream_matcher_events_total"


@dataclass
class StageTally:
    """What one stage was fed and what became of it."""

    tried: int = 0
    parked: int = 0
    counted: int = 0
    other_evidence: int = 0
    """Not parked by design: re-keyed, last good route set kept, API answered 4xx."""
    delivered_after: int = 0
    failed: list[str] = field(default_factory=list)


TALLY: dict[str, StageTally] = {stage: StageTally() for stage in STAGES}


@dataclass
class Case:
    """One bad input; the test sets what it proved."""

    stage: str
    name: str
    parked: bool = False
    counted: bool = False
    other_evidence: bool = False
    delivered_after: bool = False


class Poison:
    """One tenant with one webhook on the receiver, producers, dead letters and /metrics."""

    def __init__(
        self,
        stack: ServiceSet,
        receiver: Receiver,
        publisher: EventPublisher,
        kafka: AIOKafkaProducer,
        topics: Topics,
        tenant: str,
        webhook_id: str,
        path: str,
        auth: dict[str, str],
    ) -> None:
        self.stack = stack
        self.receiver = receiver
        self.publisher = publisher
        self.kafka = kafka
        self.topics = topics
        self.tenant = tenant
        self.webhook_id = webhook_id
        self.path = path
        self.auth = auth
        self.dead_letters: list[ConsumerRecord] = []

    @asynccontextmanager
    async def case(self, stage: str, name: str) -> AsyncIterator[Case]:
        """Count one bad input of `stage`; a failure is listed in the report."""
        tally = TALLY[stage]
        tally.tried += 1
        case = Case(stage, name)
        try:
            yield case
        except BaseException:
            tally.failed.append(name)
            raise
        finally:
            tally.parked += case.parked
            tally.counted += case.counted
            tally.other_evidence += case.other_evidence
            tally.delivered_after += case.delivered_after

    async def produce(
        self, topic: str, value: bytes | None, key: bytes | None, partition: int | None = None
    ) -> RecordMetadata:
        """Put a record on a topic exactly as given; return where it landed."""
        return await self.kafka.send_and_wait(topic, value, key=key, partition=partition)

    async def scrape(self, service: str) -> Metrics:
        """The service's /metrics."""
        return await scrape(self.stack.ops_url(service))

    async def counted(
        self,
        service: str,
        before: Metrics,
        name: str,
        within: float = PARKED_WITHIN,
        **labels: str,
    ) -> float:
        """Wait until the metric grew past its value in `before`; return the growth."""
        deadline = time.monotonic() + within
        while True:
            grown = metric(await self.scrape(service), name, **labels) - metric(
                before, name, **labels
            )
            if grown >= 1:
                return grown
            if time.monotonic() > deadline:
                raise AssertionError(f"{service}: {name}{labels} did not grow within {within} s")
            await asyncio.sleep(0.05)

    async def good_event(self, tenant: str | None = None) -> str:
        """Publish a good event (of the harness tenant by default); return its id."""
        return await self.publisher.publish(sample_event(CREATED, tenant or self.tenant, "u1"))

    def arrived(self, needle: str) -> RecordedRequest | None:
        """The receiver's request to the harness webhook whose body holds `needle`."""
        raw = needle.encode()
        return next((r for r in self.receiver.received(self.path) if raw in r.body), None)

    async def delivered(self, needle: str, within: float = DELIVERED_WITHIN) -> float:
        """Wait until a request holding `needle` arrived; the seconds it took; fail after
        `within`."""
        started = time.monotonic()
        while self.arrived(needle) is None:
            if time.monotonic() - started > within:
                raise AssertionError(f"{needle} not delivered within {within} s")
            await asyncio.sleep(0.02)
        return time.monotonic() - started

    async def next_good_event_delivered(self, case: Case) -> str:
        """Publish a good event and require it at the receiver within 5 s; return its id."""
        event_id = await self.good_event()
        await self.delivered(event_id)
        case.delivered_after = True
        return event_id

    async def parked(
        self, match: Callable[[ConsumerRecord], bool], within: float = PARKED_WITHIN
    ) -> ConsumerRecord:
        """The dead letter (on either dead-letter topic) that `match` picks."""
        deadline = time.monotonic() + within
        while True:
            found = next((r for r in self.dead_letters if match(r)), None)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no dead letter matched within {within} s")
            await asyncio.sleep(0.05)

    async def parked_from(self, where: RecordMetadata) -> tuple[ConsumerRecord, str]:
        """The dead letter of the record at `where` (by its `hookstream-source` header), and
        its reason."""
        source = f"{where.topic}/{where.partition}/{where.offset}".encode()
        record = await self.parked(lambda r: headers_of(r).get("hookstream-source") == source)
        return record, headers_of(record)["hookstream-dlq-reason"].decode()

    def source_parked(self, where: RecordMetadata) -> bool:
        """Whether a dead letter of the record at `where` has arrived so far."""
        source = f"{where.topic}/{where.partition}/{where.offset}".encode()
        return any(headers_of(r).get("hookstream-source") == source for r in self.dead_letters)

    def services_alive(self) -> None:
        """No service exited: a bad record must never end one."""
        for name in ("api", "matcher", "dispatcher", "janitor"):
            process = self.stack.processes.get(name)
            assert process is not None and process.poll() is None, (
                f"{name} exited\n{self.stack.tail(name)}"
            )


def headers_of(record: ConsumerRecord) -> dict[str, bytes]:
    """A record's headers as a mapping."""
    return dict(record.headers or ())


def legacy_event(tenant: str, **changes: Any) -> dict[str, Any]:
    """A good legacy event of `tenant`, with top-level fields replaced (None removes one)."""
    event = sample_event(CREATED, tenant, "u1")
    for key, value in changes.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value
    return event
