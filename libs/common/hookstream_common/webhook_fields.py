"""The webhook's fields, declared once.

`FIELDS` says, for each field of the API's webhook document: its name, its type in a request
body (with the limits) and in the response, its default, the columns it is stored in and how it
converts, and whether matching (route) or sending (target) reads it. The API's pydantic models
(hookstream_api.schemas), the column lists and the forms (webhook_model) are derived from it, so
a new field is one entry here. No I/O.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import asyncpg
import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema
from pydantic_core import PydanticUndefined

from hookstream_common.client_certs import MAX_PEM, describe
from hookstream_common.crypto import SecretBox
from hookstream_common.secret_rotation import DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS

Level = Literal["tenant", "user"]
Origin = Literal["api", "automations", "management-console"]

# Every string a client writes has a maximum (decision 10), in characters as JSON Schema counts
# them. The fields that go into a tenant's route set (ownerId, filter, eventTypes) are the tight
# ones: with at most 100 webhooks, its worst case must stay under the broker's 1 MiB message
# limit (see hookstream_api.relay). A longer value is a 400; a stored one that no longer fits
# (written before these limits) makes a PATCH answer 400 for that field until it is replaced.
MAX_NAME = 256
MAX_DESCRIPTION = 4096
MAX_URL = 2048
MAX_EVENT_TYPES = 32
MAX_EVENT_TYPE = 128
MAX_OWNER_ID = 256
MAX_FILTER = 1024
MAX_HEADERS = 64
MAX_HEADER_NAME = 256
MAX_HEADER_VALUE = 2048
MAX_SECRET = 64
MAX_RATE_PER_SECOND = 10_000
MAX_BURST = 10_000

# No control characters (so no NUL, which Postgres text refuses) and no lone surrogates (which
# no encoder takes): each allowed character is at most 4 bytes in UTF-8 JSON.
SINGLE_LINE = r"^[^\x00-\x1f\x7f]*$"
MULTI_LINE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
"""Also tab, LF and CR."""
NO_SPACE = r"^[^\x00-\x20\x7f]*$"

EventTypeName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_EVENT_TYPE, pattern=r"^[A-Za-z0-9._-]+$")
]
HEADER_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
"""An HTTP token (RFC 9110)."""
HEADER_VALUE = r"^[^\x00-\x08\x0a-\x1f\x7f]*$"
"""Visible characters, spaces and tabs (RFC 9110); no line breaks."""
HeaderName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_HEADER_NAME, pattern=HEADER_NAME)
]
HeaderValue = Annotated[str, StringConstraints(max_length=MAX_HEADER_VALUE, pattern=HEADER_VALUE)]
Headers = Annotated[
    dict[HeaderName, HeaderValue],
    Field(max_length=MAX_HEADERS),
    # pydantic would document the name pattern as patternProperties, leaving other names open.
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_HEADERS,
            "propertyNames": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_HEADER_NAME,
                "pattern": HEADER_NAME,
            },
            "additionalProperties": {
                "type": "string",
                "maxLength": MAX_HEADER_VALUE,
                "pattern": HEADER_VALUE,
            },
        }
    ),
]


class RateLimit(BaseModel):
    """Hookstream extension: how fast this webhook's deliveries may start (a token bucket)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", strict=True)

    per_second: float = Field(
        alias="perSecond",
        gt=0,
        le=MAX_RATE_PER_SECOND,
        examples=[5],
        description="Deliveries a second on average, retries included (fractions allowed).",
    )
    burst: int = Field(
        1,
        ge=1,
        le=MAX_BURST,
        description="How many may start at once after a quiet spell; default 1.",
    )


class ClientCertificateInput(BaseModel):
    """Hookstream extension: a client certificate and its key, as a request writes them."""

    model_config = ConfigDict(extra="forbid", strict=True)

    certificate: str = Field(
        min_length=1,
        max_length=MAX_PEM,
        description="PEM: the client certificate, then any intermediates it needs.",
    )
    key: str = Field(
        min_length=1,
        max_length=MAX_PEM,
        json_schema_extra={"writeOnly": True},
        description="PEM: its private key, not password-protected. Stored encrypted, never shown.",
    )


