"""The SSRF-safe HTTP client that delivers webhooks, shared by the dispatcher and resend.

aiohttp connects to the addresses its resolver returns and verifies TLS against the URL's host
name. The resolver here resolves once, drops every address that may not be reached, and hands
aiohttp only what it checked: a second DNS answer (rebinding) never reaches the socket.
aiohttp never asks the resolver about an IP-literal host (after IDNA, `10.0.0。1` is one), so
every request first passes `refusal_at_send` (the port, and such a host's address), whoever
sends it and whatever URL was stored.

With an egress proxy (`HOOKSTREAM_EGRESS_PROXY`), `DeliveryClient` keeps these rules by doing the
resolving itself: the proxy is asked for a tunnel to the checked address, never to the name.
"""

import contextlib
import os
import socket
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from types import SimpleNamespace
from typing import Any

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from hookstream_common.egress import EgressProxy
from hookstream_common.request_rules import HTTPS_ONLY, PortSet, ip_literal, refusal_at_send
from hookstream_common.settings import DeliverySettings
from hookstream_common.ssrf import IPNetwork, is_allowed, parse_networks

log = structlog.get_logger(__name__)

CHECKED_ADDRESSES_SECONDS = 10.0
"""How long a name's checked addresses serve requests through the proxy before the name is
resolved again (aiohttp's own DNS cache keeps answers as long): without a proxy a pooled
connection asks no resolver, through it every request needs the address to pick its tunnel."""
MAX_CHECKED_NAMES = 4096


class BlockedAddress(aiohttp.ClientConnectionError):
    """The host resolved only to addresses a webhook may not reach.

    Its message reaches the tenant (statusMessage), so it never names the addresses: which
    internal addresses a name resolves to is what an attacker probing the network wants to learn.
    """


class UnresolvableHost(aiohttp.ClientConnectionError):
    """The receiver's name did not resolve, when the client resolves it itself (the proxy)."""


class EgressProxyError(aiohttp.ClientConnectionError):
    """The egress proxy could not be reached, or did not open the tunnel.

    Its message reaches the tenant: it says what failed, never the proxy's address.
    """


class GuardedResolver(AbstractResolver):
    """Resolves, then keeps only allowed addresses; `static` answers before DNS (development).

    `trusted` names are resolved without the check: the egress proxy's, which the operator set
    and which is usually a private address. Never the receivers' resolver: see `DeliveryClient`.
    """

    def __init__(
        self,
        allow: tuple[IPNetwork, ...] = (),
        static: dict[str, str] | None = None,
        inner: AbstractResolver | None = None,
        trusted: frozenset[str] = frozenset(),
    ) -> None:
        self._allow = allow
        self._static = static or {}
        self._inner = inner or DefaultResolver()
        self._trusted = trusted

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
        if host in self._trusted:
            return results
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


