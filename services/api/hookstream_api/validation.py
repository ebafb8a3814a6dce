"""Pure checks of webhook input that JSON schema cannot express. Each raises `InvalidInput`."""

import re

from hookstream_common.client_certs import BadClientCertificate, inspect
from hookstream_common.request_rules import (
    PortSet,
    UrlRuleError,
    check_webhook_url,
    is_reserved_header,
)
from hookstream_common.webhook_fields import MAX_OWNER_ID, SINGLE_LINE, ClientCertificateInput

MAX_HEADER_BYTES = 2048


class InvalidInput(ValueError):
    """Input that breaks a rule; `field` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_url(url: str, ports: PortSet) -> None:
    """The URL rules every sender applies too (hookstream_common.request_rules), as input."""
    try:
        check_webhook_url(url, ports)
    except UrlRuleError as exc:
        raise InvalidInput("url", str(exc)) from None


def check_headers(field: str, headers: dict[str, str]) -> None:
    """No reserved names (the service's own, hop-by-hop and framing headers), no duplicates
    ignoring case, at most 2048 bytes in all."""
    seen: set[str] = set()
    size = 0
    for name, value in headers.items():
        lower = name.lower()
        if not name or not name.isascii() or any(c in name for c in " :\r\n\t"):
            raise InvalidInput(field, f"{name!r} is not a valid header name")
        if is_reserved_header(name):
            raise InvalidInput(
                field,
                f"{name} is reserved: set by the service, or about the connection or the body's"
                " framing",
            )
        if lower in seen:
            raise InvalidInput(field, f"{name} appears more than once (names ignore case)")
        if "\r" in value or "\n" in value:
            raise InvalidInput(field, f"the value of {name} contains a line break")
        seen.add(lower)
        size += len(name.encode()) + len(value.encode())
    if size > MAX_HEADER_BYTES:
        raise InvalidInput(field, f"are {size} bytes; at most {MAX_HEADER_BYTES} are allowed")


def check_event_types(event_types: list[str], known: frozenset[str]) -> None:
    """At least one, all from the catalogue."""
    if not event_types:
        raise InvalidInput("eventTypes", "must name at least one event type")
    unknown = sorted(set(event_types) - known)
    if unknown:
        raise InvalidInput("eventTypes", f"unknown event type(s): {', '.join(unknown)}")


def check_certificate_revocation(enabled: bool) -> None:
    """Refuse `true`: the delivery client checks neither OCSP nor CRLs, and must not pretend to."""
    if enabled:
        raise InvalidInput(
            "checkCertificateRevocation",
            "true is not supported: deliveries verify certificates but do not check revocation"
            " (OCSP or CRL); leave it false",
        )


def check_client_certificate(pair: ClientCertificateInput | None) -> None:
    """A certificate chain and its own unencrypted key (client_certs); the error names
    the part, never its content."""
    if pair is not None:
        try:
            inspect(pair.certificate, pair.key)
        except BadClientCertificate as exc:
            raise InvalidInput(f"clientCertificate.{exc.part}", str(exc)) from None


def check_owner_id(owner_id: str) -> None:
    """The owner, given or the caller's user id by default, fits the route set's bound."""
    if len(owner_id) > MAX_OWNER_ID:
        raise InvalidInput(
            "ownerId", f"is over {MAX_OWNER_ID} characters (the caller's user id, if not given)"
        )
    if not re.fullmatch(SINGLE_LINE, owner_id):
        raise InvalidInput("ownerId", "must not contain control characters")
