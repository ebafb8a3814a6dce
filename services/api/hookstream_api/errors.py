"""The Qlik error envelope, `{"errors": [{code, title, detail}], "traceId"}`, for every failure.

`traceId` is the request's trace id (hookstream_api.request_context), which every log line of
the request carries too; each error answered is logged once, with its status and code.
"""

from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from hookstream_api.request_context import request_trace_id
from hookstream_api.schemas import ErrorEnvelope, ReadOnlyField
from hookstream_common.resilience import TRANSIENT

log = structlog.get_logger(__name__)

TITLES = {
    400: "Invalid input",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    414: "URI too long",
    431: "Request header fields too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}
_RETRY_AFTER_SECONDS = 5


class ApiError(Exception):
    """An error answered with the envelope: raise it anywhere in a request."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        title: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or TITLES.get(status, "Error")
        self.headers = headers or {}


def invalid(detail: str) -> ApiError:
    """A 400 whose detail starts with the field to fix."""
    return ApiError(400, "HOOKSTREAM-400", detail, "Invalid input")


def not_found(what: str = "webhook") -> ApiError:
    """The answer for anything unknown, including another tenant's: the two look the same."""
    return ApiError(404, "HOOKSTREAM-404", f"The {what} was not found.", "Not found")


def _documented(description: str) -> dict[str, Any]:
    return {"model": ErrorEnvelope, "description": description}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("Invalid input; `detail` names the field to fix."),
    401: _documented("No token, or a token that is not valid."),
    403: _documented("Not allowed, or over a limit."),
    404: _documented("Unknown, or another tenant's."),
    409: _documented("A read-only field was written, or a PATCH needs a secret no key decrypts."),
    413: _documented("The request body is larger than the service takes."),
    414: _documented("The URL is longer than the service takes."),
    431: _documented("The request headers are larger than the service takes."),
}
"""The errors every webhook route may answer, for the OpenAPI document."""

RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorEnvelope,
        "description": "The tenant, or this user, goes too fast (writes, resends, recoveries,"
        " tests), or has too many resends and tests waiting on receivers;"
        " try again after `Retry-After`.",
        "headers": {
            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
        },
    }
}
"""Every write and action is rate-limited per tenant and user (hookstream_api.rate_limits)."""


def envelope(status: int, detail: str, trace_id: str) -> bytes:
    """One error as the envelope's JSON, for answers given before the app runs (RequestLimits)."""
    error = {"code": f"HOOKSTREAM-{status}", "title": TITLES.get(status, "Error"), "detail": detail}
    return orjson.dumps({"errors": [error], "traceId": trace_id})


def _envelope(
    request: Request,
    status: int,
    errors: list[dict[str, str]],
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    log.info(
        "request answered with an error",
        status=status,
        codes=[error["code"] for error in errors],
        method=request.method,
        route=getattr(request.scope.get("route"), "path", None),
    )
    return JSONResponse(
        {"errors": errors, "traceId": request_trace_id(request.scope)},
        status_code=status,
        headers=headers,
    )


def _describe(error: Any) -> str:
    """`field: problem`, without the framework's `body.`/`query.` prefix."""
    location = list(error.get("loc", ()))
    if location and location[0] in ("body", "query", "path", "header"):
        location = location[1:]
    field = ".".join(str(part) for part in location)
    return f"{field}: {error['msg']}" if field else str(error["msg"])


def _allowed_methods(request: Request) -> str:
    """`Allow` of a 405: every method some route takes on this path, not only the first route's."""
    return ", ".join(
        method
        for method in ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error, ours and the framework's, with the envelope; never leak a trace."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else dict(exc.headers)
        error = {"code": exc.code, "title": exc.title, "detail": exc.detail}
        return _envelope(request, exc.status, [error], headers)

    @app.exception_handler(ReadOnlyField)
    async def read_only(request: Request, exc: ReadOnlyField) -> JSONResponse:
        detail = f"{', '.join(exc.names)}: read-only; the service sets it."
        error = {"code": "HOOKSTREAM-409", "title": TITLES[409], "detail": detail}
        return _envelope(request, 409, [error])

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"code": "HOOKSTREAM-400", "title": TITLES[400], "detail": _describe(err)}
            for err in exc.errors()
        ]
        return _envelope(request, 400, errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = TITLES.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return _envelope(
            request,
            exc.status_code,
            [{"code": f"HOOKSTREAM-{exc.status_code}", "title": title, "detail": detail}],
            headers=headers,
        )

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("a dependency is unavailable", error_class=type(exc).__name__)
        detail = "The database or the broker is unavailable; try again in a few seconds."
        return _envelope(
            request,
            503,
            [{"code": "HOOKSTREAM-503", "title": TITLES[503], "detail": detail}],
            headers={"Retry-After": str(_RETRY_AFTER_SECONDS)},
        )

    for outage in TRANSIENT:
        app.add_exception_handler(outage, unavailable)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", error=type(exc).__name__)
        return _envelope(
            request,
            500,
            [{"code": "HOOKSTREAM-500", "title": TITLES[500], "detail": "Unexpected error."}],
        )
