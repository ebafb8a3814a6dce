"""The poison corpus (issue 9): bad records into every stage, and the pipeline keeps delivering.

Reuses the e2e fixtures (Kafka, Postgres, the four services, the HTTPS receiver) with one
change: events are limited to `MAX_EVENT_BYTES`, so an over-size event fits under the broker's
1 MiB message limit and reaches the matcher. These fixtures are other definitions than
tests/e2e's, so the corpus runs its own stack (own database and topic prefix) and nothing it
feeds can disturb an e2e test.

The session prints the number of bad inputs per stage and writes it to
`.hookstream/poison-corpus.json`.
"""

import asyncio
import contextlib
import json
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from e2e import conftest as e2e
from e2e.conftest import *  # noqa: F403  (the stack's fixtures; settings_env is overridden)
from poison_harness import CREATED, DELIVERED_WITHIN, MAX_EVENT_BYTES, TALLY, Poison

from hookstream_client import AsyncClient
from hookstream_common.kafka import client_options, producer
from hookstream_common.sdk import EventPublisher
from hookstream_common.topics import Topics
from hookstream_dev import infra
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from support import bearer, new_tenant, receiver_url, wait_routed

REPORT = infra.STATE_DIR / "poison-corpus.json"
_STARTED = time.time()


@pytest.fixture(scope="session")
def settings_env(servers: dict[str, str], database_url: str, tls_files: Any) -> dict[str, str]:
    """The e2e environment, with the event size limit of this corpus."""
    env = e2e.settings_env.__wrapped__(servers, database_url, tls_files)
    return {**env, "HOOKSTREAM_MAX_EVENT_BYTES": str(MAX_EVENT_BYTES)}


async def _read_dead_letters(consumer: AIOKafkaConsumer, into: list[ConsumerRecord]) -> None:
    while True:
        batch = await consumer.getmany(timeout_ms=200)
        for records in batch.values():
            into.extend(records)


@pytest.fixture(scope="session")
async def poison(
    stack: ServiceSet,
    receiver: Receiver,
    publisher: EventPublisher,
    servers: dict[str, str],
    settings_env: dict[str, str],
    token: Any,
) -> AsyncIterator[Poison]:
    """One tenant with one webhook on the receiver, and everything a case needs."""
    topics = Topics(settings_env["HOOKSTREAM_TOPIC_PREFIX"])
    tenant = new_tenant()
    caller = token(tenant, "u1", admin=True)
    path = f"/hooks/poison-{uuid.uuid4().hex}"
    async with AsyncClient(stack.url("api"), caller, timeout=15) as client:
        webhook = await client.create_webhook(
            {"name": "poison", "url": receiver_url(receiver, path), "eventTypes": [CREATED]}
        )
    webhook_id = webhook.id
    await wait_routed(stack, tenant, {webhook_id})
    kafka = producer(servers["kafka"])
    await kafka.start()
    consumer = AIOKafkaConsumer(
        topics.events_dlq,
        topics.dispatch_dlq,
        **client_options(servers["kafka"]),
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    harness = Poison(
        stack, receiver, publisher, kafka, topics, tenant, webhook_id, path, bearer(caller)
    )
    reading = asyncio.create_task(_read_dead_letters(consumer, harness.dead_letters))
    try:
        # The first event also waits out the dispatcher's first fetch of the new topic.
        await harness.delivered(await harness.good_event(), within=30)
        yield harness
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        await consumer.stop()
        await kafka.stop()


def _git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=infra.REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return ""
    return result.stdout.strip()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The table of bad inputs per stage, also written to `.hookstream/poison-corpus.json`."""
    if not any(t.tried for t in TALLY.values()):
        return
    header = f"{'stage':<11}{'tried':>7}{'parked':>8}{'counted':>9}{'other':>7}{'next ok':>9}"
    lines = [header, "-" * len(header)]
    for stage, t in TALLY.items():
        lines.append(
            f"{stage:<11}{t.tried:>7}{t.parked:>8}{t.counted:>9}{t.other_evidence:>7}"
            f"{t.delivered_after:>9}"
        )
    total = sum(t.tried for t in TALLY.values())
    lines.append(f"{'total':<11}{total:>7}")
    terminalreporter.write_sep("=", "poison corpus: bad inputs per stage")
    for line in lines:
        terminalreporter.write_line(line)
    for stage, t in TALLY.items():
        for case in t.failed:
            terminalreporter.write_line(f"FAILED {stage}: {case}")
    terminalreporter.write_line(
        "parked = found on a dead-letter topic with its reason; counted = a metric grew; "
        "other = not parked by design (event re-keyed, last good route set kept, API 4xx); "
        f"next ok = the next good event reached the receiver within {DELIVERED_WITHIN:.0f} s"
    )
    report = {
        "generatedAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "seconds": round(time.time() - _STARTED, 1),
        "deliveredWithinSeconds": DELIVERED_WITHIN,
        "maxEventBytes": MAX_EVENT_BYTES,
        "stages": {
            stage: {
                "tried": t.tried,
                "parked": t.parked,
                "counted": t.counted,
                "otherEvidence": t.other_evidence,
                "nextGoodEventDelivered": t.delivered_after,
                "failed": t.failed,
            }
            for stage, t in TALLY.items()
        },
        "total": total,
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
    terminalreporter.write_line(f"written to {REPORT}")
