"""Sending one delivery while the API's caller waits: resend and the test event.

The same steps as the dispatcher's, without its retries: build and sign the request from the
webhook's current target, send it once, and store the outcome like every other attempt, so it is
in the history and counts towards the webhook's health.
"""

import aiohttp
import asyncpg

from hookstream_common import tracing
from hookstream_common.delivery import build_request, send
from hookstream_common.history import Outcome, record_outcomes
from hookstream_common.jobs import DeliveryJob
from hookstream_common.webhook_model import DeliveryTarget


async def send_now(
    job: DeliveryJob,
    target: DeliveryTarget,
    client: aiohttp.ClientSession,
    user_agent: str,
    pool: asyncpg.Pool,
) -> None:
    """Make `job`'s single attempt and store it; a failed attempt is stored, never raised."""
    outbound = build_request(target, job.event, job.delivery_id, user_agent)
    ids = {"hookstream.delivery.id": job.delivery_id, "hookstream.attempt": job.attempt}
    with tracing.http_attempt(None, outbound.url, ids) as span:
        attempt = await send(client, outbound)
        status = "success" if attempt.succeeded else "fail"
        tracing.http_result(span, attempt.status_code, attempt.error_class, status, None)
        trace = tracing.current_span_context()
    outcome = Outcome(
        delivery_id=job.delivery_id,
        tenant_id=job.tenant_id,
        webhook_id=job.webhook_id,
        event=job.event,
        cloud_event=target.cloud_event,
        status=status,
        status_message=attempt.status_message(),
        triggered_at=job.triggered_at,
        request=outbound.as_history(),
        attempt_number=job.attempt,
        attempt=attempt,
        trace=trace,
    )
    async with pool.acquire() as conn, conn.transaction():
        await record_outcomes(conn, [outcome])
