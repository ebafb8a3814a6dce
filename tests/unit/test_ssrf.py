import asyncio
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from hookstream_common.client_certs import TlsContexts
from hookstream_common.http_client import BlockedAddress, GuardedResolver
from hookstream_common.request_rules import PortSet
from hookstream_common.ssrf import is_allowed, parse_networks

# (address, the form it takes): every spelling of a non-public address must be refused.
REFUSED = [
    ("127.0.0.1", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local (cloud metadata)"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("100.64.0.1", "shared address space (CGNAT)"),
    ("100.127.255.254", "shared address space (CGNAT)"),
    ("192.0.0.9", "IETF protocol assignments (global to some Pythons)"),
    ("192.0.0.10", "IETF protocol assignments (global to some Pythons)"),
    ("192.0.0.200", "IETF protocol assignments"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.254", "benchmarking"),
    ("240.0.0.1", "class E"),
    ("::1", "IPv6 loopback"),
    ("::", "IPv6 unspecified"),
    ("fe80::1", "IPv6 link-local"),
    ("fc00::1", "unique local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "IPv6 multicast"),
    ("5f00::1", "IPv6 reserved"),
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:10.0.0.1", "IPv4-mapped private"),
    ("::ffff:100.64.0.1", "IPv4-mapped CGNAT"),
    ("::ffff:192.0.0.9", "IPv4-mapped protocol assignment"),
    ("::127.0.0.1", "IPv4-compatible loopback"),
    ("::10.0.0.1", "IPv4-compatible private"),
    ("::93.184.216.34", "IPv4-compatible (deprecated form, refused whatever is inside)"),
    ("::ffff:0:127.0.0.1", "IPv4-translated loopback"),
    ("::ffff:0:10.0.0.1", "IPv4-translated private"),
    ("64:ff9b::127.0.0.1", "NAT64 loopback"),
    ("64:ff9b::169.254.169.254", "NAT64 link-local"),
    ("64:ff9b::93.184.216.34", "NAT64 (refused whatever is inside)"),
    ("64:ff9b:1::a00:1", "NAT64 local-use"),
    ("2002:7f00:1::", "6to4 of loopback"),
    ("2002:a00:1::1", "6to4 of private"),
    ("2002:a9fe:a9fe::1", "6to4 of link-local"),
    ("2002:6440:1::1", "6to4 of CGNAT"),
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "Teredo, private client"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo, loopback client"),
    ("2001:0:a00:1:8000:63bf:a247:27dd", "Teredo, private server"),
]

PUBLIC = [
    ("93.184.216.34", "IPv4"),
    ("8.8.8.8", "IPv4"),
    ("2606:2800:220:1:248:1893:25c8:1946", "IPv6"),
    ("::ffff:93.184.216.34", "IPv4-mapped public"),
    ("2002:5db8:d822::1", "6to4 of public"),
    ("2001:0:4136:e378:8000:63bf:a247:27dd", "Teredo, public server and client"),
]


@pytest.mark.parametrize(("address", "form"), REFUSED, ids=[a for a, _ in REFUSED])
def test_non_public_addresses_are_refused(address: str, form: str) -> None:
    assert not is_allowed(address), form


@pytest.mark.parametrize(("address", "form"), PUBLIC, ids=[a for a, _ in PUBLIC])
def test_public_addresses_pass(address: str, form: str) -> None:
    assert is_allowed(address), form


# (allow setting, address, allowed?): the list opens exactly what it names, in any spelling
# of it that reaches it directly, and never the embedded forms of it.
ALLOW = [
    ("127.0.0.0/8, ::1/128", "127.0.0.1", True),
    ("127.0.0.0/8, ::1/128", "::ffff:127.0.0.1", True),
    ("127.0.0.0/8, ::1/128", "::1", True),
    ("127.0.0.0/8, ::1/128", "10.0.0.1", False),
    ("127.0.0.0/8", "64:ff9b::127.0.0.1", False),
    ("127.0.0.0/8", "2002:7f00:1::", False),
    ("127.0.0.0/8", "::127.0.0.1", False),
    ("100.64.0.0/10", "100.64.0.1", True),
    ("198.18.0.0/15", "198.18.0.1", True),
    ("64:ff9b::/96", "64:ff9b::93.184.216.34", True),
]


@pytest.mark.parametrize(("setting", "address", "allowed"), ALLOW)
def test_allowlist_opens_only_named_networks(setting: str, address: str, allowed: bool) -> None:
    assert is_allowed(address, parse_networks(setting)) is allowed


class _FixedResolver(AbstractResolver):
    """A test resolver: answers every name with the given addresses."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {
                "hostname": host,
                "host": a,
                "port": port,
                "family": socket.AF_INET6 if ":" in a else socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
            for a in self.addresses
        ]

    async def close(self) -> None:
        pass


async def test_resolver_refuses_names_that_resolve_to_private_addresses() -> None:
    resolver = GuardedResolver(inner=_FixedResolver("127.0.0.1", "10.0.0.1"))
    with pytest.raises(BlockedAddress, match="may not reach"):
        await resolver.resolve("evil.example.com", 443)


async def test_resolver_keeps_only_the_public_answers() -> None:
    resolver = GuardedResolver(inner=_FixedResolver("10.0.0.1", "93.184.216.34"))
    answers = await resolver.resolve("mixed.example.com", 443)
    assert [a["host"] for a in answers] == ["93.184.216.34"]


async def test_static_hosts_still_pass_the_network_check() -> None:
    resolver = GuardedResolver(static={"receiver.test": "127.0.0.1"}, inner=_FixedResolver())
    with pytest.raises(BlockedAddress):
        await resolver.resolve("receiver.test", 443)
    allowed = GuardedResolver(
        allow=parse_networks("127.0.0.0/8"),
        static={"receiver.test": "127.0.0.1"},
        inner=_FixedResolver(),
    )
    assert [a["host"] for a in await allowed.resolve("receiver.test", 443)] == ["127.0.0.1"]


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "::ffff:127.0.0.1"]
)
async def test_refused_names_never_open_a_connection(address: str) -> None:
    """A listener on loopback counts connections: a refused name must not reach it."""
    from hookstream_common.delivery import OutboundRequest, send
    from hookstream_common.http_client import client_session

    connections = 0

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    server = await asyncio.start_server(count, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # The test resolver answers with `address`; the trap listens on 127.0.0.1 in every case.
    # Any port is allowed, so the resolver's check is the one that refuses.
    session = client_session(resolver=_FixedResolver(address), ports=PortSet.parse("1-65535"))
    try:
        request = OutboundRequest(f"https://evil.example.com:{port}/", {}, b"{}", {})
        attempt = await send(session, request, TlsContexts())
    finally:
        await session.close()
        server.close()
    assert attempt.error_class == "blocked" and "resolves to" in (attempt.error or "")
    assert attempt.status_code is None
    assert connections == 0


async def test_a_blocked_delivery_names_no_internal_address_to_the_tenant() -> None:
    """statusMessage is the tenant's to read: the resolved addresses go to the log only."""
    from structlog.testing import capture_logs

    from hookstream_common.delivery import OutboundRequest, send
    from hookstream_common.http_client import client_session

    session = client_session(resolver=_FixedResolver("10.1.2.3", "fd00::7"))
    try:
        with capture_logs() as logs:
            request = OutboundRequest("https://internal.example.com/", {}, b"{}", {})
            attempt = await send(session, request, TlsContexts())
    finally:
        await session.close()
    message = attempt.status_message()
    assert attempt.error_class == "blocked"
    assert "internal.example.com" in message and "may not reach" in message
    assert "10.1.2.3" not in message and "fd00" not in message
    assert [entry["addresses"] for entry in logs] == [["10.1.2.3", "fd00::7"]]
