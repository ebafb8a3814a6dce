"""Every spelling of an internal address is refused: when a URL is saved, and when it is sent.

The pure part draws spellings with Hypothesis (Unicode full stops and digits, decimal, octal
and hexadecimal parts, short forms, IPv6 with IPv4 inside, zone ids, trailing dots, user
information) and checks them the way the client will connect: after yarl's IDNA mapping. The
socket part points the real delivery client at a listener that counts connections. The stack
part (fixtures from tests/e2e) shows the API answers 400 at create, PATCH and PUT, and that
neither the dispatcher nor resend connects to such a URL written straight into the database.
"""

import asyncio
import ipaddress
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from e2e.scenario import Scenario, unique_path
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hookstream_common.client_certs import TlsContexts
from hookstream_common.delivery import OutboundRequest, send
from hookstream_common.http_client import client_session
from hookstream_common.request_rules import (
    HTTPS_ONLY,
    PortSet,
    UrlRuleError,
    check_webhook_url,
    ip_literal,
    parse_url,
    refusal_at_send,
)
from hookstream_common.ssrf import IPAddress, is_allowed, parse_networks
from hookstream_common.webhook_store import OUTBOX_CHANNEL
from hookstream_dev.receiver import Receiver
from support import bearer, receiver_url, wait_until

ANY_PORT = PortSet.parse("1-65535")

# Separators IDNA (UTS 46) maps to a full stop, and digit sets it maps to ASCII digits.
DOTS = (".", "\u3002", "\uff0e", "\uff61", "\u2024")
DIGIT_SETS = tuple(
    "".join(chr(first + i) for i in range(10))
    for first in (0x30, 0xFF10, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6)
)
FULLWIDTH_LETTERS = {chr(c): chr(0xFF41 + c - ord("a")) for c in range(ord("a"), ord("z") + 1)}

INTERNAL_V4 = [
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "0.0.0.0/8",
        "100.64.0.0/10",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]
INTERNAL_V6 = [
    ipaddress.ip_network(n) for n in ("::1/128", "::/128", "fe80::/10", "fc00::/7", "ff00::/8")
]
V4_IN_V6 = ("::ffff:{}", "::{}", "::ffff:0:{}", "64:ff9b::{}")
"""IPv6 forms that carry an IPv4 address in their low 32 bits."""


@dataclass(frozen=True)
class Spelling:
    """A URL, and the internal address its host names."""

    url: str
    address: IPAddress