class DeliveryClient:
    """The client every delivery is sent with: aiohttp's session, and the way requests leave.

    Directly, aiohttp connects to what the guarded resolver let through. Through the egress
    proxy, this client resolves and checks the receiver's name itself, with the same resolver,
    and asks the proxy for a tunnel to the checked address (`CONNECT 203.0.113.7:443`), never
    to the name: the proxy's own DNS answer cannot send the request elsewhere (rebinding), and
    the same rules hold whichever way a request leaves, whatever the proxy itself allows. TLS
    runs inside the tunnel, end to end with the receiver, for the URL's host name (SNI and the
    certificate check, through aiohttp's `server_hostname`), which the Host header names too.
    aiohttp pools connections by address and that name, so a tunnel verified for one name is
    never reused for another name on the same address. When the proxy cannot reach one address
    of the name (it answers the CONNECT with an error), the next one is tried, as aiohttp tries
    every address of a direct connection.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        receivers: GuardedResolver,
        proxy: EgressProxy | None = None,
    ) -> None:
        self._session = session
        self._receivers = receivers
        self._proxy = proxy
        self._checked: dict[tuple[str, int], tuple[float, list[str]]] = {}
        """(host, port) → (until when, the allowed addresses); refusals are not kept."""

    def post(self, url: str, **kwargs: Any) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
        """`aiohttp.ClientSession.post`, through the proxy when one is set."""
        if self._proxy is None:
            return self._session.post(url, **kwargs)
        return self._post_through(self._proxy, URL(url), **kwargs)

    @contextlib.asynccontextmanager
    async def _post_through(
        self, proxy: EgressProxy, url: URL, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        host = url.raw_host or ""
        addresses = await self._checked_addresses(url)
        for index, address in enumerate(addresses):
            try:
                response = await self._session.post(
                    url.with_host(address),
                    headers={**(headers or {}), "Host": url.host_port_subcomponent or host},
                    server_hostname=host.rstrip("."),
                    proxy=proxy.url,
                    proxy_headers=proxy.headers,
                    **kwargs,
                )
            except aiohttp.ClientHttpProxyError as exc:
                self._unreachable(url, address)
                if index + 1 < len(addresses):
                    continue
                raise EgressProxyError(
                    f"the egress proxy did not open a tunnel to {host}:{url.port}"
                    f" (it answered {exc.status})"
                ) from None
            except aiohttp.ClientConnectorDNSError:
                # The receiver is an address here: only the proxy's name was looked up.
                raise EgressProxyError(
                    "cannot connect to the egress proxy (its host name could not be resolved)"
                ) from None
            except aiohttp.ClientProxyConnectionError as exc:
                errno = exc.os_error.errno
                reason = os.strerror(errno).lower() if errno else "connection failed"
                raise EgressProxyError(f"cannot connect to the egress proxy ({reason})") from None
            async with response:
                yield response
            return

    async def _checked_addresses(self, url: URL) -> list[str]:
        """The addresses the proxy may connect to: an IP-literal host's own (the request guard
        judges it, as it does without a proxy), or the allowed ones the name resolves to."""
        host, port = url.raw_host or "", url.port or 0
        literal = ip_literal(host)
        if literal is not None:
            return [str(literal)]
        now = time.monotonic()
        until, addresses = self._checked.get((host, port), (0.0, []))
        if until > now and addresses:
            return addresses
        try:
            results = await self._receivers.resolve(host, port, socket.AF_UNSPEC)
        except OSError:
            raise UnresolvableHost(
                f"cannot connect to {host}:{port} (the host name could not be resolved)"
            ) from None
        addresses = list(dict.fromkeys(result["host"] for result in results))
        self._checked.pop((host, port), None)
        if len(self._checked) >= MAX_CHECKED_NAMES:
            del self._checked[next(iter(self._checked))]  # the oldest
        self._checked[(host, port)] = (now + CHECKED_ADDRESSES_SECONDS, addresses)
        return addresses

    def _unreachable(self, url: URL, address: str) -> None:
        """Try no more tunnels to an address the proxy could not reach, until the name is
        resolved again."""
        key = (url.raw_host or "", url.port or 0)
        until, addresses = self._checked.get(key, (0.0, []))
        if address in addresses:
            self._checked[key] = (until, [a for a in addresses if a != address])

    async def close(self) -> None:
        """Close the session, its connections and the resolver of receivers."""
        await self._session.close()
        await self._receivers.close()

    async def __aenter__(self) -> "DeliveryClient":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


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
    proxy: EgressProxy | None = None,
    **kwargs: Any,
) -> DeliveryClient:
    """A client that refuses non-public addresses and other ports; `resolver` replaces DNS
    (tests), `proxy` is the egress proxy every request leaves through."""
    receivers = GuardedResolver(allow, static_hosts, resolver)
    connector = aiohttp.TCPConnector(
        # Through a proxy, the connector resolves only the proxy's name: receivers are
        # addresses by then, which the request guard judges.
        resolver=GuardedResolver(allow, static_hosts, resolver, frozenset({proxy.host}))
        if proxy is not None
        else receivers,
        ssl=ssl_context(extra_ca_file),
        limit=limit,
        limit_per_host=0,
        ttl_dns_cache=None,
        use_dns_cache=False,
    )
    timeout = aiohttp.ClientTimeout(total=total_timeout, connect=connect_timeout)
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        trace_configs=[request_guard(allow, ports)],
        **kwargs,
    )
    return DeliveryClient(session, receivers, proxy)


def delivery_session(settings: DeliverySettings, limit: int = 100) -> DeliveryClient:
    """The client configured by the delivery settings of a service."""
    return client_session(
        allow=parse_networks(settings.allow_networks),
        ports=settings.port_set,
        static_hosts=settings.static_host_map(),
        extra_ca_file=settings.extra_ca_file,
        total_timeout=settings.request_timeout_seconds,
        connect_timeout=settings.connect_timeout_seconds,
        limit=limit,
        proxy=settings.egress,
    )
