"""The Qlik error envelope, `{"errors": [{code, title, detail}], "traceId"}`, for every failure."""

import uuid

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    415: "Unsupported media type",
    422: "Bad request",
    500: "Internal server error",
}


class ApiError(Exception):
    """An error answered with the envelope: raise it anywhere in a request."""

    def __init__(self, status: int, code: str, detail: str, title: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or _TITLES.get(status, "Error")


def not_found(what: str = "webhook") -> ApiError:
    """The answer for anything unknown, including another tenant's: the two look the same."""
    return ApiError(404, "HOOKSTREAM-404", f"The {what} was not found.", "Not found")


def _envelope(status: int, errors: list[dict[str, str]]) -> JSONResponse:
    return JSONResponse(
        {"errors": errors, "traceId": uuid.uuid4().hex},
        status_code=status,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error, ours and the framework's, with the envelope; never leak a trace."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _envelope(exc.status, [{"code": exc.code, "title": exc.title, "detail": exc.detail}])

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "code": "HOOKSTREAM-400",
                "title": "Invalid input",
                "detail": f"{'.'.join(str(p) for p in err['loc'] if p != 'body')}: {err['msg']}",
            }
            for err in exc.errors()
        ]
        return _envelope(400, errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = _TITLES.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        return _envelope(
            exc.status_code,
            [{"code": f"HOOKSTREAM-{exc.status_code}", "title": title, "detail": detail}],
        )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", error=type(exc).__name__)
        return _envelope(
            500,
            [{"code": "HOOKSTREAM-500", "title": _TITLES[500], "detail": "Unexpected error."}],
        )