def in_network(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> st.SearchStrategy[Any]:
    first = int(network.network_address)
    kind = type(network.network_address)  # ip_address(1) would be 0.0.0.1, not ::1
    return st.integers(first, first + network.num_addresses - 1).map(kind)


internal_v4 = st.sampled_from(INTERNAL_V4).flatmap(in_network)
internal_v6 = st.sampled_from(INTERNAL_V6).flatmap(in_network)


@st.composite
def number(draw: st.DrawFn, value: int) -> str:
    """One part of a legacy IPv4 spelling: decimal, octal or hexadecimal, padded or not."""
    radix = draw(st.sampled_from((10, 8, 16)))
    if radix == 10:
        return str(value)
    zeros = "0" * draw(st.integers(0, 3))
    if radix == 8:
        return "0" + zeros + format(value, "o")
    digits = format(value, draw(st.sampled_from(("x", "X"))))
    return draw(st.sampled_from(("0x", "0X"))) + zeros + digits


@st.composite
def unicode_form(draw: st.DrawFn, text: str) -> str:
    """`text` with its digits (and, fullwidth, its letters) from a set IDNA maps to ASCII."""
    digits = draw(st.sampled_from(DIGIT_SETS))
    letters = FULLWIDTH_LETTERS if digits == DIGIT_SETS[1] else {}
    return "".join(
        digits[int(c)] if c.isdigit() else letters.get(c.lower(), c) if c.isalpha() else c
        for c in text
    )


@st.composite
def v4_host(draw: st.DrawFn, address: ipaddress.IPv4Address) -> str:
    """`a.b.c.d`, `a.b.cd`, `a.bcd` or `abcd`, each part in any radix and digit set, joined
    by any full stop, maybe with a trailing one."""
    value = int(address)
    count = draw(st.integers(1, 4))
    parts = [(value >> (24 - 8 * i)) & 0xFF for i in range(count - 1)]
    parts.append(value & ((1 << (8 * (5 - count))) - 1))
    spelled = [draw(unicode_form(draw(number(part)))) for part in parts]
    host = spelled[0]
    for part in spelled[1:]:
        host += draw(st.sampled_from(DOTS)) + part
    return host + draw(st.sampled_from(("", *DOTS)))


@st.composite
def v6_host(draw: st.DrawFn, address: ipaddress.IPv6Address) -> str:
    """Compressed or exploded, any case, maybe with a zone id, in brackets."""
    text = draw(st.sampled_from((address.compressed, address.exploded)))
    if draw(st.booleans()):
        text = text.upper()
    zone = draw(st.sampled_from(("", "%25eth0", "%251", "%25lo")))
    return f"[{text}{zone}]"


@st.composite
def v4_in_v6_host(draw: st.DrawFn, inner: ipaddress.IPv4Address) -> tuple[str, IPAddress]:
    """An internal IPv4 address inside an IPv6 form, its low bits dotted or in hex groups."""
    text = draw(st.sampled_from(V4_IN_V6)).format(inner)
    address = ipaddress.IPv6Address(text)
    if draw(st.booleans()):
        text = address.compressed
    return f"[{text}]", address


@st.composite
def internal_urls(draw: st.DrawFn) -> Spelling:
    """A URL whose host, as the client sends it, is an internal address."""
    kind = draw(st.sampled_from(("v4", "v6", "v4-in-v6")))
    address: IPAddress
    if kind == "v4":
        address = draw(internal_v4)
        host = draw(v4_host(address))
    elif kind == "v6":
        address = draw(internal_v6)
        host = draw(v6_host(address))
    else:
        host, address = draw(v4_in_v6_host(draw(internal_v4)))
    userinfo = draw(st.sampled_from(("", "user@", "user:pw@", "hooks.example.com@")))
    port = draw(st.sampled_from(("", ":443", ":8000", ":1")))
    scheme = draw(st.sampled_from(("https", "HTTPS")))
    return Spelling(f"{scheme}://{userinfo}{host}{port}/hook", address)


@settings(max_examples=300, deadline=None)  # the machine is shared: time is no property here
@given(internal_urls())
@example(Spelling("https://10.0.0\u30021/", ipaddress.ip_address("10.0.0.1")))
@example(Spelling("https://0.0.0\uff610:8000/", ipaddress.ip_address("0.0.0.0")))
@example(Spelling("https://\uff11\uff12\uff17.0.0.1/", ipaddress.ip_address("127.0.0.1")))
@example(Spelling("https://127.1/", ipaddress.ip_address("127.0.0.1")))
@example(Spelling("https://[fe80::1%25eth0]/", ipaddress.ip_address("fe80::1")))
def test_every_spelling_of_an_internal_address_is_refused(spelling: Spelling) -> None:
    """Refused when saved, for naming an address; and the host the client will connect to is
    that very address, which the send-time guard refuses too."""
    assert not is_allowed(spelling.address)
    with pytest.raises(UrlRuleError, match=r"not an IP address|user information"):
        check_webhook_url(spelling.url, ANY_PORT)
    url = parse_url(spelling.url)
    assert ip_literal(url.raw_host or "") == spelling.address
    assert refusal_at_send(url, (), ANY_PORT) is not None


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="0123456789abcdefxXgz.:%[] \t-_", max_size=24)
    | st.from_regex(r"0x[0-9a-f]{1,8}(\.[0-9]{1,3}){0,3}[ \t]?[a-z.]*", fullmatch=True)
)
def test_what_is_no_ip_literal_no_parser_reads_as_one(host: str) -> None:
    """`ip_literal` answers names without parsing them (it runs before every request): each
    host it calls a name, neither Python nor the C library reads as an address."""
    if ip_literal(host) is not None:
        return
    candidate = host.strip("[]").partition("%")[0].rstrip(".")
    with pytest.raises(ValueError):
        ipaddress.ip_address(candidate)
    with pytest.raises(OSError):
        socket.inet_aton(candidate)


LABELS = st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True), max_size=8)


