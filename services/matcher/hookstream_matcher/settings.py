"""Configuration of the matcher service."""

from pydantic import Field

from hookstream_common.settings import CommonSettings


class MatcherSettings(CommonSettings):
    """Every setting of the matcher, read from `HOOKSTREAM_*` environment variables."""

    matcher_host: str = Field("127.0.0.1", description="Address of /metrics, /healthz, /readyz.")
    matcher_port: int = Field(8001, description="Port of the matcher's operations endpoints.")
    matcher_group: str = Field(
        "", description="Kafka consumer group of the matchers; default `<topic_prefix>-matcher`."
    )
    matcher_linger_seconds: float = Field(
        0.005,
        description="How long the producer gathers jobs into one request: fewer, larger "
        "requests for a little latency.",
    )
    matcher_batch_size: int = Field(
        500, description="Most events routed (and committed) as one batch.", ge=1
    )
    matcher_pipeline_depth: int = Field(
        4,
        description="Most batches in flight at once: the matcher routes the next batch while"
        " earlier ones wait for their jobs and wake-ups to be acknowledged and are committed, in"
        " order. 1 routes one batch at a time.",
        ge=1,
    )
    matcher_max_held_jobs: int = Field(
        10_000,
        description="Most delivery jobs held in memory until the broker serves their webhook's"
        " just-created topic. At this many, the events partitions with held jobs are paused"
        " (the others go on) until some are sent.",
        ge=1,
    )
    matcher_batch_timeout_seconds: float = Field(
        30.0,
        description="Longest one turn of the matcher's loop may take: fetching a batch, loading"
        " routes, producing its jobs and wake-ups and committing; also the longest a batch in"
        " flight may take to be acknowledged and committed. A batch cut short is routed"
        " again; a loop that has not turned for twice this fails /healthz and /readyz.",
        gt=0,
    )
    matcher_shutdown_grace_seconds: float = Field(
        10.0,
        description="On SIGTERM, how long the batches in hand may take to finish (then they are"
        " left uncommitted, for the partition's next owner), and then leaving the group.",
        gt=0,
    )
    max_event_bytes: int = Field(
        1024 * 1024,
        description="Events larger than this go to the dead-letter topic with the reason.",
        ge=1024,
    )

    @property
    def group_id(self) -> str:
        """The consumer group all matchers join."""
        return self.matcher_group or f"{self.topic_prefix}-matcher"
