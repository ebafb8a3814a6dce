"""One trace follows an event from the producer to the receiver's answer (issue 23 item 1), in a
real collector: Jaeger v1.75.0, fed by services of their own with the standard OTEL_* variables
set, and read back through Jaeger's query API.

Building Jaeger takes tens of minutes, too long for every `make test`: `make tracing-test` builds
it once per machine and runs this module; `make test` runs it wherever it is built."""

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from hookstream_client import AsyncClient
from hookstream_common.sdk import EventPublisher
from hookstream_dev.events import sample_event
from hookstream_dev.jaeger import JAEGER, Jaeger, running_jaeger
from hookstream_dev.receiver import Receiver
from hookstream_dev.stack import ServiceSet
from support import (
    carrying,
    installation,
    new_tenant,
    private_dir,
    receiver_url,
    wait_routed,
    wait_until,
)

APP_CREATED = "com.qlik.v1.app.created"
Span = dict[str, Any]

pytestmark = pytest.mark.skipif(
    not JAEGER.is_file(), reason="Jaeger is not built here: `make tracing-test` builds and runs it"
)


@pytest.fixture(scope="module")
def jaeger() -> Iterator[Jaeger]:
    """Jaeger on free ports for this module."""
    with private_dir("jaeger") as directory:
        try:
            with running_jaeger(directory) as running:
                yield running
        except FileNotFoundError as exc:
            pytest.fail(str(exc))


def _tags(span: Span) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span["tags"]}


def _parent(span: Span) -> str | None:
    return next((r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"), None)


def _chain(found: dict[str, Any], last: Span) -> list[tuple[str, str]]:
    """(service, operation) of `last` and its ancestors, the root first."""
    by_id = {span["spanID"]: span for span in found["spans"]}
    chain: list[tuple[str, str]] = []
    span: Span | None = last
    while span is not None:
        service = found["processes"][span["processID"]]["serviceName"]
        chain.insert(0, (service, span["operationName"]))
        parent = _parent(span)
        span = by_id.get(parent) if parent else None
    return chain


def _log_lines(stack: ServiceSet, instance: str, trace_id: str) -> list[dict[str, Any]]:
    text = (stack.log_dir / f"{instance}.log").read_text(errors="replace")
    return [json.loads(line) for line in text.splitlines() if trace_id in line]


async def test_one_trace_spans_producer_matcher_dispatcher_and_the_receivers_answers(
    jaeger: Jaeger,
    settings_env: dict[str, str],
    receiver: Receiver,
    token: Callable[..., str],
) -> None:
    env = {**settings_env, **jaeger.otel_env()}
    async with installation(env, ("matcher", "api", "dispatcher"), "otel") as stack:
        tenant, path = new_tenant(), "/traced"
        receiver.respond(path, status=503)  # the first attempt fails; its retry succeeds
        async with AsyncClient(stack.url("api"), token(tenant, "u1"), timeout=15) as client:
            body = {"name": "traced", "url": receiver_url(receiver, path)}
            webhook = await client.create_webhook({**body, "eventTypes": [APP_CREATED]})
            await wait_routed(stack, tenant, {webhook.id})

            producer = TracerProvider(resource=Resource.create({SERVICE_NAME: "test-producer"}))
            exporter = OTLPSpanExporter(endpoint=f"{jaeger.otlp_endpoint}/v1/traces")
            producer.add_span_processor(SimpleSpanProcessor(exporter))
            event = sample_event(APP_CREATED, tenant, "u1")
            kafka, prefix = env["KAFKA_BOOTSTRAP_SERVERS"], stack.env["HOOKSTREAM_TOPIC_PREFIX"]
            async with EventPublisher(kafka, prefix, tracer_provider=producer) as publisher:
                await publisher.publish(event)
            await asyncio.to_thread(producer.shutdown)

            await wait_until(lambda: carrying(receiver, path, event), timeout=30)
            receiver.respond(path, status=200)
            await wait_until(lambda: len(carrying(receiver, path, event)) == 2, timeout=30)

            async def delivered() -> Any:
                page = await client.list_deliveries(webhook.id)
                return page.data[0] if [d.status for d in page.data] == ["success"] else None

            delivery = await wait_until(delivered, timeout=20)
        trace_id = delivery.trace_id
        assert trace_id is not None and len(trace_id) == 32

        def complete() -> dict[str, Any] | None:
            found = jaeger.trace(trace_id)
            posts = [s for s in found["spans"] if s["operationName"] == "POST"] if found else []
            return found if len(posts) == 2 else None

        found = await wait_until(complete, timeout=30)
        first, retried = sorted(
            (s for s in found["spans"] if s["operationName"] == "POST"),
            key=lambda s: _tags(s)["hookstream.attempt"],
        )
        events, deliveries = f"{prefix}.events", f"{prefix}.deliveries.{{webhookId}}"
        first_hops = [
            ("test-producer", f"send {events}"),
            ("hookstream-matcher", f"match {events}"),
            ("hookstream-matcher", f"send {deliveries}"),
            ("hookstream-dispatcher", "POST"),
        ]
        assert _chain(found, first) == first_hops
        retry_hop = ("hookstream-dispatcher", f"send {deliveries}")
        assert _chain(found, retried) == [*first_hops, retry_hop, ("hookstream-dispatcher", "POST")]

        failed, succeeded = _tags(first), _tags(retried)
        assert failed["http.request.method"] == "POST"
        assert failed["url.full"] == receiver_url(receiver, path)
        assert failed["server.address"] == "receiver.hookstream.test"
        assert failed["http.response.status_code"] == 503
        assert failed["hookstream.outcome"] == "retry" and "hookstream.retry.tier" in failed
        assert succeeded["http.response.status_code"] == 200
        assert succeeded["hookstream.outcome"] == "success"

        def linked() -> set[str]:
            """The spans of this trace that a history write links to (writes are traces of
            their own, exported in batches, so the last one may arrive after the POSTs)."""
            return {
                ref["spanID"]
                for write in jaeger.traces("hookstream-dispatcher", "history write")
                for span in write["spans"]
                for ref in span["references"]
                if ref["traceID"] == trace_id
            }

        attempts = {first["spanID"], retried["spanID"]}
        await wait_until(lambda: attempts <= linked(), timeout=20)

        lines = _log_lines(stack, "dispatcher", trace_id)
        assert {line["event"] for line in lines} >= {"delivery attempted"}


async def test_the_error_envelope_names_the_apis_trace(
    jaeger: Jaeger, settings_env: dict[str, str]
) -> None:
    env = {**settings_env, **jaeger.otel_env()}
    async with installation(env, ("api",), "otel-api") as stack:
        async with httpx.AsyncClient(base_url=stack.url("api"), timeout=15) as api:
            response = await api.get("/api/v1/webhooks")  # no token: 401
        trace_id = response.json()["traceId"]

        def server_span() -> Span | None:
            """The request's server span, once exported: it ends last, so Jaeger can already
            hold the trace's ASGI send and receive spans without it."""
            found = jaeger.trace(trace_id) or {"spans": []}
            servers = [s for s in found["spans"] if _tags(s).get("span.kind") == "server"]
            assert len(servers) <= 1
            return servers[0] if servers else None

        server = await wait_until(server_span, timeout=30)
        assert server["operationName"] == "GET /api/v1/webhooks"
        assert _tags(server)["http.response.status_code"] == 401
