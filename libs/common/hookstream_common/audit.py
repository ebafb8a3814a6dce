"""The audit trail: who did what to which webhook, when and from where (issue 23 item 3).

Each management action records one `audit_events` row in the transaction of the change it
records (the webhook write, the stored resend or test attempt, the stored recovery), so there is
never a change without its row, nor a row for a change that rolled back. A row names the fields
that changed, never their values, and its details hold only ids and codes: no secret or header
value can reach it. The API and the dispatcher's auto-disable both write through `record`.
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import asyncpg
import orjson

Action = Literal[
    "create",
    "update",
    "delete",
    "enable",
    "disable",
    "rotateSecret",
    "resend",
    "recover",
    "test",
]
ACTIONS: tuple[str, ...] = get_args(Action)

SYSTEM_ACTOR = "system"
"""The actor of what the service does by itself: the dispatcher's auto-disable."""


@dataclass(frozen=True)
class Actor:
    """Who acted (a token's subject, or `system`), from which client address, in which request
    (its trace id, which finds the request's log lines)."""

    name: str
    source_address: str | None = None
    trace_id: str | None = None


SYSTEM = Actor(SYSTEM_ACTOR)

_UNSET: tuple[Any, ...] = (None, "", [], {})


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The top-level fields whose values differ, sorted; an empty value equals an absent one.

    `before` and `after` are writable documents in API names (`webhook_model.writable_form`);
    against `{}` this names the fields a create set.
    """

    def value(document: Mapping[str, Any], name: str) -> Any:
        found = document.get(name)
        return None if found in _UNSET else found

    return sorted(name for name in {*before, *after} if value(before, name) != value(after, name))


_ROTATION = {"secret", "secretRotationGraceSeconds"}


def update_action(changed: Sequence[str], enabled: bool) -> Action:
    """What an update was, by its most telling effect: enabling or disabling when `enabled`
    flipped; rotating the secret when only the secret (and its grace period) changed; else a
    plain update. The row's `changed` still names every field."""
    if "enabled" in changed:
        return "enable" if enabled else "disable"
    if "secret" in changed and _ROTATION.issuperset(changed):
        return "rotateSecret"
    return "update"


async def record(
    conn: asyncpg.Connection,
    actor: Actor,
    action: Action,
    webhook_id: str | uuid.UUID,
    changed: Sequence[str] = (),
    details: Mapping[str, Any] | None = None,
) -> bool:
    """Add the row of `action` on the webhook, inside the caller's transaction; False when the
    webhook no longer exists (so call it before a delete).

    The tenant and the owner are read from the webhook row as it is, so no caller can file a
    row under another tenant. `details` goes as JSON text, whatever codecs the connection has.
    """
    status = await conn.execute(
        "INSERT INTO audit_events (id, tenant_id, webhook_id, owner_id, actor, source_address,"
        " action, changed, details, trace_id)"
        " SELECT $1, tenant_id, id, owner_id, $3, $4, $5, $6, $7::text::jsonb, $8"
        " FROM webhooks WHERE id = $2",
        uuid.uuid4(),
        uuid.UUID(str(webhook_id)),
        actor.name,
        actor.source_address,
        action,
        list(changed),
        orjson.dumps(dict(details or {})).decode(),
        actor.trace_id,
    )
    return status.endswith(" 1")
