"""The shape the API's own ASGI middlewares share: they act on HTTP requests only."""

from starlette.types import ASGIApp, Receive, Scope, Send


class HttpMiddleware:
    """Passes every scope but HTTP (lifespan, websockets) straight through to the app; HTTP
    requests go to `handle`. Plain ASGI rather than Starlette's BaseHTTPMiddleware, which
    buffers and copies each request through a task of its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request (calling `self.app` on the way)."""
        raise NotImplementedError
