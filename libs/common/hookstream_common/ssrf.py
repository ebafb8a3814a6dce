"""Which addresses a webhook may reach. Pure logic, used by the resolver that connects.

Only globally routable unicast addresses pass by default. Refused: loopback, private, link-local,
multicast, reserved and unspecified addresses, the IPv4 ranges some Python releases call global
(shared CGNAT space, IETF protocol assignments, benchmarking, class E), IPv6 site-local, and every
IPv6 form that carries an IPv4 address in its low bits (IPv4-compatible, IPv4-translated, NAT64):
a NAT64 gateway or an old dual stack would turn those into the IPv4 address inside. IPv4-mapped,
6to4 and Teredo addresses are judged by the IPv4 addresses inside them (both Teredo's server and
client). Development and tests open named networks explicitly (`allow`), never by default.

Consequence: a dispatcher on an IPv6-only network behind DNS64 cannot reach IPv4-only receivers.
"""

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str | Iterable[str]) -> tuple[IPNetwork, ...]:
    """Networks from a comma-separated setting like `127.0.0.0/8,::1/128`."""
    items = value.split(",") if isinstance(value, str) else value
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())


# Refused whatever `is_global` says: its answer for some of these differs between Python releases.
REFUSED_NETWORKS = parse_networks(
    [
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "192.0.0.0/24",  # IETF protocol assignments
        "198.18.0.0/15",  # benchmarking
        "240.0.0.0/4",  # class E, reserved
        "::/96",  # IPv4-compatible ::a.b.c.d (deprecated)
        "::ffff:0:0:0/96",  # IPv4-translated ::ffff:0:a.b.c.d (SIIT)
        "64:ff9b::/96",  # NAT64 well-known prefix
        "64:ff9b:1::/48",  # NAT64 local-use prefix
        "fec0::/10",  # site-local (deprecated)
    ]
)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses a packet to an IPv4-mapped, 6to4 or Teredo address would reach."""
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address.teredo is not None:
        return address.teredo
    return ()


def is_public(address: IPAddress) -> bool:
    """Whether the address is a globally routable unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner:
            return all(is_public(ip) for ip in inner)
    if any(address in network for network in REFUSED_NETWORKS):
        return False
    return address.is_global and not (address.is_multicast or address.is_reserved)


def is_allowed(address: IPAddress | str, allow: tuple[IPNetwork, ...] = ()) -> bool:
    """Public addresses, and those inside an explicitly allowed network."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in allow) or is_public(ip)
