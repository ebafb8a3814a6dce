"""Configuration of the API service."""

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator

from hookstream_common.settings import DeliverySettings

MIN_HS256_KEY_BYTES = 32


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
        ...,
        description="HS256 secret (at least 32 bytes), or RS256/ES256 public key (PEM), that"
        " verifies tokens.",
    )
    jwt_algorithm: Literal["HS256", "RS256", "ES256"] = Field(
        "HS256", description="Algorithm tokens must be signed with."
    )
    jwt_issuer: str = Field(
        ..., min_length=1, description="The `iss` claim every token must carry (required)."
    )
    jwt_audience: str = Field(
        ..., min_length=1, description="An `aud` every token must name (required)."
    )
    jwt_max_lifetime_seconds: int = Field(
        86400,
        ge=60,
        description="Tokens valid for longer than this (`exp` - `iat`) are refused, so a leaked"
        " token cannot be one that never ends.",
    )
    jwt_leeway_seconds: int = Field(
        30, ge=0, le=300, description="Clock skew allowed when checking `exp`, `iat` and `nbf`."
    )
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
    action_rate_per_second: float = Field(
        1.0,
        gt=0,
        description="Resends, recover requests and test events a second, per tenant.",
    )
    action_burst: int = Field(
        20, ge=1, description="Actions a tenant may start at once before the rate applies; 429."
    )
    user_rate_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="The part of the tenant's write and action rates (and bursts) one user may"
        " use, so that one user cannot lock the tenant's other users out.",
    )
    running_recoveries_per_tenant: int = Field(
        3, ge=1, description="Recoveries one tenant may have under way at once; more are a 429."
    )
    resends_in_flight_per_tenant: int = Field(
        4,
        ge=1,
        description="Resends and test events one tenant may have waiting on receivers at once,"
        " per API replica; more are a 429, so one tenant's slow receivers never hold the"
        " outbound connections every tenant shares.",
    )
    event_types_file: Path | None = Field(
        None,
        description="A JSON file of event types to offer besides Qlik's (hookstream_common"
        ".catalogue); unset: Qlik's only.",
    )
    relay_interval_seconds: float = Field(
        0.5, description="How often the outbox relay looks for changes it was not told about."
    )

    @model_validator(mode="after")
    def _strong_enough_key(self) -> Self:
        """An HS256 key shorter than its hash can be guessed offline from one token."""
        if self.jwt_algorithm == "HS256" and len(self.jwt_key.encode()) < MIN_HS256_KEY_BYTES:
            raise ValueError(
                f"HOOKSTREAM_JWT_KEY must be at least {MIN_HS256_KEY_BYTES} bytes for HS256;"
                " make one with `python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        return self
