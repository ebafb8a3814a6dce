"""Configuration of the dispatcher service."""

from pydantic import Field

from hookstream_common.settings import DeliverySettings
from hookstream_common.webhook_model import RateLimit
from hookstream_dispatcher.policy import RetryPolicy


class DispatcherSettings(DeliverySettings):
    """Every setting of the dispatcher, read from `HOOKSTREAM_*` environment variables."""

    dispatcher_host: str = Field("127.0.0.1", description="Address of /metrics, /healthz, /readyz.")
    dispatcher_port: int = Field(8002, description="Port of the dispatcher's operations endpoints.")
    max_in_flight: int = Field(500, description="Concurrent requests across all webhooks.")
    webhook_buffer: int = Field(
        100, description="Jobs held per webhook; its partition pauses beyond this.", ge=1
    )
    webhook_concurrency: int = Field(
        8,
        description="Requests at once per webhook; 1 sends first attempts strictly in order.",
        ge=1,
    )
    topic_idle_seconds: float = Field(
        1.0,
        description="A delivery topic with no new job for this long, its jobs all stored, is"
        " no longer read (until a wake-up or a scan finds work there).",
        gt=0,
    )
    shard_scan_seconds: float = Field(
        15.0,
        description="How often every delivery topic of the owned shards is checked for jobs"
        " no wake-up announced; the per-shard lag is measured then too.",
        gt=0,
    )
    shard_group: str = Field(
        "",
        description="The group dispatchers join on the shard topic;"
        " default `<prefix>-dispatcher-shards`.",
    )
    retry_schedule: str = Field(
        "5s,30s,2m,10m,30m,1h,3h,6h,12h",
        description="Delays before each retry (s, m, h); one delay-tier topic per entry.",
    )
    retry_jitter: float = Field(0.2, description="Each delay varies by up to this fraction.")
    auto_disable_after_seconds: float = Field(
        86400.0, description="Disable a webhook whose attempts all failed for this long..."
    )
    auto_disable_min_failures: int = Field(10, description="...and at least this many in a row.")
    delivery_rate_per_second: float | None = Field(
        None,
        description="Rate limit of every webhook that sets no `rateLimit` of its own:"
        " deliveries a second (unset: none).",
        gt=0,
    )
    delivery_rate_burst: int = Field(
        1, description="...and how many may start at once after a quiet spell.", ge=1
    )
    shutdown_grace_seconds: float = Field(
        20.0, description="On SIGTERM, how long in-flight requests may take to finish."
    )

    @property
    def shard_group_id(self) -> str:
        """`shard_group`, or its default under the topic prefix."""
        return self.shard_group or f"{self.topic_prefix}-dispatcher-shards"

    @property
    def default_rate_limit(self) -> RateLimit | None:
        """The configured default rate limit, if any."""
        if self.delivery_rate_per_second is None:
            return None
        return RateLimit(self.delivery_rate_per_second, self.delivery_rate_burst)

    @property
    def retry_policy(self) -> RetryPolicy:
        """The parsed retry schedule."""
        return RetryPolicy.parse(self.retry_schedule, self.retry_jitter)
