"""Configuration of the janitor service."""

from pydantic import Field

from hookstream_common.settings import CommonSettings


class JanitorSettings(CommonSettings):
    """Every setting of the janitor, read from `HOOKSTREAM_*` environment variables."""

    janitor_host: str = Field("127.0.0.1", description="Address of /metrics, /healthz, /readyz.")
    janitor_port: int = Field(8003, description="Port of the janitor's operations endpoints.")
    janitor_interval_seconds: float = Field(300.0, description="Pause between two passes.")
    client_certificate_notice_days: int = Field(
        14,
        ge=1,
        le=365,
        description="How many days before a webhook's client certificate expires the janitor"
        " notices it (once per certificate: a warning, a metric, and the operational event).",
    )
    audit_retention_days: float = Field(
        90.0,
        gt=0,
        description="The audit trail (docs/audit.md) is kept this many days; older rows are"
        " deleted in each pass.",
    )
