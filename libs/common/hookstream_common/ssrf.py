"""Which addresses a webhook may reach. Pure logic, used by the resolver that connects.

Only globally routable unicast addresses pass by default: loopback, private, link-local,
multicast, reserved, unspecified and shared (CGNAT) ranges are refused, for IPv4 and IPv6, with
IPv4-mapped and 6to4/Teredo forms judged by the IPv4 address inside them. Development and tests
open named networks explicitly (`allow`), never by default.
"""

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str | Iterable[str]) -> tuple[IPNetwork, ...]:
    """Networks from a comma-separated setting like `127.0.0.0/8,::1/128`."""
    items = value.split(",") if isinstance(value, str) else value
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def is_public(address: IPAddress) -> bool:
    """Whether the address is a globally routable unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            return is_public(inner)
    return address.is_global and not address.is_multicast


def is_allowed(address: IPAddress | str, allow: tuple[IPNetwork, ...] = ()) -> bool:
    """Public addresses, and those inside an explicitly allowed network."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in allow) or is_public(ip)
