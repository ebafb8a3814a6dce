"""OpenTelemetry tracing, a Hookstream extension (decision 14): off unless an OTLP endpoint is
set through the standard `OTEL_*` variables. See docs/tracing.md.

One trace follows an event across the Kafka hops, its context in W3C `traceparent` record
headers: the producer's span (the SDK's `EventPublisher`) → the matcher's span for the event →
a producer span per job, whose context rides with the job to its delivery topic → the
dispatcher's HTTP client span for each attempt → a retry carries that attempt's context
through its tier topic, so the next attempt joins the same trace. A history write stores many
outcomes in one transaction, so its span links to their attempts instead of joining one trace.
Log lines written inside a span carry its `trace_id` (`add_trace_id`), and the history row
stores it.

Off, the SDK is not even imported, no header is written, and every helper returns at its first
test: the hot path pays a comparison per call.
"""

from collections.abc import Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal
from urllib.parse import urlsplit

from aiokafka.structs import ConsumerRecord
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Headers = Sequence[tuple[str, bytes]]
"""Kafka record headers, as aiokafka takes and gives them."""
Attributes = Mapping[str, AttributeValue]

SamplerName = Literal[
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
]


class TracingSettings(BaseSettings):
    """OpenTelemetry tracing, off unless an OTLP endpoint is set.

    Read from the standard `OTEL_*` variables; the exporter also honours the other ones it
    documents (`OTEL_EXPORTER_OTLP_HEADERS`, `..._CERTIFICATE`, `..._TIMEOUT`, `OTEL_BSP_*`).
    """

    model_config = SettingsConfigDict(env_prefix="OTEL_", extra="ignore", frozen=True)

    exporter_otlp_endpoint: str = Field(
        "",
        description="Where spans go: the collector's OTLP address, e.g. `http://collector:4318` "
        "(http/protobuf, which adds `/v1/traces`) or `http://collector:4317` (grpc). Setting "
        "it turns tracing on.",
    )
    exporter_otlp_traces_endpoint: str = Field(
        "",
        description="The traces endpoint used as it is (http/protobuf: the whole URL); "
        "overrides `OTEL_EXPORTER_OTLP_ENDPOINT`, and also turns tracing on.",
    )
    exporter_otlp_protocol: Literal["http/protobuf", "grpc"] = Field(
        "http/protobuf", description="`http/protobuf` or `grpc`."
    )
    traces_sampler: SamplerName = Field(
        "parentbased_always_on",
        description="Which traces are kept: `parentbased_traceidratio` with "
        "`OTEL_TRACES_SAMPLER_ARG=0.1` keeps a tenth, and follows a producer's decision.",
    )
    traces_sampler_arg: float = Field(
        1.0, ge=0.0, le=1.0, description="The ratio of the `*traceidratio` samplers."
    )
    service_name: str = Field(
        "", description="`service.name` of the spans; default `hookstream-<service>`."
    )
    sdk_disabled: bool = Field(False, description="`true` turns tracing off whatever is set.")

    @property
    def enabled(self) -> bool:
        """Tracing is on: an endpoint is set and the SDK is not disabled."""
        endpoint = self.exporter_otlp_traces_endpoint or self.exporter_otlp_endpoint
        return bool(endpoint) and not self.sdk_disabled


_tracer: Tracer | None = None
"""The services' tracer; None while tracing is off (every helper checks it first)."""


def configure_tracing(service: str, settings: TracingSettings) -> bool:
    """Start exporting this process's spans when `settings` turn tracing on; return whether.

    Spans are batched and exported in the background; the provider flushes them at exit.
    """
    global _tracer
    if not settings.enabled:
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({SERVICE_NAME: settings.service_name or f"hookstream-{service}"})
    provider = TracerProvider(sampler=_sampler(settings), resource=resource)
    provider.add_span_processor(BatchSpanProcessor(_exporter(settings)))
    trace.set_tracer_provider(provider)
    _tracer = provider.get_tracer("hookstream")
    return True


def _sampler(settings: TracingSettings) -> Any:
    from opentelemetry.sdk.trace import sampling

    root = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "traceidratio": sampling.TraceIdRatioBased(settings.traces_sampler_arg),
    }
    name = settings.traces_sampler.removeprefix("parentbased_")
    return sampling.ParentBased(root[name]) if name != settings.traces_sampler else root[name]


def _exporter(settings: TracingSettings) -> Any:
    """The OTLP exporter of the protocol; its other options come from its `OTEL_*` variables."""
    endpoint = settings.exporter_otlp_traces_endpoint
    if settings.exporter_otlp_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint or settings.exporter_otlp_endpoint)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    endpoint = endpoint or settings.exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
    return HttpExporter(endpoint=endpoint)


# --- context across Kafka --------------------------------------------------------------------


