"""What the matcher knows about webhooks, and the pure rule that matches events to them.

The API publishes one `TenantRoutes` per tenant to the compacted webhooks topic; it holds only
what matching needs, never secrets or headers.
"""

from dataclasses import asdict, dataclass
from typing import Any

import orjson

from hookstream_common.events import Event


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
        """Whether this webhook wants the event."""
        if not self.enabled or event.type not in self.event_types:
            return False
        return self.level != "user" or self.owner_id in event.user_ids


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
        """Parse what `dumps` wrote."""
        doc: dict[str, Any] = orjson.loads(raw)
        routes = tuple(
            Route(**{**route, "event_types": tuple(route["event_types"])})
            for route in doc["routes"]
        )
        return cls(tenant_id=doc["tenantId"], routes=routes)
