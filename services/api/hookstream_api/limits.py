"""Request size limits, enforced before the body is buffered.

A client that sends more than the API will ever accept is answered at once (413, or 414 for an
over-long URL) with the error envelope, and the rest of its body is never read into memory: an
unauthenticated 60 MB POST costs nothing. Header sizes are capped by the HTTP server itself
(uvicorn's `h11_max_incomplete_event_size`, set from `max_header_bytes`).
"""

import uuid

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_TITLES = {413: "Payload too large", 414: "URI too long"}


async def _refuse(send: Send, status: int, detail: str) -> None:
    """Answer with the envelope without running the app (nothing has been read yet)."""
    error = {"code": f"HOOKSTREAM-{status}", "title": _TITLES[status], "detail": detail}
    body = orjson.dumps({"errors": [error], "traceId": uuid.uuid4().hex})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """ASGI middleware: refuse bodies over `max_body` bytes and URLs over `max_url` bytes."""

    def __init__(self, app: ASGIApp, max_body: int, max_url: int) -> None:
        self._app = app
        self._max_body = max_body
        self._max_url = max_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        url_bytes = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        if url_bytes > self._max_url:
            await _refuse(send, 414, f"The URL is {url_bytes} bytes; at most {self._max_url}.")
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self._max_body:
            await _refuse(send, 413, self._too_large(f"{int(declared)} bytes"))
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
