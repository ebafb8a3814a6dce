"""Liveness and readiness for orchestrators."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["operations"], include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, Any]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Connected, and Postgres and Kafka answer their probes: the API can take writes."""
    readiness = request.app.state.readiness
    return JSONResponse(readiness.report(), status_code=200 if readiness.ready else 503)
