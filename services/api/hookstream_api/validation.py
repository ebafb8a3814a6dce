"""Pure checks of webhook input that JSON schema cannot express. Each raises `InvalidInput`."""

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from yarl import URL

from hookstream_api.schemas import MAX_OWNER_ID, SINGLE_LINE

RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "user-agent", "qlik-signature"}
)
MAX_HEADER_BYTES = 2048
MAX_LABEL_CHARS = 63
MAX_HOST_CHARS = 253


class InvalidInput(ValueError):
    """Input that breaks a rule; `field` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _is_ip_literal(host: str) -> bool:
    """True for any spelling of an IP address, legacy ones like `0x7f.1` or `2130706433` too."""
    candidate = host.strip("[]")
    try:
        ipaddress.ip_address(candidate)
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(candidate)
        return True
    except OSError:
        return False


def check_url(url: str) -> None:
    """HTTPS, to a fully qualified domain name, never to an IP address, without user info."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number
    except ValueError as exc:
        raise InvalidInput("url", f"is not a valid URL ({exc})") from None
    if parts.scheme != "https":
        raise InvalidInput("url", "must use https")
    if "@" in parts.netloc:
        raise InvalidInput("url", "must not contain user information")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise InvalidInput("url", "must name a host")
    if _is_ip_literal(host):
        raise InvalidInput("url", "must use a domain name, not an IP address")
    labels = host.split(".")
    if len(labels) < 2 or not all(labels) or labels[-1].isdigit():
        raise InvalidInput("url", "must use a fully qualified domain name, like hooks.example.com")
    _check_dns_name(url)


def _check_dns_name(url: str) -> None:
    """A host name DNS can carry, encoded as the delivery client (aiohttp, via yarl) encodes it.

    Anything else could never be delivered to: IDNA fails on it before any DNS query.
    """
    try:
        host = URL(url).raw_host or ""
    except ValueError:  # UnicodeError too
        raise InvalidInput("url", "has a host name that cannot be encoded for DNS") from None
    if len(host) > MAX_HOST_CHARS:
        raise InvalidInput("url", f"has a host name over {MAX_HOST_CHARS} characters")
    if any(len(label) > MAX_LABEL_CHARS for label in host.split(".")):
        raise InvalidInput("url", f"has a host name label over {MAX_LABEL_CHARS} characters")


def check_headers(field: str, headers: dict[str, str]) -> None:
    """No reserved names, no duplicates ignoring case, at most 2048 bytes in all."""
    seen: set[str] = set()
    size = 0
    for name, value in headers.items():
        lower = name.lower()
        if not name or not name.isascii() or any(c in name for c in " :\r\n\t"):
            raise InvalidInput(field, f"{name!r} is not a valid header name")
        if lower in RESERVED_HEADERS or lower.startswith("webhook-"):
            raise InvalidInput(field, f"{name} is set by the service and cannot be overridden")
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


def check_owner_id(owner_id: str) -> None:
    """The owner, given or the caller's user id by default, fits the route set's bound."""
    if len(owner_id) > MAX_OWNER_ID:
        raise InvalidInput(
            "ownerId", f"is over {MAX_OWNER_ID} characters (the caller's user id, if not given)"
        )
    if not re.fullmatch(SINGLE_LINE, owner_id):
        raise InvalidInput("ownerId", "must not contain control characters")
