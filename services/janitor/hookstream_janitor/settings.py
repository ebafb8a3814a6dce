"""Configuration of the janitor service."""

from pydantic import Field

from hookstream_common.settings import CommonSettings


class JanitorSettings(CommonSettings):
    """Every setting of the janitor, read from `HOOKSTREAM_*` environment variables."""

    janitor_host: str = Field("127.0.0.1", description="Address of /metrics, /healthz, /readyz.")
    janitor_port: int = Field(8003, description="Port of the janitor's operations endpoints.")
    janitor_interval_seconds: float = Field(300.0, description="Pause between two passes.")
    dispatcher_group: str = Field(
        "",
        description="The dispatchers' consumer group, to tell when a deleted webhook's topic "
        "is drained; default `<topic_prefix>-dispatcher`.",
    )

    def model_post_init(self, context: object) -> None:
        """Default the group the way the dispatcher does."""
        self.dispatcher_group = self.dispatcher_group or f"{self.topic_prefix}-dispatcher"
