"""Configuration of the matcher service."""

from pydantic import Field

from hookstream_common.settings import CommonSettings


class MatcherSettings(CommonSettings):
    """Every setting of the matcher, read from `HOOKSTREAM_*` environment variables."""

    matcher_host: str = Field("127.0.0.1", description="Address of /metrics, /healthz, /readyz.")
    matcher_port: int = Field(8001, description="Port of the matcher's operations endpoints.")
    matcher_group: str = Field(
        "", description="Kafka consumer group / faust app id; default `<topic_prefix>-matcher`."
    )
    matcher_data_dir: str = Field(
        ".hookstream/matcher", description="Where faust keeps its local state."
    )

    matcher_linger_seconds: float = Field(
        0.005,
        description="How long the producer gathers jobs into one request: fewer, larger "
        "requests for a little latency.",
    )

    @property
    def app_id(self) -> str:
        """The faust app id, which is also the consumer group and the changelog topic prefix."""
        return self.matcher_group or f"{self.topic_prefix}-matcher"