class _KafkaHeaders(Getter[Headers], Setter[list[tuple[str, bytes]]]):
    """Reads and writes a propagator's fields (`traceparent`, `tracestate`) as record headers."""

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        values = [value.decode("latin-1") for name, value in carrier if name == key]
        return values or None

    def keys(self, carrier: Headers) -> list[str]:
        return [name for name, _ in carrier]

    def set(self, carrier: list[tuple[str, bytes]], key: str, value: str) -> None:
        carrier.append((key, value.encode("latin-1")))


_HEADERS = _KafkaHeaders()


def inject(
    headers: list[tuple[str, bytes]], context: Context | None = None
) -> list[tuple[str, bytes]]:
    """Add the `traceparent` of `context` (default: the current one) to record headers, when
    there is a span to continue; tracing need not be on (the SDK's producers use it)."""
    propagate.inject(headers, context, setter=_HEADERS)
    return headers


def headers() -> list[tuple[str, bytes]] | None:
    """Record headers carrying the current span, or None while tracing is off."""
    if _tracer is None:
        return None
    return inject([]) or None


def extract(record_headers: Headers | None) -> Context | None:
    """The trace context a record carries; None while tracing is off."""
    if _tracer is None:
        return None
    return propagate.extract(record_headers or (), getter=_HEADERS)


# --- spans -----------------------------------------------------------------------------------


_OFF: AbstractContextManager[None] = nullcontext()


def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: Context | None = None,
    attributes: Attributes | None = None,
    linked: Sequence[SpanContext | None] = (),
) -> AbstractContextManager[Span | None]:
    """A span made current for the block (None while tracing is off), a child of `parent`
    (default: the current context), linked to the valid span contexts of `linked`."""
    if _tracer is None:
        return _OFF
    links = [Link(c) for c in linked if c is not None and c.is_valid]
    return _tracer.start_as_current_span(
        name, context=parent, kind=kind, attributes=attributes, links=links
    )


def sending(
    topic: str, template: str, parent: Context | None = None
) -> AbstractContextManager[Span | None]:
    """A producer span for one record to `topic` (named after `template`, which does not grow
    with the webhooks); `headers()` inside it gives the record's headers."""
    if _tracer is None:
        return _OFF
    return span(
        f"send {template}",
        kind=SpanKind.PRODUCER,
        parent=parent,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            "messaging.destination.template": template,
        },
    )


def consuming(operation: str, record: ConsumerRecord) -> AbstractContextManager[Span | None]:
    """A consumer span for handling `record` (`operation`: what is done with it), continuing
    the trace its headers carry."""
    if _tracer is None:
        return _OFF
    return span(
        f"{operation} {record.topic}",
        kind=SpanKind.CONSUMER,
        parent=extract(record.headers),
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.operation.name": operation,
            "messaging.destination.name": record.topic,
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
        },
    )


def http_attempt(
    parent: Context | None, url: str, attributes: Attributes
) -> AbstractContextManager[Span | None]:
    """An HTTP client span for one delivery POST, per the semantic conventions. `url.full`
    leaves out user info, query and fragment: a receiver's URL may carry a token there."""
    if _tracer is None:
        return _OFF
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or 443
    netloc = f"[{host}]" if ":" in host else host
    return span(
        "POST",
        kind=SpanKind.CLIENT,
        parent=parent,
        attributes={
            "http.request.method": "POST",
            "url.full": f"{parts.scheme}://{netloc}:{port}{parts.path or '/'}",
            "server.address": host,
            "server.port": port,
            **attributes,
        },
    )


def http_result(
    current: Span | None,
    status_code: int | None,
    error_class: str | None,
    outcome: str,
    retry_tier: str | None,
) -> None:
    """What an attempt's span says of its answer: the status code, or the error (`error.type`
    is the class of failure, or the status code of an unsuccessful answer)."""
    if current is None:
        return
    if status_code is not None:
        current.set_attribute("http.response.status_code", status_code)
    failed = error_class or (str(status_code) if status_code is None or status_code >= 300 else "")
    if failed:
        current.set_attribute("error.type", failed)
        current.set_status(StatusCode.ERROR)
    current.set_attribute("hookstream.outcome", outcome)
    if retry_tier is not None:
        current.set_attribute("hookstream.retry.tier", retry_tier)


def current_span_context() -> SpanContext | None:
    """The current span's context, to link to or store; None while tracing is off."""
    if _tracer is None:
        return None
    return trace.get_current_span().get_span_context()


def trace_id_of(context: SpanContext | None) -> str | None:
    """The W3C form of a span context's trace id (32 hex digits), None when there is none."""
    if context is None or not context.is_valid:
        return None
    return trace.format_trace_id(context.trace_id)


def add_trace_id(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the current span's `trace_id` on every line written inside one."""
    if _tracer is not None and "trace_id" not in event:
        trace_id = trace_id_of(trace.get_current_span().get_span_context())
        if trace_id is not None:
            event["trace_id"] = trace_id
    return event
