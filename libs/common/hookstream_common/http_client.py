"""The SSRF-safe HTTP client that delivers webhooks, shared by the dispatcher and resend.

aiohttp connects to the addresses its resolver returns and verifies TLS against the URL's host
name. The resolver here resolves once, drops every address that may not be reached, and hands
aiohttp only what it checked: a second DNS answer (rebinding) never reaches the socket.
aiohttp never asks the resolver about an IP-literal host (after IDNA, `10.0.0。1` is one), so
every request first passes `refusal_at_send` (the port, and such a host's address), whoever
sends it and whatever URL was stored.
"""

import socket
import ssl
from types import SimpleNamespace
from typing import Any

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from hookstream_common.request_rules import HTTPS_ONLY, PortSet, refusal_at_send
from hookstream_common.settings import DeliverySettings
from hookstream_common.ssrf import IPNetwork, is_allowed, parse_networks

log = structlog.get_logger(__name__)


class BlockedAddress(aiohttp.ClientConnectionError):
    """The host resolved only to addresses a webhook may not reach.

    Its message reaches the tenant (statusMessage), so it never names the addresses: which
    internal addresses a name resolves to is what an attacker probing the network wants to learn.
    """


class GuardedResolver(AbstractResolver):
    """Resolves, then keeps only allowed addresses; `static` answers before DNS (development)."""

    def __init__(
        self,
        allow: tuple[IPNetwork, ...] = (),
        static: dict[str, str] | None = None,
        inner: AbstractResolver | None = None,
    ) -> None:
        self._allow = allow
        self._static = static or {}
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Allowed addresses of `host`; raise `BlockedAddress` when none is."""
        if host in self._static:
            address = self._static[host]
            v6 = ":" in address
            results: list[ResolveResult] = [
                {
                    "hostname": host,
                    "host": address,
                    "port": port,
                    "family": socket.AF_INET6 if v6 else socket.AF_INET,
                    "proto": 0,
                    "flags": socket.AI_NUMERICHOST,
                }
            ]
        else:
            results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if is_allowed(r["host"], self._allow)]
        if not allowed:
            log.warning(
                "delivery address refused", host=host, addresses=[r["host"] for r in results]
            )
            raise BlockedAddress(f"{host} resolves to an address webhooks may not reach")
        return allowed

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._inner.close()


def request_guard(allow: tuple[IPNetwork, ...], ports: PortSet) -> aiohttp.TraceConfig:
    """Refuses a request before it connects when `refusal_at_send` finds a reason.

    aiohttp awaits `on_request_start` before it opens a connection and lets its exception end
    the request, so this sees the very URL object the connector will use.
    """

    async def check(
        _session: aiohttp.ClientSession,
        _context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        reason = refusal_at_send(params.url, allow, ports)
        if reason is not None:
            log.warning("delivery request refused", host=params.url.raw_host, reason=reason)
            raise BlockedAddress(reason)

    guard = aiohttp.TraceConfig()
    guard.on_request_start.append(check)
    return guard


def ssl_context(extra_ca_file: str | None = None) -> ssl.SSLContext:
    """The system's trust store, plus an extra CA for development receivers if configured."""
    context = ssl.create_default_context()
    if extra_ca_file:
        context.load_verify_locations(cafile=extra_ca_file)
    return context


def client_session(
    *,
    allow: tuple[IPNetwork, ...] = (),
    ports: PortSet = HTTPS_ONLY,
    static_hosts: dict[str, str] | None = None,
    extra_ca_file: str | None = None,
    total_timeout: float = 10.0,
    connect_timeout: float = 5.0,
    limit: int = 1000,
    resolver: AbstractResolver | None = None,
    **kwargs: Any,
) -> aiohttp.ClientSession:
    """A session that refuses non-public addresses and other ports; `resolver` replaces DNS
    (tests)."""
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(allow, static_hosts, resolver),
        ssl=ssl_context(extra_ca_file),
        limit=limit,
        limit_per_host=0,
        ttl_dns_cache=None,
        use_dns_cache=False,
    )
    timeout = aiohttp.ClientTimeout(total=total_timeout, connect=connect_timeout)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        trace_configs=[request_guard(allow, ports)],
        **kwargs,
    )


def delivery_session(settings: DeliverySettings, limit: int = 100) -> aiohttp.ClientSession:
    """The client configured by the delivery settings of a service."""
    return client_session(
        allow=parse_networks(settings.allow_networks),
        ports=settings.port_set,
        static_hosts=settings.static_host_map(),
        extra_ca_file=settings.extra_ca_file,
        total_timeout=settings.request_timeout_seconds,
        connect_timeout=settings.connect_timeout_seconds,
        limit=limit,
    )
