"""Entry point of `hookstream-matcher`: the router, its operations endpoints, and start-up.

Start-up waits for Kafka (decision 10): the operations endpoints answer from the first second,
`/readyz` with 503 until the route table of the owned partitions is loaded.
"""

import asyncio
import sys

import structlog
import uvloop
from aiohttp import web
from aiokafka.errors import UnknownTopicOrPartitionError

from hookstream_common.kafka import (
    core_topics,
    create_missing_topics,
    partition_counts,
    producer,
)
from hookstream_common.logging import configure_logging
from hookstream_common.ops import start_ops_server, stop_on_signals
from hookstream_common.resilience import Readiness, Turns, kafka_check, keep_trying
from hookstream_common.tracing import configure_tracing
from hookstream_matcher.settings import MatcherSettings
from hookstream_matcher.worker import Matcher

log = structlog.get_logger(__name__)


async def _started_matcher(settings: MatcherSettings, turns: Turns) -> Matcher:
    """A matcher whose producer and consumers are connected; new clients on every try."""
    kafka = producer(
        settings.kafka_bootstrap_servers,
        settings.kafka_security,
        linger_ms=int(settings.matcher_linger_seconds * 1000),
    )
    matcher = Matcher(settings, kafka, turns)
    try:
        await matcher.start()
    except BaseException:
        await matcher.close()
        raise
    return matcher


class NotCoPartitioned(Exception):
    """The events and webhooks topics differ in partitions: routing would miss webhooks."""


def co_partitioning_problem(counts: dict[str, int], events: str, webhooks: str) -> str | None:
    """What is wrong with the two joined topics, with what to do; None when they fit.

    The matcher joins events partition k with the webhooks of partition k (decision 3), so
    unequal counts send a tenant's events and its webhooks to different matchers.
    """
    if counts[events] == counts[webhooks]:
        return None
    return (
        f"{events} has {counts[events]} partitions and {webhooks} has {counts[webhooks]}; "
        "they must be equal. Add partitions to the smaller one (kafka-topics --alter "
        "--partitions) and set HOOKSTREAM_EVENT_PARTITIONS to the same count"
    )


async def _check_co_partitioned(settings: MatcherSettings) -> None:
    """Raise `NotCoPartitioned` unless both joined topics exist with the same partitions."""
    topics = settings.topics
    counts = await partition_counts(settings, [topics.events, topics.webhooks])
    if topics.events not in counts or topics.webhooks not in counts:
        # Just created: the broker answering may not know them yet. Ask again.
        raise UnknownTopicOrPartitionError(f"{topics.events} or {topics.webhooks}")
    problem = co_partitioning_problem(counts, topics.events, topics.webhooks)
    if problem is not None:
        raise NotCoPartitioned(problem)
    if counts[topics.events] != settings.event_partitions:
        log.warning(
            "topics have another partition count than HOOKSTREAM_EVENT_PARTITIONS; using theirs",
            partitions=counts[topics.events],
            setting=settings.event_partitions,
        )


async def _start(settings: MatcherSettings, turns: Turns) -> Matcher:
    """Wait for Kafka, then connect: a broker outage at start-up is waited out, not fatal;
    topics that cannot be joined are (`NotCoPartitioned`)."""
    topics = core_topics(settings)
    await keep_trying(
        lambda: create_missing_topics(settings, topics),
        "Kafka (core topics)",
    )
    await keep_trying(lambda: _check_co_partitioned(settings), "Kafka (topic partitions)")
    return await keep_trying(lambda: _started_matcher(settings, turns), "Kafka (clients)")


async def _close(matcher: Matcher, grace: float) -> None:
    """Leave the group and disconnect, within the grace: an unreachable broker must not hold
    the process past what its supervisor waits (the uncommitted work is routed again)."""
    try:
        await asyncio.wait_for(matcher.close(), grace)
    except TimeoutError:
        log.warning("leaving the group took longer than the grace; stopping anyway", grace=grace)


async def serve(settings: MatcherSettings) -> None:
    """Run until SIGTERM or SIGINT; the batch in hand is finished and committed."""
    current: list[Matcher] = []

    async def routes_page(request: web.Request) -> web.Response:
        """What this instance routes for a tenant: the first place to look when nothing arrives."""
        tenant_id = request.match_info["tenant_id"]
        known = current[0].table.routes_of(tenant_id) if current else None
        if known is None:
            return web.json_response({"tenantId": tenant_id, "webhooks": None}, status=404)
        webhooks = [
            {"id": r.id, "eventTypes": list(r.event_types), "enabled": r.enabled}
            for r in known.routes
        ]
        return web.json_response({"tenantId": tenant_id, "webhooks": webhooks})

    turns = Turns(settings.matcher_batch_timeout_seconds, settings.matcher_shutdown_grace_seconds)
    readiness = Readiness(
        {"kafka": kafka_check(settings.kafka_bootstrap_servers, settings.kafka_security)},
        lambda: bool(current) and current[0].started,
        turns,
    )
    ops = await start_ops_server(
        settings.matcher_host,
        settings.matcher_port,
        readiness,
        {"/routes/{tenant_id}": routes_page},
    )
    readiness.start()
    startup = asyncio.create_task(_start(settings, turns))

    stop_on_signals(startup, current)
    try:
        try:
            matcher = await startup
        except asyncio.CancelledError:
            return
        current.append(matcher)
        log.info("matcher started", group=settings.group_id)
        try:
            await matcher.run()
        finally:
            await _close(matcher, settings.matcher_shutdown_grace_seconds)
    finally:
        await readiness.stop()
        await ops.cleanup()
        log.info("matcher stopped")


def main() -> None:
    """Entry point."""
    settings = MatcherSettings()
    configure_logging("matcher", settings.log_level, settings.log_format)
    configure_tracing("matcher", settings.tracing)
    try:
        uvloop.run(serve(settings))
    except NotCoPartitioned as exc:
        log.critical("refusing to start", problem=str(exc))
        sys.exit(2)


if __name__ == "__main__":
    main()
