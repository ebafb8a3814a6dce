"""Tracing without a collector: the settings, the context carried in Kafka headers, the spans'
attributes, and the dispatcher's attempt continuing a job's trace into its retry and outcome.
The spans go to the SDK's in-memory exporter; the e2e test (test_tracing_jaeger) uses Jaeger."""

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import structlog
from aiokafka.structs import ConsumerRecord
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from test_attempts import Producer, Receiver, Writer, attempts, record

from hookstream_common import tracing
from hookstream_common.tracing import TracingSettings

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Tracing on, into memory (not the global provider: no other test sees it)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    yield exporter
    provider.shutdown()


def finished(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    [span] = [s for s in exporter.get_finished_spans() if s.name == name]
    return span


def test_tracing_is_on_only_with_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not TracingSettings().enabled
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert TracingSettings().enabled
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not TracingSettings().enabled


def test_the_sampler_is_the_one_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.1")
    description = tracing._sampler(TracingSettings()).get_description()
    assert description.startswith("ParentBased{root:TraceIdRatioBased{0.1}")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    assert tracing._sampler(TracingSettings()).get_description() == "AlwaysOffSampler"
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "sometimes")
    with pytest.raises(ValueError, match="traces_sampler"):
        TracingSettings()


def test_off_nothing_is_written_or_read() -> None:
    assert tracing.headers() is None
    assert tracing.extract([("traceparent", TRACEPARENT.encode())]) is None
    with tracing.span("x") as span:
        assert span is None
    assert tracing.current_span_context() is None


def test_a_record_carries_the_span_it_was_sent_in(spans: InMemorySpanExporter) -> None:
    with tracing.sending("hookstream.deliveries.w1", "hookstream.deliveries.{webhookId}"):
        headers = tracing.headers()
    sent = finished(spans, "send hookstream.deliveries.{webhookId}")
    assert sent.kind is SpanKind.PRODUCER
    assert sent.attributes["messaging.destination.name"] == "hookstream.deliveries.w1"
    context = sent.context
    value = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    assert headers == [("traceparent", value.encode())]
    consumed = ConsumerRecord("t", 2, 9, 0, 0, None, b"", None, 0, 0, headers)
    with tracing.consuming("match", consumed):
        pass
    match = finished(spans, "match t")
    assert match.kind is SpanKind.CONSUMER
    assert match.context.trace_id == sent.context.trace_id
    assert match.parent is not None and match.parent.span_id == sent.context.span_id


def test_the_span_of_an_attempt_keeps_secrets_out_of_its_url(spans: InMemorySpanExporter) -> None:
    url = "https://user:pw@hooks.example.com:8443/in?token=secret#frag"
    with tracing.http_attempt(None, url, {"hookstream.attempt": 2}) as span:
        tracing.http_result(span, 503, None, "retry", "5s")
    post = finished(spans, "POST")
    assert post.kind is SpanKind.CLIENT
    assert post.attributes["url.full"] == "https://hooks.example.com:8443/in"
    assert post.attributes["server.address"] == "hooks.example.com"
    assert post.attributes["http.response.status_code"] == 503
    assert post.attributes["error.type"] == "503"
    assert post.attributes["hookstream.retry.tier"] == "5s"
    assert post.status.status_code is StatusCode.ERROR


def test_log_lines_inside_a_span_carry_its_trace_id(spans: InMemorySpanExporter) -> None:
    assert "trace_id" not in tracing.add_trace_id(None, "info", {})
    with tracing.span("x") as span:
        line: dict[str, Any] = tracing.add_trace_id(None, "info", {"event": "hello"})
    assert span is not None
    assert line["trace_id"] == f"{span.get_span_context().trace_id:032x}"


class KeepingHeaders(Producer):
    """Also keeps the headers of what was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[Any] = []

    async def send_and_wait(self, topic: str, value: bytes, **options: Any) -> None:
        self.headers.append(options.get("headers"))
        await super().send_and_wait(topic, value)


async def test_an_attempt_continues_its_job_and_its_retry_continues_it(
    spans: InMemorySpanExporter,
) -> None:
    producer, writer = KeepingHeaders(), Writer()
    job = replace(record(), headers=[("traceparent", TRACEPARENT.encode())])
    with structlog.testing.capture_logs(processors=[tracing.add_trace_id]) as lines:
        await attempts(Receiver(503), producer, writer).run(job)
    post = finished(spans, "POST")
    assert f"{post.context.trace_id:032x}" == TRACEPARENT.split("-")[1]
    assert post.parent is not None and f"{post.parent.span_id:016x}" == TRACEPARENT.split("-")[2]
    assert post.attributes["hookstream.outcome"] == "retry"
    [[(name, value)]] = producer.headers
    assert name == "traceparent" and f"{post.context.span_id:016x}" in value.decode()
    [outcome] = writer.outcomes
    assert outcome.trace == post.context
    [attempted] = [line for line in lines if line["event"] == "delivery attempted"]
    assert attempted["trace_id"] == TRACEPARENT.split("-")[1]
