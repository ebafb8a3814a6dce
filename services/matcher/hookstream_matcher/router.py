"""The matcher's logic, free of Kafka: a table of tenant routes, and what to do with a record.

`RouteTable` mirrors the compacted webhooks topic for the partitions this instance owns. `route`
turns one record of the events topic into a `Decision`: jobs for the webhooks that want it, a
re-key onto the tenant's partition, or a dead letter with the reason.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hookstream_common.events import Event, InvalidEvent
from hookstream_common.jobs import DeliveryJob
from hookstream_common.routing import TenantRoutes

TRUSTED_CLOCK_SKEW = timedelta(hours=1)
"""An event's own time is its trigger time unless it is further than this from the clock."""


class RouteTable:
    """Tenant id -> `TenantRoutes`, grouped by the webhooks-topic partition it came from.

    Grouping lets a revoked partition be forgotten at once, so an instance never routes with
    the stale view of tenants it no longer owns.
    """

    def __init__(self) -> None:
        self._partitions: dict[int, dict[str, TenantRoutes]] = {}

    def learn(self, partition: int, tenant_id: str, value: bytes | None) -> None:
        """Apply one record of the compacted topic; a tombstone removes the tenant."""
        tenants = self._partitions.setdefault(partition, {})
        if value is None:
            tenants.pop(tenant_id, None)
        else:
            tenants[tenant_id] = TenantRoutes.loads(value)

    def forget(self, partitions: set[int]) -> None:
        """Drop what came from partitions this instance no longer owns."""
        for partition in partitions:
            self._partitions.pop(partition, None)

    def routes_of(self, tenant_id: str) -> TenantRoutes | None:
        """The tenant's current routes, or None if it has no webhooks (or is not ours)."""
        for tenants in self._partitions.values():
            routes = tenants.get(tenant_id)
            if routes is not None:
                return routes
        return None

    def __len__(self) -> int:
        return sum(len(tenants) for tenants in self._partitions.values())


@dataclass(frozen=True)
class DeadLetter:
    """The record is not an event we can route."""

    reason: str


@dataclass(frozen=True)
class Rekey:
    """The record is keyed by something other than its tenant: publish it again, keyed right."""

    tenant_id: str


@dataclass(frozen=True)
class Matched:
    """One job per webhook that wants the event (possibly none)."""

    event: Event
    jobs: list[DeliveryJob]


Decision = DeadLetter | Rekey | Matched


def trigger_time(event: Event, now: datetime) -> datetime:
    """The event's own time, so reprocessing after a crash yields the same history row.

    `Event.parse` guarantees an aware time; the clock (the record's timestamp) stands in only
    when it is far from now: a producer's broken clock must not file history into a day that
    is gone or not yet made.
    """
    when = datetime.fromisoformat(event.time).astimezone(UTC)
    return when if abs(when - now) <= TRUSTED_CLOCK_SKEW else now


def route(
    table: RouteTable, key: bytes | None, value: bytes | None, now: datetime, max_bytes: int
) -> Decision:
    """What to do with one record of the events topic."""
    if value is None:
        return DeadLetter("empty record (no value)")
    try:
        event = Event.parse(value, max_bytes=max_bytes)
    except InvalidEvent as exc:
        return DeadLetter(str(exc))
    if key != event.tenant_id.encode():
        return Rekey(event.tenant_id)
    routes = table.routes_of(event.tenant_id)
    if routes is None:
        return Matched(event, [])
    triggered_at = trigger_time(event, now)
    return Matched(
        event,
        [DeliveryJob.for_event(r.id, event, triggered_at) for r in routes.matching(event)],
    )
