"""Errors of the API, with the code and detail of its error envelope."""

from typing import Any

import httpx


class ApiError(Exception):
    """The API answered with an error: `{"errors": [{code, title, detail}], "traceId"}`.

    `code`, `title` and `detail` are those of the first error; `errors` holds them all.
    """

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self.errors, self.trace_id = _envelope(response)
        first = self.errors[0]
        self.code: str = first.get("code", f"HTTP-{self.status}")
        self.title: str = first.get("title", response.reason_phrase)
        self.detail: str = first.get("detail", "")
        retry_after = response.headers.get("Retry-After", "")
        self.retry_after = int(retry_after) if retry_after.isdigit() else None
        """Seconds to wait, for a 429 or 503."""
        super().__init__(f"{self.status} {self.code}: {self.detail}")


def _envelope(response: httpx.Response) -> tuple[list[dict[str, Any]], str | None]:
    """The envelope's errors, or one made of the status when the body is not an envelope."""
    try:
        body = response.json()
        errors = [e for e in body["errors"] if isinstance(e, dict)]
        if errors:
            return errors, body.get("traceId")
    except (ValueError, TypeError, KeyError):
        pass
    return [{"detail": response.text[:500]}], None
