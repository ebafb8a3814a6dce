"""Serves the console: its page at /console and its assets at /console/static.

The console is static files and the public REST API, nothing else: no endpoint of its own, no
server-side state. The page carries one setting, the history retention, so it can say how long
deliveries are kept.
"""

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from hookstream_api.dependencies import Settings

STATIC_DIR = Path(__file__).parent / "static"
PAGE = (STATIC_DIR / "index.html").read_text(encoding="utf-8")

SECURITY_HEADERS = {
    # Every script, style and request stays on this origin: no CDN, no inline code.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none';"
        " frame-ancestors 'none'; form-action 'self'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)


@router.get("/console")
async def console_redirect() -> RedirectResponse:
    """One canonical address, so the page's relative asset paths resolve the same way."""
    return RedirectResponse("/console/", status_code=307)


@router.get("/console/", response_class=HTMLResponse)
async def console_page(settings: Settings) -> HTMLResponse:
    """The single page; the app in /console/static does the rest in the browser."""
    page = PAGE.replace("{{retentionDays}}", f"{settings.retention_days:g}")
    return HTMLResponse(page, headers=SECURITY_HEADERS)


def mount_console(app: FastAPI) -> None:
    """Add the console's page and its static assets to the API application."""
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
