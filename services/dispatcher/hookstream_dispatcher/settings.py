"""Configuration of the dispatcher service."""

from hookstream_common.settings import CommonSettings
from pydantic import Field


class DispatcherSettings(CommonSettings):
    """Every setting of the dispatcher, read from `HOOKSTREAM_*` environment variables."""

    dispatcher_host: str = Field("127.0.0.1", description="Address of /metrics, /healthz, /readyz.")
    dispatcher_port: int = Field(8002, description="Port of the dispatcher's operations endpoints.")
    dispatcher_group: str = Field(
        "", description="Kafka consumer group; default `<topic_prefix>-dispatcher`."
    )
    user_agent: str = Field("Qlik Webhook", description="User-Agent of every delivery request.")
    request_timeout_seconds: float = Field(10.0, description="Whole-request timeout.")
    connect_timeout_seconds: float = Field(5.0, description="Connect timeout, within the above.")
    max_in_flight: int = Field(500, description="Concurrent requests across all webhooks.")
    extra_ca_file: str | None = Field(
        None, description="PEM file of an extra CA to trust, for development receivers."
    )
    allow_networks: str = Field(
        "",
        description="Comma-separated networks deliveries may reach although not public, e.g. "
        "`127.0.0.0/8` in development. Empty in production.",
    )
    static_hosts: str = Field(
        "",
        description="`name=address` pairs, comma separated, resolved without DNS; for "
        "development receivers only. The address still passes the network check.",
    )

    @property
    def group_id(self) -> str:
        """The consumer group every dispatcher instance joins."""
        return self.dispatcher_group or f"{self.topic_prefix}-dispatcher"

    def static_host_map(self) -> dict[str, str]:
        """`static_hosts` as a mapping."""
        pairs = (item.split("=", 1) for item in self.static_hosts.split(",") if "=" in item)
        return {name.strip(): address.strip() for name, address in pairs}
