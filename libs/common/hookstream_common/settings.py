"""Settings every service shares; each service extends `CommonSettings` with its own."""

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, FilePath, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hookstream_common.egress import EgressProxy
from hookstream_common.operational import DEFAULT_RECOVERED_AFTER
from hookstream_common.request_rules import PortSet
from hookstream_common.topics import Topics
from hookstream_common.tracing import TracingSettings

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]


class KafkaSecurity(BaseSettings):
    """How every Kafka client (services, SDK, tools, tests) connects: TLS, SASL, timeout.

    Read from `KAFKA_<FIELD>` (e.g. `KAFKA_SECURITY_PROTOCOL`), the names Kafka's own tools and
    most platforms use. Each secret can come from a file instead (`KAFKA_SASL_PASSWORD_FILE`), as
    Kubernetes mounts secrets; the file is read whenever a client is made. `hookstream_common.kafka.
    client_options` turns this block into aiokafka's arguments.
    """

    model_config = SettingsConfigDict(
        env_prefix="KAFKA_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    sasl_mechanism: SaslMechanism | None = Field(
        None,
        description="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER; required with SASL_*.",
    )
    sasl_username: str | None = Field(None, description="SASL user (PLAIN, SCRAM).")
    sasl_username_file: FilePath | None = Field(
        None, description="A file holding the SASL user, instead of `sasl_username`."
    )
    sasl_password: SecretStr | None = Field(None, description="SASL password (PLAIN, SCRAM).")
    sasl_password_file: FilePath | None = Field(
        None, description="A file holding the SASL password, instead of `sasl_password`."
    )
    sasl_oauth_token_provider: str | None = Field(
        None,
        description="OAUTHBEARER: `package.module:name` of a callable (or class) that takes no "
        "argument and returns an `aiokafka.abc.AbstractTokenProvider`.",
    )
    ssl_cafile: FilePath | None = Field(
        None,
        description="PEM bundle of the CAs that sign the brokers' certificates; the "
        "system's trust store when unset.",
    )
    ssl_certfile: FilePath | None = Field(
        None, description="PEM client certificate (chain), for brokers that require mTLS."
    )
    ssl_keyfile: FilePath | None = Field(None, description="PEM private key of `ssl_certfile`.")
    ssl_key_password: SecretStr | None = Field(
        None, description="Password of `ssl_keyfile`, when it is encrypted."
    )
    ssl_key_password_file: FilePath | None = Field(
        None, description="A file holding `ssl_key_password`."
    )
    ssl_check_hostname: bool = Field(
        True, description="Check that a broker's certificate names the host connected to."
    )
    request_timeout_ms: int = Field(
        5000,
        ge=1000,
        description="How long a client waits for a broker's answer (a producer also for a "
        "partition's leader) before it gives up on that broker and asks the cluster again. A "
        "frozen broker keeps its connections open without answering, so this bounds how long a "
        "frozen group coordinator or leader holds work up; after one such timeout no client of "
        "the process asks that broker anything until it answers a probe (aiokafka's default: "
        "40 s). Keep it above the slowest answer a healthy broker gives (docs/operations.md, "
        "failover).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "KafkaSecurity":
        """Refuse at start what could only fail later, naming the variable to set."""
        sasl = self.security_protocol.startswith("SASL_")
        if sasl and self.sasl_mechanism is None:
            raise ValueError(f"KAFKA_SASL_MECHANISM is required with {self.security_protocol}")
        if not sasl and self.sasl_mechanism is not None:
            raise ValueError(
                "KAFKA_SASL_MECHANISM needs KAFKA_SECURITY_PROTOCOL SASL_SSL or SASL_PLAINTEXT"
            )
        if sasl and self.sasl_mechanism == "OAUTHBEARER":
            if not self.sasl_oauth_token_provider:
                raise ValueError("OAUTHBEARER needs KAFKA_SASL_OAUTH_TOKEN_PROVIDER")
        elif sasl and (self.username is None or self.password is None):
            raise ValueError(
                f"{self.sasl_mechanism} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD "
                "(or their _FILE variants)"
            )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together")
        return self

    @property
    def tls(self) -> bool:
        """Whether the connection is encrypted."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def username(self) -> str | None:
        """The SASL user, from the variable or its file."""
        return _from_file(self.sasl_username_file) or self.sasl_username

    @property
    def password(self) -> str | None:
        """The SASL password, from the variable or its file."""
        return _secret(self.sasl_password, self.sasl_password_file)

    @property
    def key_password(self) -> str | None:
        """The client key's password, from the variable or its file."""
        return _secret(self.ssl_key_password, self.ssl_key_password_file)


def _from_file(path: Path | None) -> str | None:
    """A mounted secret's text without its trailing newline (`kubectl create secret
    --from-file` and `echo >` both leave one)."""
    if path is None:
        return None
    try:
        return path.read_text().rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None


def _secret(value: SecretStr | None, path: Path | None) -> str | None:
    return _from_file(path) or (value.get_secret_value() if value is not None else None)


class CommonSettings(BaseSettings):
    """Where the shared infrastructure is and how to name things in it.

    Read from the environment as `HOOKSTREAM_<FIELD>`, except the two infrastructure addresses,
    which use the names other tools use too: `KAFKA_BOOTSTRAP_SERVERS` and `DATABASE_URL`.
    """

    model_config = SettingsConfigDict(
        env_prefix="HOOKSTREAM_", extra="ignore", hide_input_in_errors=True
    )
    """Inputs stay out of validation errors: they include passwords and DSNs."""

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
    kafka_security: KafkaSecurity = Field(
        default_factory=KafkaSecurity,
        description="TLS and SASL of every Kafka client, from the `KAFKA_*` variables.",
    )
    topic_prefix: str = Field(
        "hookstream",
        description="First part of every topic name; lets two installations share a cluster.",
    )
    kafka_replication_factor: int = Field(
        1, description="Replication factor of the topics Hookstream creates."
    )
    event_partitions: int = Field(
        4,
        ge=1,
        description="Partitions of the events and webhooks topics, which must be equal (the "
        "matcher joins them per partition): at most this many matchers share the work. Set it "
        "before the first start; the matcher refuses to start when the topics differ.",
    )
    topic_retention_hours: float = Field(
        168.0,
        gt=0,
        description="How long events, delivery jobs and retries are kept on Kafka: the longest "
        "outage of the matchers or dispatchers that loses no work.",
    )
    dlq_retention_hours: float = Field(
        720.0, gt=0, description="How long the dead-letter topics keep what they parked."
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
    tracing: TracingSettings = Field(
        default_factory=TracingSettings,
        description="OpenTelemetry tracing: the standard `OTEL_*` variables (docs/tracing.md).",
    )

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
    recovered_after_failures: int = Field(
        DEFAULT_RECOVERED_AFTER,
        ge=1,
        description="A successful attempt after at least this many failed attempts in a row"
        " raises the operational event `com.hookstream.v1.webhook.recovered`.",
    )
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
    egress_proxy: SecretStr | None = Field(
        None,
        description="`http://host:port` of an HTTP CONNECT proxy (e.g. Smokescreen) that every "
        "delivery leaves through, for fixed egress addresses; `http://user:password@host:port` "
        "when it asks for credentials (never logged). The sender still resolves and checks the "
        "receiver's address itself and asks the proxy for a tunnel to that address; TLS runs "
        "end to end with the receiver. Unset: deliveries connect directly.",
    )

    @field_validator("allowed_ports")
    @classmethod
    def _ports_parse(cls, value: str) -> str:
        """A bad port list is a configuration error at start, not a failure per delivery."""
        PortSet.parse(value)
        return value

    @field_validator("egress_proxy")
    @classmethod
    def _proxy_parses(cls, value: SecretStr | None) -> SecretStr | None:
        """A proxy URL that cannot be used is a configuration error at start; an empty
        one (a variable set to nothing, as compose files do) means none."""
        if value is None or not value.get_secret_value().strip():
            return None
        EgressProxy.parse(value.get_secret_value())
        return value

    @cached_property
    def egress(self) -> EgressProxy | None:
        """`egress_proxy`, parsed; None when deliveries connect directly."""
        if self.egress_proxy is None:
            return None
        return EgressProxy.parse(self.egress_proxy.get_secret_value())

    @cached_property
    def port_set(self) -> PortSet:
        """`allowed_ports`, parsed."""
        return PortSet.parse(self.allowed_ports)

    def static_host_map(self) -> dict[str, str]:
        """`static_hosts` as a mapping."""
        pairs = (item.split("=", 1) for item in self.static_hosts.split(",") if "=" in item)
        return {name.strip(): address.strip() for name, address in pairs}