@given(LABELS.filter(bool), st.from_regex(r"[a-z]{2,8}", fullmatch=True))
def test_domain_names_pass(labels: list[str], tld: str) -> None:
    """The rules refuse addresses, not names: the check is no wall that refuses everything."""
    url = f"https://{'.'.join([*labels, tld])}/hook"
    check_webhook_url(url, HTTPS_ONLY)
    assert refusal_at_send(parse_url(url), (), HTTPS_ONLY) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://hooks.example.com:8443/", "allowed port"),
        ("https://hooks.example.com:0/", "allowed port"),
        ("https://hooks.example.com:\u0664\u0664\u0663/x", None),  # Arabic-Indic 443 is 443
        ("https://hooks.example.com../", "fully qualified"),
        ("https://hooks.0x7f/", "fully qualified"),
        ("https://hooks.example.123/", "fully qualified"),
        ("https://hooks.exa%2emple.com/", "characters DNS names do not have"),
        ("https://hooks.example.com\u200b/", "cannot be encoded"),
        ("http://hooks.example.com/", "https"),
    ],
)
def test_names_ports_and_schemes(url: str, reason: str | None) -> None:
    if reason is None:
        check_webhook_url(url, HTTPS_ONLY)
    else:
        with pytest.raises(UrlRuleError, match=reason):
            check_webhook_url(url, HTTPS_ONLY)


@pytest.mark.parametrize("text", ["", "x", "0", "65536", "8000-80", "1-2-3", "\u0664\u0664\u0663"])
def test_port_settings_are_ports_or_ranges(text: str) -> None:
    with pytest.raises(ValueError, match="port"):
        PortSet.parse(text)


def test_port_settings_read_as_written() -> None:
    ports = PortSet.parse(" 443, 1024 - 65535,")
    assert str(ports) == "443,1024-65535"
    assert 443 in ports and 1024 in ports and 65535 in ports
    assert 80 not in ports and 1023 not in ports


class Trap:
    """A TCP listener on every IPv4 interface that counts the connections it is offered."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> "Trap":
        self._server = await asyncio.start_server(self._count, "0.0.0.0", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _count(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()


async def _post(url: str, **session: Any) -> str | None:
    """POST through the delivery client; the attempt's error class."""
    async with client_session(**session) as client:
        attempt = await send(client, OutboundRequest(url, {}, b"{}", {}), TlsContexts())
    return attempt.error_class


@pytest.mark.parametrize(
    "host", ["0.0.0\uff610", "0.0.0\u30020", "\uff10.\uff10.\uff10.\uff10", "0.0.0.0", "0.0.0.0."]
)
async def test_the_client_never_connects_to_an_ip_literal_outside_the_allowed_networks(
    host: str,
) -> None:
    """The issue's bypass: after IDNA the host is 0.0.0.0, which reaches this machine."""
    async with Trap() as trap:
        assert await _post(f"https://{host}:{trap.port}/", ports=ANY_PORT) == "blocked"
    assert trap.connections == 0


async def test_the_trap_sees_what_an_allowed_network_reaches() -> None:
    """The same URL inside an allowed network connects: the trap would have seen a bypass."""
    async with Trap() as trap:
        allow = parse_networks("0.0.0.0/32")
        url = f"https://0.0.0\uff610:{trap.port}/"
        assert await _post(url, ports=ANY_PORT, allow=allow) == "disconnected"  # it hung up
    assert trap.connections == 1


async def test_the_client_never_connects_to_a_port_not_allowed() -> None:
    async with Trap() as trap:
        url = f"https://127.0.0.1:{trap.port}/"
        assert await _post(url, allow=parse_networks("127.0.0.0/8")) == "blocked"
        assert trap.connections == 0


