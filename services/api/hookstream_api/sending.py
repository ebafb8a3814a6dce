"""Sending one delivery while the API's caller waits: resend and the test event.

The same steps as the dispatcher's, without its retries: build and sign the request from the
webhook's current target, send it once, and store the outcome like every other attempt, so it is
in the history and counts towards the webhook's health; its audit row goes in the same
transaction.
"""

from collections.abc import Mapping
from typing import Any, Protocol

import asyncpg

from hookstream_common import audit, tracing
from hookstream_common.delivery import Sender, build_request
from hookstream_common.history import Outcome, record_outcomes
from hookstream_common.jobs import DeliveryJob
from hookstream_common.webhook_model import DeliveryTarget


async def send_now(
    job: DeliveryJob,
    target: DeliveryTarget,
    client: Sender,
    user_agent: str,
    pool: asyncpg.Pool,
    recovered_after: int,
    actor: audit.Actor,
    action: audit.Action,
    details: Mapping[str, Any],
) -> None:
    """Make `job`'s single attempt and store it with the audit row of `action` (`details` and
    the delivery's id); a failed attempt is stored, never raised. A success that ends a run of
    `recovered_after` failures raises `webhook.recovered`."""
    outbound = build_request(target, job.event, job.delivery_id, user_agent)
    ids = {"hookstream.delivery.id": job.delivery_id, "hookstream.attempt": job.attempt_number}
    with tracing.http_attempt(None, outbound.url, ids) as span:
        attempt = await client(outbound)
        status = "success" if attempt.succeeded else "fail"
        tracing.http_result(span, attempt.status_code, attempt.error_class, status, None)
        trace = tracing.current_span_context()
    outcome = Outcome.of_attempt(
        job,
        target.cloud_event,
        outbound,
        attempt,
        succeeded=attempt.succeeded,
        status_message=attempt.status_message(),
        trace=trace,
    )
    async with pool.acquire() as conn, conn.transaction():
        await record_outcomes(conn, [outcome], recovered_after)
        await audit.record(
            conn, actor, action, job.webhook_id, details={**details, "deliveryId": job.delivery_id}
        )


class SendNow(Protocol):
    """`send_now` bound to a request's sender, pool and actor (`dependencies.SendsNow`)."""

    async def __call__(
        self,
        job: DeliveryJob,
        target: DeliveryTarget,
        *,
        action: audit.Action,
        details: Mapping[str, Any],
    ) -> None: ...