class ClientCertificateInfo(BaseModel):
    """Hookstream extension: what the API shows of a webhook's client certificate."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    subject: str = Field(description="The certificate's subject (RFC 4514).")
    not_after: datetime = Field(alias="notAfter", description="When the certificate expires.")


Row = asyncpg.Record | dict[str, Any]
Read = Callable[[Row], Any]
Write = Callable[[Any, SecretBox], dict[str, Any]]
Open = Callable[[Row, SecretBox], Any]


@dataclass(frozen=True)
class WebhookField:
    """One field of the webhook document and where it lives."""

    api: str
    """Its name in the API (camelCase)."""
    shown: Any = None
    """Its type in the API's `Webhook`; None: write-only."""
    written: Any = None
    """Its type in a request body, limits included; None: read-only (the service sets it)."""
    default: Any = PydanticUndefined
    default_factory: Callable[[], Any] | None = None
    description: str | None = None
    examples: list[Any] | None = None
    stored: tuple[str, ...] = ()
    """Its columns; default one named as the snake_case of `api`."""
    select: str | None = None
    """How the API's query reads it, when not its columns as they are."""
    read: Read | None = None
    """The shown value from a row; default the value of its one column."""
    write: Write | None = None
    """Its columns' values from the written value; default its one column, as it is."""
    open: Open | None = None
    """The written value from a whole row, secrets decrypted; default `read`."""
    left_out_unset: bool = False
    """Not in the writable form while None, so a JSON Patch `add` can set it."""
    only_at_creation: bool = False
    """Written by create only; read-only afterwards."""
    route: bool = False
    """Matching reads it."""
    target: bool = False
    """Sending reads it."""

    @functools.cached_property
    def name(self) -> str:
        """Its Python name: the snake_case of `api` (cached: every row shown reads it)."""
        return "".join(f"_{c.lower()}" if c.isupper() else c for c in self.api)

    @functools.cached_property
    def columns(self) -> tuple[str, ...]:
        return self.stored or (self.name,)

    def value(self, row: Row) -> Any:
        return self.read(row) if self.read else row[self.columns[0]]

    def opened(self, row: Row, box: SecretBox) -> Any:
        return self.open(row, box) if self.open else self.value(row)

    def column_values(self, value: Any, box: SecretBox) -> dict[str, Any]:
        return self.write(value, box) if self.write else {self.columns[0]: value}


def _seal_headers(value: dict[str, str], box: SecretBox) -> dict[str, Any]:
    return {
        "encrypted_headers": box.seal(orjson.dumps(value).decode()) if value else None,
        "encrypted_header_names": sorted(value),
    }


def opened_headers(row: Row, box: SecretBox) -> dict[str, str]:
    """The encrypted headers in plain text; UndecryptableSecret when no key opens them."""
    sealed = row["encrypted_headers"]
    return orjson.loads(box.open(sealed)) if sealed else {}


def _client_certificate(row: Row) -> dict[str, Any] | None:
    not_after = row["client_certificate_not_after"]
    return (
        None
        if not_after is None
        else {"subject": row["client_certificate_subject"], "notAfter": not_after}
    )


def _client_certificate_columns(value: dict[str, str] | None, box: SecretBox) -> dict[str, Any]:
    info = describe(value["certificate"]) if value else None
    return {
        "client_certificate": value["certificate"] if value else None,
        "client_key": box.seal(value["key"]) if value else None,
        "client_certificate_subject": info.subject if info else None,
        "client_certificate_not_after": info.not_after if info else None,
    }


def _opened_client_certificate(row: Row, box: SecretBox) -> dict[str, str] | None:
    certificate = row["client_certificate"]
    return (
        None
        if certificate is None
        else {"certificate": certificate, "key": box.open(row["client_key"])}
    )


def _rate_limit(row: Row) -> dict[str, Any] | None:
    per_second = row["rate_limit_per_second"]
    return (
        None if per_second is None else {"perSecond": per_second, "burst": row["rate_limit_burst"]}
    )


def _rate_limit_columns(value: dict[str, Any] | None, _: SecretBox) -> dict[str, Any]:
    return {
        "rate_limit_per_second": value["perSecond"] if value else None,
        "rate_limit_burst": value["burst"] if value else None,
    }


