"""The matcher: a faust stream-table join of events against each tenant's webhooks.

`webhooks` (compacted, keyed by tenant) feeds a table tenant -> `TenantRoutes`; `events` (keyed
by tenant, same partition count) is joined against it, so each instance holds only the tenants of
its own partitions. Every match becomes a `DeliveryJob` on the webhook's own topic. A record that
is not an event goes to the dead-letter topic with the reason; an event keyed by something other
than its tenant is re-keyed first, so it lands on the partition that holds its tenant.
"""

from datetime import UTC, datetime
from typing import Any

import faust
import prometheus_client
import structlog
from faust.web import Request, Response, View

from hookstream_common.events import Event, InvalidEvent
from hookstream_common.jobs import DeliveryJob
from hookstream_common.kafka import EVENT_PARTITIONS
from hookstream_common.routing import TenantRoutes
from hookstream_matcher.settings import MatcherSettings

log = structlog.get_logger(__name__)

EVENTS = prometheus_client.Counter(
    "hookstream_matcher_events_total", "Events read, by outcome.", ["outcome"]
)
JOBS = prometheus_client.Counter(
    "hookstream_matcher_jobs_total", "Delivery jobs written, one per event and webhook."
)


def create_app(settings: MatcherSettings) -> faust.App:
    """Build the faust app with its topics, table, agents and operations pages."""
    topics = settings.topics
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        store="memory://",
        datadir=settings.matcher_data_dir,
        topic_partitions=EVENT_PARTITIONS,
        topic_replication_factor=settings.kafka_replication_factor,
        producer_acks=-1,
        producer_linger=settings.matcher_linger_seconds,
        web_host=settings.matcher_host,
        web_port=settings.matcher_port,
        web_in_thread=False,
        key_serializer="raw",
        value_serializer="raw",
    )
    events = app.topic(topics.events, partitions=EVENT_PARTITIONS)
    dlq = app.topic(topics.events_dlq)
    webhooks = app.topic(topics.webhooks, partitions=EVENT_PARTITIONS)
    routes = app.Table("routes", default=None, partitions=EVENT_PARTITIONS)
    delivery_topics: dict[str, faust.TopicT] = {}

    def delivery_topic(webhook_id: str) -> faust.TopicT:
        if webhook_id not in delivery_topics:
            delivery_topics[webhook_id] = app.topic(topics.deliveries(webhook_id))
        return delivery_topics[webhook_id]

    @app.agent(webhooks)
    async def learn_webhooks(stream: faust.StreamT) -> None:
        """Keep the table equal to the compacted topic: a tombstone removes the tenant."""
        async for tenant, value in stream.items():
            tenant_id = tenant.decode()
            if value is None:
                routes.pop(tenant_id, None)
            else:
                routes[tenant_id] = value
            log.info("webhook set updated", tenant_id=tenant_id, present=value is not None)

    @app.agent(events)
    async def match_events(stream: faust.StreamT) -> None:
        """Route each event to every webhook of its tenant that wants it."""
        async for record in stream.events():
            await _route(record)

    parsed: dict[str, tuple[bytes, TenantRoutes]] = {}

    def _routes_of(tenant_id: str) -> TenantRoutes:
        """The tenant's routes, parsed once per version of the table's value."""
        value = routes.get(tenant_id)
        if value is None:
            return TenantRoutes(tenant_id, ())
        cached = parsed.get(tenant_id)
        if cached is None or cached[0] is not value:
            cached = (value, TenantRoutes.loads(value))
            parsed[tenant_id] = cached
        return cached[1]

    async def _route(record: faust.EventT) -> None:
        raw: bytes = record.value
        try:
            event = Event.parse(raw)
        except InvalidEvent as exc:
            EVENTS.labels("invalid").inc()
            await dlq.send(key=record.key, value=raw, headers=_dlq_headers(record, str(exc)))
            log.warning("event sent to the dead-letter topic", reason=str(exc))
            return
        tenant = event.tenant_id.encode()
        if record.key != tenant:
            EVENTS.labels("rekeyed").inc()
            await events.send(key=tenant, value=raw)
            return
        matched = _routes_of(event.tenant_id).matching(event)
        triggered_at = datetime.now(UTC)
        for route in matched:
            job = DeliveryJob.for_event(route.id, event, triggered_at)
            await delivery_topic(route.id).send(key=route.id.encode(), value=job.dumps())
        JOBS.inc(len(matched))
        EVENTS.labels("matched" if matched else "unmatched").inc()
        log.debug(
            "event routed",
            event_id=event.id,
            tenant_id=event.tenant_id,
            event_type=event.type,
            webhooks=[r.id for r in matched],
        )

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(
                prometheus_client.generate_latest(),
                content_type=prometheus_client.CONTENT_TYPE_LATEST,
            )

    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/readyz")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            ready = app.rebalancing is False and bool(app.consumer.assignment())
            return self.json(
                {"status": "ready" if ready else "starting"}, status=200 if ready else 503
            )

    @app.page("/routes/{tenant_id}")
    class Routes(View):
        """What this instance routes for a tenant: the first place to look when nothing arrives."""

        async def get(self, request: Request, tenant_id: str) -> Response:
            value = routes.get(tenant_id)
            if value is None:
                return self.json({"tenantId": tenant_id, "webhooks": None}, status=404)
            known = TenantRoutes.loads(value)
            return self.json(
                {
                    "tenantId": tenant_id,
                    "webhooks": [
                        {"id": r.id, "eventTypes": list(r.event_types), "enabled": r.enabled}
                        for r in known.routes
                    ],
                }
            )

    return app


def _dlq_headers(record: faust.EventT, reason: str) -> dict[str, Any]:
    """Why and from where, so a person can find and replay the original."""
    message = record.message
    return {
        "hookstream-dlq-reason": reason.encode(),
        "hookstream-source": f"{message.topic}/{message.partition}/{message.offset}".encode(),
    }
