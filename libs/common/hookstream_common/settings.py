"""Settings every service shares; each service extends `CommonSettings` with its own."""

from functools import cached_property

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hookstream_common.request_rules import PortSet
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
    dispatcher_group: str = Field(
        "",
        description="The dispatchers' Kafka consumer group (the janitor reads its offsets);"
        " default `<topic_prefix>-dispatcher`.",
    )
    dispatch_shards: int = Field(
        64,
        description="Shards (partitions of the shard topic); fixed for the life of a cluster.",
        ge=1,
    )
    retention_days: float = Field(
        7.0, description="Delivery history is kept, and shown, for this many days."
    )
    log_level: str = Field("INFO", description="Lowest level that is logged.")
    log_format: str = Field("json", description="`json` for machines, `console` for people.")

    @property
    def topics(self) -> Topics:
        """The topic names under `topic_prefix`."""
        return Topics(self.topic_prefix)

    @property
    def dispatcher_group_id(self) -> str:
        """`dispatcher_group`, or its default under the topic prefix."""
        return self.dispatcher_group or f"{self.topic_prefix}-dispatcher"


class DeliverySettings(CommonSettings):
    """How webhook requests are sent: by the dispatcher, and by the API's resend."""

    user_agent: str = Field("Qlik Webhook", description="User-Agent of every delivery request.")
    request_timeout_seconds: float = Field(10.0, description="Whole-request timeout.")
    connect_timeout_seconds: float = Field(5.0, description="Connect timeout, within the above.")
    extra_ca_file: str | None = Field(
        None, description="PEM file of an extra CA to trust, for development receivers."
    )
    allow_networks: str = Field(
        "",
        description="Comma-separated networks deliveries may reach although not public, e.g. "
        "`127.0.0.0/8` in development. Empty in production.",
    )
    allowed_ports: str = Field(
        "443",
        description="Ports webhook URLs may use, comma separated, ranges allowed: `443,8443` "
        "or `1024-65535`. The API refuses other ports (400 naming `url`) and no sender "
        "connects to one. Development and tests open the ports their receivers use.",
    )
    static_hosts: str = Field(
        "",
        description="`name=address` pairs, comma separated, resolved without DNS; for "
        "development receivers only. The address still passes the network check.",
    )

    @field_validator("allowed_ports")
    @classmethod
    def _ports_parse(cls, value: str) -> str:
        """A bad port list is a configuration error at start, not a failure per delivery."""
        PortSet.parse(value)
        return value

    @cached_property
    def port_set(self) -> PortSet:
        """`allowed_ports`, parsed."""
        return PortSet.parse(self.allowed_ports)

    def static_host_map(self) -> dict[str, str]:
        """`static_hosts` as a mapping."""
        pairs = (item.split("=", 1) for item in self.static_hosts.split(",") if "=" in item)
        return {name.strip(): address.strip() for name, address in pairs}
