import asyncio
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from hookstream_common.http_client import BlockedAddress, GuardedResolver
from hookstream_common.ssrf import is_allowed, parse_networks


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_allowed(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_pass(address: str) -> None:
    assert is_allowed(address)


def test_allowlist_opens_only_named_networks() -> None:
    allow = parse_networks("127.0.0.0/8, ::1/128")
    assert is_allowed("127.0.0.1", allow)
    assert is_allowed("::ffff:127.0.0.1", allow)
    assert is_allowed("::1", allow)
    assert not is_allowed("10.0.0.1", allow)


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
    session = client_session(resolver=_FixedResolver(address))
    try:
        request = OutboundRequest(f"https://evil.example.com:{port}/", {}, b"{}", {})
        attempt = await send(session, request)
    finally:
        await session.close()
        server.close()
    assert attempt.error_class == "blocked"
    assert attempt.status_code is None
    assert connections == 0
