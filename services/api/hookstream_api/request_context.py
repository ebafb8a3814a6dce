"""Each request's trace id: in every log line written while it is served, and in its error
envelope's `traceId`, so the line a person needs is found from the error a user reports.

The id is the W3C trace id of the request's `traceparent` header when it carries a valid one (a
gateway or client that traces hands its trace on), else a new random one in the same form.
With tracing on (hookstream_common.tracing), FastAPI's own OpenTelemetry support makes the
request an HTTP server span continuing that `traceparent`, and the id is that span's: the one
to look up in the collector.
"""

import random
import re

import structlog
from starlette.types import Receive, Scope, Send

from hookstream_api.asgi import HttpMiddleware
from hookstream_common import tracing

_TRACEPARENT = re.compile(rb"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
_INVALID_TRACE_ID = "0" * 32


def new_trace_id() -> str:
    """A random W3C trace id. Not a secret, so the fast generator OpenTelemetry's own
    `RandomIdGenerator` uses, rather than a system call on every request."""
    return f"{random.getrandbits(128) or 1:032x}"


def trace_id_of(traceparent: bytes | None) -> str:
    """The trace id of a `traceparent` header, or a new one when there is no valid one."""
    match = _TRACEPARENT.fullmatch(traceparent.strip()) if traceparent else None
    if match is not None and match[1].decode() != _INVALID_TRACE_ID:
        return match[1].decode()
    return new_trace_id()


def request_trace_id(scope: Scope) -> str:
    """The trace id `RequestContext` gave this request (a new one outside it)."""
    return scope.get("state", {}).get("trace_id") or new_trace_id()


class RequestContext(HttpMiddleware):
    """ASGI middleware, outermost: give the request its trace id and bind it for logging."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        traced = tracing.trace_id_of(tracing.current_span_context())
        trace_id = traced or trace_id_of(dict(scope["headers"]).get(b"traceparent"))
        scope.setdefault("state", {})["trace_id"] = trace_id
        with structlog.contextvars.bound_contextvars(trace_id=trace_id):
            await self.app(scope, receive, send)
