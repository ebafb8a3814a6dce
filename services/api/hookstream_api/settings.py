"""Configuration of the API service."""

from pathlib import Path

from pydantic import Field

from hookstream_common.settings import DeliverySettings


class ApiSettings(DeliverySettings):
    """Every setting of the API, read from `HOOKSTREAM_*` environment variables."""

    host: str = Field("127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(8000, description="Port of the REST API and the console.")
    ops_host: str = Field(
        "127.0.0.1", description="Address of /metrics, /healthz and /readyz (not the API's)."
    )
    ops_port: int = Field(
        8004,
        description="Port of the API's operations endpoints, apart from the public port so an"
        " ingress exposes only the API.",
    )
    jwt_key: str = Field(
        ..., description="HS256 secret, or RS256/ES256 public key (PEM), that verifies tokens."
    )
    jwt_algorithm: str = Field("HS256", description="Algorithm tokens must be signed with.")
    jwt_issuer: str | None = Field(None, description="Required `iss` claim, if set.")
    jwt_audience: str | None = Field(None, description="Required `aud` claim, if set.")
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="Proxies trusted for X-Forwarded-Proto/For, so paging links use the "
        "address clients see; `*` behind an ingress you control.",
    )
    max_body_bytes: int = Field(
        1024 * 1024, description="Larger request bodies are refused with 413 before being read."
    )
    max_url_bytes: int = Field(8192, description="Longer request URLs are refused with 414.")
    max_header_bytes: int = Field(
        16384, description="Request line and headers together; the server refuses more."
    )
    max_webhooks_per_tenant: int = Field(100, ge=1, description="Creating more is a 403.")
    write_rate_per_second: float = Field(
        10.0, gt=0, description="Webhook creates, updates and deletes a second, per tenant."
    )
    write_burst: int = Field(
        50, ge=1, description="Writes a tenant may make at once before the rate applies; 429."
    )
    event_types_file: Path | None = Field(
        None,
        description="A JSON file of event types to offer besides Qlik's (hookstream_common"
        ".catalogue); unset: Qlik's only.",
    )
    relay_interval_seconds: float = Field(
        0.5, description="How often the outbox relay looks for changes it was not told about."
    )