async def _plain_http(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers in plain HTTP, as the API's own port did to the issue's `https://0.0.0｡0:8000/`."""
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    writer.close()


@pytest.mark.parametrize(
    ("listening", "error_class", "failure"),
    [(False, "connection", "connection refused"), (True, "tls", "TLS handshake failed")],
    ids=["nothing listens", "plain HTTP answers"],
)
async def test_a_failed_connection_names_no_address(
    listening: bool, error_class: str, failure: str
) -> None:
    """aiohttp's "Cannot connect to host ... [Connect call failed ('127.0.0.1', port)]" put the
    address a name resolved to in front of the tenant: now the URL's host and the kind only."""
    server = await asyncio.start_server(_plain_http, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    if not listening:
        server.close()
        await server.wait_closed()
    try:
        async with client_session(
            allow=parse_networks("127.0.0.0/8"),
            ports=ANY_PORT,
            static_hosts={"receiver.internal.test": "127.0.0.1"},
        ) as client:
            request = OutboundRequest(f"https://receiver.internal.test:{port}/", {}, b"{}", {})
            attempt = await send(client, request, TlsContexts())
    finally:
        server.close()
    assert attempt.error_class == error_class
    assert attempt.status_message().startswith(
        f"Request failed ({error_class}): cannot connect to receiver.internal.test:{port}"
        f" ({failure}"
    )
    assert "127.0.0.1" not in attempt.status_message()


# The running stack: a handful of representative spellings, each at create, PATCH and PUT.

V1 = "/api/v1/webhooks"
STACK_SPELLINGS = [
    "https://10.0.0\u30021/",
    "https://0.0.0\uff610:8000/",
    "https://\uff11\uff12\uff17.0.0.1/",
    "https://127.1/",
    "https://0x7f.1/",
    "https://2130706433/",
    "https://[::ffff:127.0.0.1]/",
    "https://[fe80::1%25eth0]/",
    "https://169.254.169.254./",
    "https://hooks.example.com@10.0.0.1/",
    "https://hooks.example.com:22/",
]


def _body(url: str) -> dict[str, Any]:
    return {"name": "ssrf", "url": url, "eventTypes": ["com.qlik.v1.app.created"]}


def _refused_url(response: httpx.Response) -> None:
    """400 with the error envelope, naming the field and never echoing the value."""
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["detail"].startswith("url: "), error
    assert "10.0.0" not in error["detail"] and "127" not in error["detail"]


@pytest.fixture
async def owned(api: httpx.AsyncClient, token: Callable[..., str]) -> AsyncIterator[Any]:
    """A tenant's authorisation and one webhook of it with a good URL."""
    auth = bearer(token(f"tenant-{uuid.uuid4().hex[:8]}", "u1"))
    response = await api.post(V1, json=_body("https://hooks.example.com/ok"), headers=auth)
    assert response.status_code == 201, response.text
    yield auth, response.json()["id"]


async def test_the_api_refuses_every_spelling_at_create_patch_and_put(
    api: httpx.AsyncClient, owned: Any
) -> None:
    auth, webhook_id = owned
    for url in STACK_SPELLINGS:
        _refused_url(await api.post(V1, json=_body(url), headers=auth))
        patch = [{"op": "replace", "path": "/url", "value": url}]
        _refused_url(await api.patch(f"{V1}/{webhook_id}", json=patch, headers=auth))
        _refused_url(await api.put(f"{V1}/{webhook_id}", json=_body(url), headers=auth))
    stored = await api.get(f"{V1}/{webhook_id}", headers=auth)
    assert stored.json()["url"] == "https://hooks.example.com/ok"


async def store_url(db: asyncpg.Connection, webhook_id: str, url: str) -> None:
    """Write a URL the API would refuse, as a row from before a rule would hold it, and tell
    the dispatcher's cache (as every webhook change does)."""
    async with db.transaction():
        await db.execute("UPDATE webhooks SET url = $2 WHERE id = $1", uuid.UUID(webhook_id), url)
        await db.execute("SELECT pg_notify($1, $2)", OUTBOX_CHANNEL, webhook_id)


@pytest.mark.parametrize("host", ["0.0.0\uff610", "0.0.0.0"])
async def test_no_sender_connects_to_an_ip_literal_stored_in_the_database(
    scenario: Scenario, receiver: Receiver, db: asyncpg.Connection, host: str
) -> None:
    """The dispatcher and resend both refuse it; the trap on every interface sees nothing."""
    webhook = await scenario.webhook(receiver_url(receiver, unique_path("ssrf")))
    await scenario.publish()
    [first] = await wait_until(lambda: scenario.deliveries(webhook), timeout=30)
    assert first.status == "success"
    async with Trap() as trap:
        await store_url(db, webhook.id, f"https://{host}:{trap.port}/")
        await scenario.publish()

        async def refused() -> Any:
            return [d for d in await scenario.deliveries(webhook) if d.status == "fail"]

        [blocked] = await wait_until(refused, timeout=30)
        resent = await scenario.client.resend_delivery(webhook.id, first.id)
        assert trap.connections == 0
    for delivery in (blocked, resent):
        assert delivery.status == "fail"
        assert delivery.status_message.startswith("Request failed (blocked)"), delivery
        assert "0.0.0.0" not in delivery.status_message
