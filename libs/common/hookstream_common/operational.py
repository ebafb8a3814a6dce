"""Operational events (a Hookstream extension): notice that a webhook is in trouble or out of it.

Four built-in types, raised by Hookstream itself about one of a tenant's webhooks:

- `com.hookstream.v1.webhook.disabled`: Hookstream disabled the webhook (auto-disable after a
  run of failures, or 410 Gone), with the reason and its code;
- `com.hookstream.v1.delivery.exhausted`: a delivery failed for good after its retries;
- `com.hookstream.v1.webhook.recovered`: an attempt succeeded after at least N attempts in a
  row had failed (`HOOKSTREAM_RECOVERED_AFTER_FAILURES`);
- `com.hookstream.v1.webhook.certificate.expiring`: the webhook's client certificate expires
  within `HOOKSTREAM_CLIENT_CERTIFICATE_NOTICE_DAYS` (14), raised once per certificate by the
  janitor.

Each is written to the outbox in the transaction that stores its cause (the disable, or the
outcome), and the relay publishes it to the events topic keyed by tenant, so it reaches the
tenant's webhooks through the matcher like any event, at least once and never before its cause
is stored. The event is about its subject webhook: `extensions.topLevelResourceId` and `data.id`
name it, `extensions.ownerId` is its owner (so a `level=user` webhook hears only about webhooks
its owner owns), and `data` holds its name and what happened, never its URL, headers or secret.
Routing never sends one to its subject (`hookstream_common.routing`), and a delivery that carried
an operational event raises no `delivery.exhausted`, so two failing webhooks subscribed to each
other's trouble cannot keep each other busy.
"""

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import asyncpg

from hookstream_common.events import Event

if TYPE_CHECKING:
    from hookstream_common.history import Outcome

WEBHOOK_DISABLED = "com.hookstream.v1.webhook.disabled"
DELIVERY_EXHAUSTED = "com.hookstream.v1.delivery.exhausted"
WEBHOOK_RECOVERED = "com.hookstream.v1.webhook.recovered"
CERTIFICATE_EXPIRING = "com.hookstream.v1.webhook.certificate.expiring"
TYPES = frozenset({WEBHOOK_DISABLED, DELIVERY_EXHAUSTED, WEBHOOK_RECOVERED, CERTIFICATE_EXPIRING})
SOURCE = "com.hookstream"
CATEGORY = "webhooks"
DEFAULT_RECOVERED_AFTER = 5
"""Failed attempts in a row that a success must end to raise `webhook.recovered`."""

EVENT_KIND = "event"
"""`outbox.kind` of a row that carries an event to publish rather than a webhook change."""
EVENTS_CHANNEL = "hookstream_outbox_events"
"""NOTIFY channel that wakes the relay for event rows (the dispatcher's target cache listens to
the webhook-change channel only, so these never evict its entries)."""
_NAMESPACE = uuid.UUID("0b8e2f61-52a4-4f0e-8d7c-3c1f6a9e4d27")


@dataclass(frozen=True)
class Subject:
    """The webhook an operational event is about, as far as its tenant's receivers may know."""

    id: str
    tenant_id: str
    name: str
    owner_id: str


def is_operational(event_type: str) -> bool:
    """Whether events of this type are Hookstream's own notices about webhooks."""
    return event_type in TYPES


def subject_of(event: Event) -> str | None:
    """The id of the webhook an operational event is about; None for any other event."""
    if not is_operational(event.type):
        return None
    subject = event.extensions.get("topLevelResourceId")
    return str(subject) if subject else None


def webhook_disabled(subject: Subject, code: str, reason: str, at: datetime) -> Event:
    """Hookstream disabled the webhook at `at`."""
    return _event(
        WEBHOOK_DISABLED,
        subject,
        f"{subject.id}/disabled/{at.isoformat()}",
        at,
        {"disabledReasonCode": code, "disabledReason": reason},
    )


def delivery_exhausted(subject: Subject, outcome: "Outcome") -> Event:
    """The outcome's delivery failed for good: its last retry failed too. One id per delivery,
    so the same notice stored twice (its last job sent twice) is delivered once."""
    attempt = outcome.attempt
    return _event(
        DELIVERY_EXHAUSTED,
        subject,
        f"{outcome.delivery_id}/exhausted",
        attempt.started_at,
        {
            **_delivery(outcome),
            "attempts": outcome.attempt_number,
            "lastStatusCode": attempt.status_code,
            "lastErrorClass": attempt.error_class,
        },
    )


