"""What the matcher knows about webhooks, and the pure rule that matches events to them.

The API publishes one `TenantRoutes` per tenant to the compacted webhooks topic; it holds only
what matching needs, never secrets or headers.
"""

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import orjson

from hookstream_common.events import Event
from hookstream_common.filters import Filter, parse_filter
from hookstream_common.operational import subject_of


@dataclass(frozen=True)
class Route:
    """The matching view of one webhook."""

    id: str
    event_types: tuple[str, ...]
    level: str
    owner_id: str
    enabled: bool
    filter: str | None = None
    cloud_event: bool = False

    def accepts(self, event: Event) -> bool:
        """Whether this webhook wants the event: type, not about itself, owner for
        `level=user`, then the filter.

        A webhook never receives an operational event about itself: a failing endpoint must not
        be sent news of its own failures, which would fail and raise more.
        """
        if not self.enabled or event.type not in self.event_types:
            return False
        if subject_of(event) == self.id:
            return False
        if self.level == "user" and self.owner_id not in event.user_ids:
            return False
        return self.filter is None or _compiled(self.filter, self.event_types).matches(
            event.to_legacy()
        )


@lru_cache(maxsize=4096)
def _compiled(text: str, event_types: tuple[str, ...]) -> Filter:
    """Parse each distinct filter once; the API has already rejected malformed ones."""
    return parse_filter(text, event_types)


@dataclass(frozen=True)
class TenantRoutes:
    """A tenant's complete current set of webhooks: the value of the compacted topic."""

    tenant_id: str
    routes: tuple[Route, ...]

    def matching(self, event: Event) -> list[Route]:
        """The webhooks that receive the event."""
        return [route for route in self.routes if route.accepts(event)]

    def dumps(self) -> bytes:
        """Serialise for the compacted topic."""
        return orjson.dumps(
            {"tenantId": self.tenant_id, "routes": [asdict(route) for route in self.routes]}
        )

    @classmethod
    def loads(cls, raw: bytes) -> "TenantRoutes":
        """Parse what `dumps` wrote; raise ValueError for anything a matcher could not use,
        a filter that does not compile included, so it fails here and not on the next event."""
        doc: dict[str, Any] = orjson.loads(raw)
        routes = tuple(
            Route(**{**route, "event_types": tuple(route["event_types"])})
            for route in doc["routes"]
        )
        for route in routes:
            if route.filter is not None:
                _compiled(route.filter, route.event_types)
        return cls(tenant_id=doc["tenantId"], routes=routes)
