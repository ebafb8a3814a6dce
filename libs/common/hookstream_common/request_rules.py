"""What an outbound webhook request may be: its URL and its headers. Pure logic.

The host is checked exactly as the HTTP client will send it. aiohttp takes the host from yarl,
which maps it with IDNA (UTS 46) first: `10.0.0。1` (an ideographic full stop) becomes
`10.0.0.1`, fullwidth digits (U+FF10 to U+FF19) become ASCII ones, and aiohttp connects to an
IP-literal host without asking the resolver. So every rule here runs on yarl's `raw_host`,
never on the string the tenant typed. The API applies `check_webhook_url` when a URL is saved;
every sender applies `refusal_at_send` just before it connects (hookstream_common.http_client),
which also covers rows written before a rule existed.
"""

import ipaddress
import re
import socket
from dataclasses import dataclass

from yarl import URL

from hookstream_common.ssrf import IPAddress, IPNetwork, is_allowed

MAX_LABEL_CHARS = 63
MAX_HOST_CHARS = 253
_LABEL = re.compile(r"[a-z0-9_-]+")
"""A label as DNS carries it after IDNA: letters, digits, hyphens (underscores are tolerated)."""
# Characters no IP parser accepts (inet_aton takes decimal, octal and hex parts), unless they
# follow whitespace, after which inet_aton ignores the rest: `127.0.0.1 x` is 127.0.0.1.
_NOT_NUMERIC = re.compile(r"[g-wyz_-]", re.IGNORECASE)
_SPACE = re.compile(r"\s")
_PORT_RANGE = re.compile(r"([0-9]{1,5})(?:\s*-\s*([0-9]{1,5}))?")

SERVICE_HEADERS = frozenset({"content-type", "user-agent", "qlik-signature"})
"""Headers the service sets on every delivery; `webhook-*` too (see `is_reserved_header`)."""
FRAMING_HEADERS = frozenset(
    {
        # Hop-by-hop (RFC 9110 7.6.1): they describe the connection, not the message.
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "http2-settings",
        # How the body is framed and routed: the client computes these from what it sends.
        "content-length",
        "content-encoding",
        "host",
        "expect",
    }
)
"""Headers that would make the request say something else than what is sent: with a custom
`Transfer-Encoding: chunked`, the client sent both it and Content-Length around a plain body."""


class UrlRuleError(ValueError):
    """A URL that breaks a rule; the message says which, and never echoes the URL."""


@dataclass(frozen=True)
class PortSet:
    """Ports deliveries may connect to: `443`, `443,8443`, or ranges like `1024-65535`."""

    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, text: str) -> "PortSet":
        """From a setting; raises ValueError on anything but ports 1-65535 and ranges of them."""
        ranges = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            match = _PORT_RANGE.fullmatch(item)
            if match is None:
                raise ValueError(f"{item!r} is not a port or a range of ports like 1024-65535")
            first, last = int(match[1]), int(match[2] or match[1])
            if not 1 <= first <= last <= 65535:
                raise ValueError(f"{item!r} is not within 1-65535 with the lower port first")
            ranges.append((first, last))
        if not ranges:
            raise ValueError("names no port; the default is 443")
        return cls(tuple(ranges))

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and any(low <= port <= high for low, high in self.ranges)

    def __str__(self) -> str:
        return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in self.ranges)


HTTPS_ONLY = PortSet(((443, 443),))


def parse_url(text: str) -> URL:
    """The URL as the client parses it, its host mapped by IDNA as the client will send it."""
    try:
        url = URL(text)
        _ = url.raw_host, url.port  # IDNA runs lazily: make it fail here, not at send time
    except ValueError:  # UnicodeError too
        raise UrlRuleError("is not a valid URL, or its host name cannot be encoded") from None
    return url


def ip_literal(host: str) -> IPAddress | None:
    """The address an IP-literal host names, in any spelling; None for a name.

    Brackets, an IPv6 zone id and trailing dots are ignored; legacy IPv4 forms that the C
    library still parses (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`) count as addresses.
    """
    candidate = host.strip("[]").partition("%")[0].rstrip(".")
    if ":" not in candidate and _NOT_NUMERIC.search(candidate) and not _SPACE.search(candidate):
        return None  # a name: the common case on every request, answered without parsing
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(candidate))
    except (OSError, ValueError):
        return None


def check_webhook_url(text: str, ports: PortSet) -> None:
    """HTTPS to a fully qualified domain name on an allowed port; never an IP address in any
    spelling, never user information. Raises `UrlRuleError`."""
    url = parse_url(text)
    if url.scheme != "https":
        raise UrlRuleError("must use https")
    if url.user is not None or url.password is not None:
        raise UrlRuleError("must not contain user information")
    host = url.raw_host or ""
    if not host:
        raise UrlRuleError("must name a host")
    if ip_literal(host) is not None:
        raise UrlRuleError("must use a domain name, not an IP address")
    _check_dns_name(host.removesuffix("."))
    if url.port not in ports:
        raise UrlRuleError(f"must use an allowed port ({ports})")


def _check_dns_name(name: str) -> None:
    """A fully qualified name DNS can carry: two labels or more, under a top-level domain."""
    if len(name) > MAX_HOST_CHARS:
        raise UrlRuleError(f"has a host name over {MAX_HOST_CHARS} characters")
    labels = name.split(".")
    if any(len(label) > MAX_LABEL_CHARS for label in labels):
        raise UrlRuleError(f"has a host name label over {MAX_LABEL_CHARS} characters")
    if len(labels) < 2 or not all(labels) or not labels[-1][0].isalpha():
        raise UrlRuleError("must use a fully qualified domain name, like hooks.example.com")
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise UrlRuleError("has a host name with characters DNS names do not have")


def refusal_at_send(url: URL, allow: tuple[IPNetwork, ...], ports: PortSet) -> str | None:
    """Why a sender must not connect to `url`, or None. Names are left to the guarded resolver;
    an IP-literal host never reaches it, so it is judged here, as a resolved address would be.
    The reason reaches the tenant (statusMessage): it names no address."""
    if url.port not in ports:
        return f"port {url.port} is not one webhooks may use ({ports})"
    address = ip_literal(url.raw_host or "")
    if address is not None and not is_allowed(address, allow):
        return "the URL's host is an IP address webhooks may not reach"
    return None


def is_reserved_header(name: str) -> bool:
    """Set by the service, or about the connection or the body's framing: never the tenant's."""
    lower = name.lower()
    return (
        lower in SERVICE_HEADERS
        or lower in FRAMING_HEADERS
        or lower.startswith(("webhook-", "proxy-"))
    )