def webhook_recovered(subject: Subject, outcome: "Outcome", failures: int) -> Event:
    """The outcome's attempt succeeded after `failures` failed attempts in a row."""
    return _event(
        WEBHOOK_RECOVERED,
        subject,
        f"{outcome.delivery_id}/{outcome.attempt_number}/recovered",
        outcome.attempt.started_at,
        {**_delivery(outcome), "failedAttemptsBefore": failures},
    )


def certificate_expiring(
    subject: Subject, certificate_subject: str, not_after: datetime, now: datetime
) -> Event:
    """The webhook's client certificate expires at `not_after` (or has). One id per
    certificate, so a notice raised twice is delivered once."""
    return _event(
        CERTIFICATE_EXPIRING,
        subject,
        f"{subject.id}/certificate/{not_after.isoformat()}",
        now,
        {
            "certificateSubject": certificate_subject,
            "notAfter": _time(not_after),
            "daysLeft": max((not_after - now).days, 0),
        },
    )


def _delivery(outcome: "Outcome") -> dict[str, Any]:
    return {
        "deliveryId": outcome.delivery_id,
        "eventId": outcome.event.id,
        "eventType": outcome.event.type,
        "triggeredAt": _time(outcome.triggered_at),
    }


def _event(kind: str, subject: Subject, seed: str, at: datetime, data: dict[str, Any]) -> Event:
    return Event(
        id=str(uuid.uuid5(_NAMESPACE, seed)),
        type=kind,
        time=_time(at),
        source=SOURCE,
        extensions={
            "tenantId": subject.tenant_id,
            "ownerId": subject.owner_id,
            "topLevelResourceId": subject.id,
        },
        data={"id": subject.id, "name": subject.name, **data},
    )


def _time(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


Notice = tuple[str, Callable[[Subject], Event]]
"""The id of a webhook, and how to build the event about it once it is described."""


def outcome_notices(
    outcomes: Iterable["Outcome"], runs_ended: Mapping[str, int], recovered_after: int
) -> list[Notice]:
    """What a batch of stored outcomes raises: `delivery.exhausted` per delivery that failed for
    good (unless it carried an operational event itself), and `webhook.recovered` per webhook
    whose first success in the batch ended a run of at least `recovered_after` failed attempts
    (`runs_ended`: webhook id -> the run its success ended, as the health update counted it)."""
    outcomes = list(outcomes)
    notices: list[Notice] = [
        (o.webhook_id, partial(delivery_exhausted, outcome=o))
        for o in outcomes
        if o.exhausted and not is_operational(o.event.type)
    ]
    for webhook_id, failures in runs_ended.items():
        if failures < recovered_after:
            continue
        success = next(o for o in outcomes if o.webhook_id == webhook_id and o.attempt.succeeded)
        notices.append((webhook_id, partial(webhook_recovered, outcome=success, failures=failures)))
    return notices


async def raise_notices(conn: asyncpg.Connection, notices: list[Notice]) -> None:
    """Build the notices' events for webhooks that still exist and put them in the outbox."""
    if not notices:
        return
    rows = await conn.fetch(
        "SELECT id::text, tenant_id, name, owner_id FROM webhooks WHERE id = ANY($1::uuid[])",
        sorted({webhook_id for webhook_id, _ in notices}),
    )
    subjects = {row["id"]: Subject(**dict(row)) for row in rows}
    await announce(conn, [build(subjects[wid]) for wid, build in notices if wid in subjects])


async def announce(conn: asyncpg.Connection, events: list[Event]) -> None:
    """Put the events in the outbox, for the relay to publish once the transaction commits."""
    if not events:
        return
    await conn.executemany(
        "INSERT INTO outbox (tenant_id, webhook_id, kind, event)"
        " VALUES ($1, $2, $3, $4::text::json)",
        [
            (
                e.tenant_id,
                uuid.UUID(str(e.extensions["topLevelResourceId"])),
                EVENT_KIND,
                e.legacy_json.decode(),
            )
            for e in events
        ],
    )
    await conn.execute("SELECT pg_notify($1, '')", EVENTS_CHANNEL)
