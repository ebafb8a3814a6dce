"""Configuration of the dispatcher service."""

from hookstream_common.settings import DeliverySettings
from pydantic import Field


class DispatcherSettings(DeliverySettings):
    """Every setting of the dispatcher, read from `HOOKSTREAM_*` environment variables."""

    dispatcher_host: str = Field("127.0.0.1", description="Address of /metrics, /healthz, /readyz.")
    dispatcher_port: int = Field(8002, description="Port of the dispatcher's operations endpoints.")
    dispatcher_group: str = Field(
        "", description="Kafka consumer group; default `<topic_prefix>-dispatcher`."
    )
    max_in_flight: int = Field(500, description="Concurrent requests across all webhooks.")

    @property
    def group_id(self) -> str:
        """The consumer group every dispatcher instance joins."""
        return self.dispatcher_group or f"{self.topic_prefix}-dispatcher"
