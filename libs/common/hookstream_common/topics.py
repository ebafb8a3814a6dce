"""Kafka topic names. One place, so producers and consumers can never disagree."""

import uuid
from dataclasses import dataclass


def is_webhook_id(value: object) -> bool:
    """Webhook ids are UUIDs. Keys, topic names and jobs carry them as text; anything else,
    text or not, names no webhook (and would make Postgres refuse the lookup)."""
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Topics:
    """The topic names of one installation, all under one prefix."""

    prefix: str = "hookstream"

    @property
    def events(self) -> str:
        """Where producers publish system events, keyed by tenant id."""
        return f"{self.prefix}.events"

    @property
    def events_dlq(self) -> str:
        """Where the matcher puts records it cannot parse, with the reason."""
        return f"{self.prefix}.events.dlq"

    @property
    def dispatch_shards(self) -> str:
        """Its partitions are the shards dispatchers own (decision 4); its records are wake-ups."""
        return f"{self.prefix}.dispatch.shards"

    @property
    def dispatch_dlq(self) -> str:
        """Where the dispatcher parks delivery jobs and retries it can never process."""
        return f"{self.prefix}.dispatch.dlq"

    @property
    def webhooks(self) -> str:
        """Compacted: tenant id -> that tenant's complete set of webhooks, for routing."""
        return f"{self.prefix}.webhooks"

    def deliveries(self, webhook_id: str) -> str:
        """The work queue of one webhook, so a slow receiver holds up only itself."""
        return f"{self.prefix}.deliveries.{webhook_id}"

    def retry(self, tier: str) -> str:
        """Where failed attempts wait for one retry delay, e.g. `retry.30s`."""
        return f"{self.prefix}.retry.{tier}"

    def webhook_id_of(self, topic: str) -> str | None:
        """The webhook id in a delivery topic's name, or None for any other topic."""
        head = f"{self.prefix}.deliveries."
        return topic[len(head) :] if topic.startswith(head) else None
