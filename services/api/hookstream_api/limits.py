"""Request size limits, enforced before the body is buffered.

A client that sends more than the API will ever accept is answered at once (413, or 414 for an
over-long URL) with the error envelope, and the rest of its body is never read into memory: an
unauthenticated 60 MB POST costs nothing. Headers are capped twice: by the HTTP server while
they arrive (uvicorn's `h11_max_incomplete_event_size`) and here once they are parsed (431).
"""

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hookstream_api.errors import envelope
from hookstream_api.request_context import request_trace_id

log = structlog.get_logger(__name__)


async def _refuse(scope: Scope, send: Send, status: int, detail: str) -> None:
    """Answer with the envelope without running the app (nothing has been read yet)."""
    log.info("request refused before it was read", status=status)
    body = envelope(status, detail, request_trace_id(scope))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """ASGI middleware: refuse bodies over `max_body` bytes, URLs over `max_url` bytes or with
    an encoded NUL (Postgres cannot compare text with one), and headers over `max_headers`."""

    def __init__(self, app: ASGIApp, max_body: int, max_url: int, max_headers: int) -> None:
        self._app = app
        self._max_body = max_body
        self._max_url = max_url
        self._max_headers = max_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        url_bytes = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        if url_bytes > self._max_url:
            await _refuse(
                scope, send, 414, f"The URL is {url_bytes} bytes; at most {self._max_url}."
            )
            return
        if b"%00" in (scope.get("query_string") or b"").lower() or "\x00" in scope["path"]:
            await _refuse(
                scope, send, 400, "The URL holds a NUL character (%00), which is never valid."
            )
            return
        header_bytes = sum(len(name) + len(value) for name, value in scope["headers"])
        if header_bytes > self._max_headers:
            detail = f"The headers are {header_bytes} bytes; at most {self._max_headers}."
            await _refuse(scope, send, 431, detail)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self._max_body:
            await _refuse(scope, send, 413, self._too_large(f"{int(declared)} bytes"))
            return
        await self._app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        """`receive`, raising a 413 once a body without a (true) length passes the limit."""
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self._max_body:
                    raise HTTPException(413, self._too_large("more than that"))
            return message

        return counted

    def _too_large(self, size: str) -> str:
        return f"The request body may be at most {self._max_body} bytes; this one is {size}."
