"""Liveness and readiness for orchestrators; what they answer is hookstream_common.ops'."""

from fastapi import APIRouter
from fastapi.responses import Response

from hookstream_api.dependencies import ServiceReadiness
from hookstream_common import ops

router = APIRouter(tags=["operations"], include_in_schema=False)


def ops_response(answer: ops.Answer) -> Response:
    """An operations answer as a Starlette response."""
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)


@router.get("/healthz")
async def healthz() -> Response:
    """The process answers."""
    return ops_response(ops.healthz())


@router.get("/readyz")
async def readyz(readiness: ServiceReadiness) -> Response:
    """Connected, and Postgres and Kafka answer their probes: the API can take writes."""
    return ops_response(ops.readyz(readiness))
