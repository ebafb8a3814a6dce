"""Settings every service shares; each service extends `CommonSettings` with its own."""

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from hookstream_common.topics import Topics


class CommonSettings(BaseSettings):
    """Where the shared infrastructure is and how to name things in it.

    Read from the environment as `HOOKSTREAM_<FIELD>`, except the two infrastructure addresses,
    which use the names other tools use too: `KAFKA_BOOTSTRAP_SERVERS` and `DATABASE_URL`.
    """

    model_config = SettingsConfigDict(env_prefix="HOOKSTREAM_", extra="ignore")

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:19092",
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "HOOKSTREAM_KAFKA_BOOTSTRAP_SERVERS"
        ),
        description="Kafka brokers, comma separated.",
    )
    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:54329/hookstream",
        validation_alias=AliasChoices("DATABASE_URL", "HOOKSTREAM_DATABASE_URL"),
        description="Postgres DSN.",
    )
    topic_prefix: str = Field(
        "hookstream",
        description="First part of every topic name; lets two installations share a cluster.",
    )
    kafka_replication_factor: int = Field(
        1, description="Replication factor of the topics Hookstream creates."
    )
    encryption_keys: str = Field(
        "",
        description="Fernet keys for secrets at rest, comma separated, newest first. "
        "Required by the API and the dispatcher.",
    )
    log_level: str = Field("INFO", description="Lowest level that is logged.")
    log_format: str = Field("json", description="`json` for machines, `console` for people.")

    @property
    def topics(self) -> Topics:
        """The topic names under `topic_prefix`."""
        return Topics(self.topic_prefix)