FIELDS: tuple[WebhookField, ...] = (
    WebhookField("id", shown=str, read=lambda row: str(row["id"]), route=True, target=True),
    WebhookField(
        "name",
        shown=str,
        written=Annotated[str, Field(min_length=1, max_length=MAX_NAME, pattern=SINGLE_LINE)],
        examples=["Reload alerts"],
    ),
    WebhookField(
        "description",
        shown=str,
        written=Annotated[str, Field(max_length=MAX_DESCRIPTION, pattern=MULTI_LINE)],
        default="",
    ),
    WebhookField(
        "url",
        shown=str,
        written=Annotated[str, Field(max_length=MAX_URL, pattern=NO_SPACE)],
        examples=["https://hooks.example.com/qlik"],
        description="https only, to a fully qualified domain name, never an IP address.",
        target=True,
    ),
    WebhookField(
        "eventTypes",
        shown=list[str],
        written=Annotated[list[EventTypeName], Field(min_length=1, max_length=MAX_EVENT_TYPES)],
        examples=[["com.qlik.v1.app.reload.finished"]],
        description="Names from `GET /webhooks/event-types`.",
        read=lambda row: list(row["event_types"]),
        route=True,
    ),
    WebhookField(
        "level",
        shown=Level,
        written=Level | None,
        default=None,
        description="Default `tenant` for a TenantAdmin, `user` for anyone else.",
        route=True,
    ),
    WebhookField(
        "ownerId",
        shown=str,
        written=Annotated[str, Field(max_length=MAX_OWNER_ID, pattern=SINGLE_LINE)] | None,
        default=None,
        description="Default: the caller.",
        route=True,
    ),
    WebhookField(
        "filter",
        shown=str | None,
        written=Annotated[str, Field(max_length=MAX_FILTER, pattern=MULTI_LINE)] | None,
        default=None,
        examples=['spaceId eq "a1b2"'],
        description="SCIM-style filter over id, spaceId, topLevelResourceId, data.status.",
        route=True,
    ),
    WebhookField(
        "enabled",
        shown=bool,
        written=bool,
        default=True,
        description="New webhooks start enabled.",
        route=True,
        target=True,
    ),
    WebhookField(
        "headers",
        shown=dict[str, str],
        written=Headers,
        default_factory=dict,
        description="Sent with every request; at most 2048 bytes in all.",
        read=lambda row: dict(row["headers"]),
        target=True,
    ),
    WebhookField(
        "encryptedHeaders",
        shown=list[str],
        written=Headers,
        default_factory=dict,
        description="Sent with every request, encrypted at rest, never shown again; at most 2048"
        " bytes in all.",
        stored=("encrypted_headers", "encrypted_header_names"),
        select="encrypted_header_names",
        read=lambda row: list(row["encrypted_header_names"]),
        write=_seal_headers,
        open=opened_headers,
        target=True,
    ),
    WebhookField(
        "secret",
        written=Annotated[str, Field(min_length=32, max_length=MAX_SECRET, pattern=SINGLE_LINE)]
        | None,
        default=None,
        description="Signs each request: Qlik-Signature and webhook-signature.",
        write=lambda value, box: {"secret": box.seal(value) if value else None},
        open=lambda row, box: box.open(row["secret"]) if row["secret"] else None,
        left_out_unset=True,
        target=True,
    ),
    WebhookField("secretKeyAdded", shown=bool, select="secret IS NOT NULL AS secret_key_added"),
    WebhookField(
        "enableCloudEventDelivery", shown=bool, written=bool, default=False, route=True, target=True
    ),
    WebhookField("checkCertificateRevocation", shown=bool, written=bool, default=False),
    WebhookField(
        "origin",
        shown=Origin,
        written=Origin,
        default="api",
        description="Who created it; fixed at creation.",
        only_at_creation=True,
    ),
    WebhookField("createdAt", shown=datetime),
    WebhookField("updatedAt", shown=datetime),
    WebhookField("createdByUserId", shown=str),
    WebhookField("updatedByUserId", shown=str),
    WebhookField("disabledReason", shown=str | None),
    WebhookField("disabledReasonCode", shown=str | None),
    # Hookstream extensions, beyond the Qlik API.
    WebhookField(
        "rateLimit",
        shown=RateLimit | None,
        written=RateLimit | None,
        default=None,
        description="Hookstream extension: deliveries over it wait their turn, never dropped"
        " and never failed. Default: the dispatcher's (none unless configured).",
        stored=("rate_limit_per_second", "rate_limit_burst"),
        read=_rate_limit,
        write=_rate_limit_columns,
        left_out_unset=True,
        target=True,
    ),
    WebhookField(
        "secretRotationGraceSeconds",
        shown=int,
        written=Annotated[int, Field(ge=0, le=MAX_GRACE_SECONDS)],
        default=DEFAULT_GRACE_SECONDS,
        description="Hookstream extension: after the secret changes, how long the previous one"
        " still signs (webhook-signature carries both); 0 keeps none and ends a running window.",
    ),
    WebhookField(
        "clientCertificate",
        shown=ClientCertificateInfo | None,
        written=ClientCertificateInput | None,
        default=None,
        description="Hookstream extension: a client certificate every request to this webhook"
        " presents, for receivers that require mutual TLS. Requests write `{certificate, key}`"
        " (PEM); responses show `{subject, notAfter}`, never the key.",
        stored=(
            "client_certificate",
            "client_key",
            "client_certificate_subject",
            "client_certificate_not_after",
        ),
        select="client_certificate_subject, client_certificate_not_after",
        read=_client_certificate,
        write=_client_certificate_columns,
        open=_opened_client_certificate,
        left_out_unset=True,
        target=True,
    ),
    WebhookField(
        "previousSecretExpiresAt",
        shown=datetime | None,
        description="While a rotation's grace window runs: when the previous secret stops"
        " signing. The secrets themselves are never shown.",
        select="CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END"
        " AS previous_secret_expires_at",
        target=True,
    ),
)

SHOWN = tuple(f for f in FIELDS if f.shown is not None)
"""The fields the API's `Webhook` shows."""
WRITTEN = tuple(f for f in FIELDS if f.written is not None and not f.only_at_creation)
"""The fields a create, a replace or a JSON Patch writes."""
READ_ONLY = frozenset(f.api for f in FIELDS if f.written is None)
ONLY_AT_CREATION = frozenset(f.api for f in FIELDS if f.only_at_creation)
