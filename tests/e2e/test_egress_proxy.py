"""The egress proxy (HOOKSTREAM_EGRESS_PROXY) against a real Smokescreen.

What is tested is the choice docs/operations.md describes: the sender resolves and checks a
receiver's address itself, exactly as without a proxy, and asks the proxy for a tunnel to that
address (Smokescreen logs the address as `requested_host`, never the name); TLS runs inside the
tunnel, verified for the URL's host name. Smokescreen's own rules (it refuses loopback and
private ranges unless opened, here `127.0.0.1/32` for the receiver) are a second line.

First the delivery client alone, then services of this module's own installation whose every
delivery leaves through the proxy: the dispatcher's (and so recover's), resend's and the test
event's. Stopping the proxy proves each path goes through it: the direct route would work.
"""

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from e2e.scenario import CREATED, unique_path

from hookstream_client import AsyncClient, Delivery
from hookstream_common.client_certs import TlsContexts
from hookstream_common.delivery import OutboundRequest, send
from hookstream_common.egress import EgressProxy
from hookstream_common.http_client import DeliveryClient, client_session
from hookstream_common.request_rules import PortSet
from hookstream_common.sdk import EventPublisher
from hookstream_common.ssrf import parse_networks
from hookstream_dev import infra
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver, TlsFiles
from hookstream_dev.smokescreen import Smokescreen, binary
from hookstream_dev.stack import ServiceSet
from support import (
    RECEIVER_HOST,
    STATIC_HOSTS,
    carrying,
    installation,
    new_tenant,
    receiver_url,
    wait_routed,
    wait_until,
)

OPEN_TO_RECEIVER = ("127.0.0.1/32",)
"""What Smokescreen is opened to: the receiver's address, as HOOKSTREAM_ALLOW_NETWORKS opens it."""
HOSTS = {
    **STATIC_HOSTS,
    "other.hookstream.test": "127.0.0.1",  # the receiver's address; its certificate lacks the name
    "proxy.hookstream.test": "127.0.0.2",
}
ANY_PORT = PortSet.parse("1-65535")

StartProxy = Callable[..., Smokescreen]


@pytest.fixture(scope="module")
def smokescreen() -> str:
    """The Smokescreen executable `make test-tools` installs."""
    executable = binary()
    if executable is None:
        pytest.fail("smokescreen is not installed: run `make test-tools`")
    return executable


@pytest.fixture
def start_proxy(smokescreen: str) -> Iterator[StartProxy]:
    """`start_proxy(allow_ranges=OPEN_TO_RECEIVER, host="127.0.0.1")`: a proxy for one test."""
    started: list[Smokescreen] = []

    def start(allow_ranges: tuple[str, ...] = OPEN_TO_RECEIVER, **where: Any) -> Smokescreen:
        log = infra.STATE_DIR / "test-logs" / f"smokescreen-{secrets.token_hex(4)}.log"
        started.append(Smokescreen.start(smokescreen, log, allow_ranges, **where))
        return started[-1]

    yield start
    for proxy in started:
        proxy.stop()


def through(proxy: Smokescreen | str, tls: TlsFiles, allow: str = "127.0.0.0/8") -> DeliveryClient:
    """The delivery client as the services make it, sending through `proxy`."""
    return client_session(
        allow=parse_networks(allow),
        ports=ANY_PORT,
        static_hosts=HOSTS,
        extra_ca_file=str(tls.ca),
        proxy=EgressProxy.parse(proxy if isinstance(proxy, str) else proxy.url),
    )


async def post(client: DeliveryClient, url: str) -> Any:
    request = OutboundRequest(url, {"Tenant-Header": "kept"}, b"{}", {})
    return await send(client, request, TlsContexts())


async def test_a_delivery_tunnels_to_the_checked_address_with_tls_for_the_name(
    receiver: Receiver, tls_files: TlsFiles, start_proxy: StartProxy
) -> None:
    proxy = start_proxy()
    path = unique_path("egress")
    async with through(proxy, tls_files) as client:
        delivered = await post(client, receiver_url(receiver, path))
        # The same address and port under a name the receiver's certificate does not carry:
        # TLS is checked for the URL's name inside the tunnel, and the tunnel verified for
        # the receiver's name is not reused for this one.
        other = await post(client, f"https://other.hookstream.test:{receiver.port}{path}")
    assert delivered.succeeded, delivered.status_message()
    [arrived] = receiver.received(path)
    assert arrived.headers["host"] == f"{RECEIVER_HOST}:{receiver.port}"
    assert arrived.headers["tenant-header"] == "kept"
    assert other.error_class == "tls" and other.status_code is None
    assert other.error == (
        f"cannot connect to other.hookstream.test:{receiver.port} (certificate not accepted:"
        " Hostname mismatch, certificate is not valid for 'other.hookstream.test'.)"
    )
    decisions = proxy.decisions()
    assert [(d["proxy_type"], d["requested_host"], d["allow"]) for d in decisions] == [
        ("connect", f"127.0.0.1:{receiver.port}", True)
    ] * 2


class _Addresses(AbstractResolver):
    """DNS answering every name with these addresses, in this order; counts the questions."""

    def __init__(self, *addresses: str) -> None:
        self._addresses = addresses
        self.asked = 0

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[ResolveResult]:
        self.asked += 1
        return [
            {"hostname": host, "host": a, "port": port, "family": 2, "proto": 0, "flags": 0}
            for a in self._addresses
        ]

    async def close(self) -> None:
        pass


async def test_the_next_address_is_tried_when_the_proxy_cannot_reach_one(
    receiver: Receiver, tls_files: TlsFiles, start_proxy: StartProxy
) -> None:
    """A name with two addresses, the first one closed to the proxy: as aiohttp tries every
    address of a direct connection, the tunnel goes to the second. The checked addresses serve
    the next request too, as a pooled connection would without a proxy: no DNS query each."""
    proxy = start_proxy()
    dns = _Addresses("127.0.0.3", "127.0.0.1")
    async with client_session(
        allow=parse_networks("127.0.0.0/8"),
        ports=ANY_PORT,
        extra_ca_file=str(tls_files.ca),
        resolver=dns,
        proxy=EgressProxy.parse(proxy.url),
    ) as client:
        first = await post(client, receiver_url(receiver, unique_path("second-address")))
        second = await post(client, receiver_url(receiver, unique_path("second-address")))
    assert first.succeeded and second.succeeded, first.status_message()
    tried = [(d["requested_host"], d["allow"]) for d in proxy.decisions()]
    assert tried == [(f"127.0.0.3:{receiver.port}", False), (f"127.0.0.1:{receiver.port}", True)]
    assert dns.asked == 1


@pytest.mark.parametrize(
    "host",
    [
        "private.hookstream.test",  # resolves to 10.0.0.1
        "metadata.hookstream.test",  # 169.254.169.254
        "v6-loopback.hookstream.test",  # ::1, outside the allowed 127.0.0.0/8
        "10.0.0.1",
        "0.0.0\uff610",  # 0.0.0.0 after IDNA
        "[::ffff:a00:1]",  # 10.0.0.1, IPv4-mapped
        "proxy.hookstream.test",  # the proxy's own name: trusted as the proxy, not as a receiver
    ],
)
async def test_a_forbidden_address_is_refused_before_any_connect(
    host: str, tls_files: TlsFiles, start_proxy: StartProxy
) -> None:
    proxy = start_proxy(host="127.0.0.2")
    async with client_session(
        allow=parse_networks("127.0.0.1/32"),
        ports=ANY_PORT,
        static_hosts=HOSTS,
        extra_ca_file=str(tls_files.ca),
        proxy=EgressProxy.parse(f"http://proxy.hookstream.test:{proxy.port}"),
    ) as client:
        refused = await post(client, f"https://{host}:{proxy.port}/")
    assert refused.error_class == "blocked", refused.status_message()
    assert proxy.decisions() == []


async def test_the_proxy_is_reached_by_name_outside_the_allowed_networks(
    receiver: Receiver, tls_files: TlsFiles, start_proxy: StartProxy
) -> None:
    """The proxy's own address (127.0.0.2 here; a private one in a cluster) is the operator's
    choice: the network check is for receivers, not for it."""
    proxy = start_proxy(host="127.0.0.2")
    named = f"http://proxy.hookstream.test:{proxy.port}"
    async with through(named, tls_files, allow="127.0.0.1/32") as client:
        attempt = await post(client, receiver_url(receiver, unique_path("named-proxy")))
    assert attempt.succeeded, attempt.status_message()
    assert [d["requested_host"] for d in proxy.decisions()] == [f"127.0.0.1:{receiver.port}"]


async def test_the_proxy_refuses_what_it_was_not_opened_to(
    receiver: Receiver, tls_files: TlsFiles, start_proxy: StartProxy
) -> None:
    """Defence in depth: were the sender's check wrong, Smokescreen's own rules still hold."""
    proxy = start_proxy(allow_ranges=())
    path = unique_path("denied")
    async with through(proxy, tls_files) as client:
        attempt = await post(client, receiver_url(receiver, path))
    assert attempt.error_class == "proxy" and attempt.status_code is None
    assert attempt.error == (
        f"the egress proxy did not open a tunnel to {RECEIVER_HOST}:{receiver.port}"
        " (it answered 407)"
    )
    [decision] = proxy.decisions()
    assert not decision["allow"] and "Not Global Unicast" in decision["decision_reason"]
    assert receiver.received(path) == []


async def test_an_unreachable_proxy_fails_the_attempt_cleanly(
    receiver: Receiver, tls_files: TlsFiles, start_proxy: StartProxy
) -> None:
    proxy = start_proxy()
    proxy.stop()
    async with through(proxy, tls_files) as client:
        refused = await post(client, receiver_url(receiver, unique_path("down")))
    async with through("http://proxy.nowhere.invalid:3128", tls_files) as client:
        unknown = await post(client, receiver_url(receiver, unique_path("unknown")))
    assert (refused.error_class, refused.error) == (
        "proxy",
        "cannot connect to the egress proxy (connection refused)",
    )
    assert (unknown.error_class, unknown.error) == (
        "proxy",
        "cannot connect to the egress proxy (its host name could not be resolved)",
    )


# --- the services -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def module_proxy(smokescreen: str) -> Iterator[Smokescreen]:
    """The proxy of the module's installation; a test may stop and restart it."""
    log = infra.STATE_DIR / "test-logs" / f"smokescreen-{secrets.token_hex(4)}.log"
    proxy = Smokescreen.start(smokescreen, log, OPEN_TO_RECEIVER)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
async def proxied(
    settings_env: dict[str, str], module_proxy: Smokescreen
) -> AsyncIterator[ServiceSet]:
    """An API, matcher and dispatcher whose deliveries all leave through `module_proxy`."""
    env = {
        **settings_env,
        "HOOKSTREAM_EGRESS_PROXY": module_proxy.url,
        # Failures while the proxy is down must not disable the webhook (the session's own
        # setting disables after 4).
        "HOOKSTREAM_AUTO_DISABLE_MIN_FAILURES": "1000",
    }
    async with installation(env, ("matcher", "api", "dispatcher"), "egress") as services:
        yield services


@pytest.fixture
async def tenant_client(
    proxied: ServiceSet, token: Callable[..., str]
) -> AsyncIterator[tuple[str, AsyncClient]]:
    tenant = new_tenant()
    async with AsyncClient(proxied.url("api"), token(tenant, "u1"), timeout=30) as client:
        yield tenant, client


@pytest.fixture(scope="module")
async def proxied_publisher(proxied: ServiceSet) -> AsyncIterator[EventPublisher]:
    env = proxied.env
    async with EventPublisher(
        env["KAFKA_BOOTSTRAP_SERVERS"], env["HOOKSTREAM_TOPIC_PREFIX"]
    ) as publisher:
        yield publisher


async def _webhook(proxied: ServiceSet, client: AsyncClient, tenant: str, url: str) -> str:
    webhook = await client.create_webhook({"name": "egress", "url": url, "eventTypes": [CREATED]})
    await wait_routed(proxied, tenant, {webhook.id})
    return webhook.id


async def _stored(client: AsyncClient, webhook_id: str) -> list[Delivery]:
    """The webhook's deliveries in its history (written just after each attempt)."""
    return (await client.list_deliveries(webhook_id)).data


def _connects_to(proxy: Smokescreen, receiver: Receiver) -> int:
    target = f"127.0.0.1:{receiver.port}"
    return sum(d["requested_host"] == target and d["allow"] for d in proxy.decisions())


async def test_dispatcher_resend_and_test_event_go_through_the_proxy(
    proxied: ServiceSet,
    proxied_publisher: EventPublisher,
    tenant_client: tuple[str, AsyncClient],
    receiver: Receiver,
    module_proxy: Smokescreen,
) -> None:
    tenant, client = tenant_client
    path = unique_path("proxied")
    webhook_id = await _webhook(proxied, client, tenant, receiver_url(receiver, path))
    before = _connects_to(module_proxy, receiver)

    event = sample_event(CREATED, tenant, "u1")
    await proxied_publisher.publish(event)
    await wait_until(lambda: carrying(receiver, path, event), timeout=30)
    [dispatched] = await wait_until(lambda: _stored(client, webhook_id), timeout=30)
    resent = await client.resend_delivery(webhook_id, dispatched.id)
    tested = await client.send_test_event(webhook_id)

    assert [d.status for d in (dispatched, resent, tested)] == ["success"] * 3
    arrived = receiver.received(path)
    assert [r.headers["webhook-id"] for r in arrived] == [dispatched.id, resent.id, tested.id]
    assert {r.headers["host"] for r in arrived} == {f"{RECEIVER_HOST}:{receiver.port}"}
    # A tunnel each for the dispatcher and the API at least (each keeps its tunnel open).
    assert _connects_to(module_proxy, receiver) - before >= 2
    assert not any(RECEIVER_HOST in d["requested_host"] for d in module_proxy.decisions())


async def test_a_forbidden_receiver_is_refused_by_every_sender_before_any_connect(
    proxied: ServiceSet,
    proxied_publisher: EventPublisher,
    tenant_client: tuple[str, AsyncClient],
    module_proxy: Smokescreen,
) -> None:
    tenant, client = tenant_client
    url = f"https://private.hookstream.test:{module_proxy.port}/hook"  # 10.0.0.1
    webhook_id = await _webhook(proxied, client, tenant, url)
    seen = len(module_proxy.decisions())

    await proxied_publisher.publish(sample_event(CREATED, tenant, "u1"))

    [refused] = await wait_until(lambda: _stored(client, webhook_id), timeout=30)
    tested = await client.send_test_event(webhook_id)
    for delivery in (refused, tested):
        assert delivery.status == "fail"
        assert delivery.status_message.startswith("Request failed (blocked)")
    assert len(module_proxy.decisions()) == seen


async def test_with_the_proxy_down_attempts_fail_cleanly_and_recover_after(
    proxied: ServiceSet,
    proxied_publisher: EventPublisher,
    tenant_client: tuple[str, AsyncClient],
    receiver: Receiver,
    module_proxy: Smokescreen,
) -> None:
    """Every sender fails with the proxy's reason while it is down (so none went around it),
    the dispatcher retries on its schedule and keeps running, and once the proxy is back a
    recovery sends what failed for good."""
    tenant, client = tenant_client
    path = unique_path("proxy-down")
    webhook_id = await _webhook(proxied, client, tenant, receiver_url(receiver, path))
    since = datetime.now(UTC) - timedelta(seconds=1)
    module_proxy.stop()
    try:
        event = sample_event(CREATED, tenant, "u1")
        await proxied_publisher.publish(event)

        async def failed_for_good() -> Delivery | None:
            data = (await client.list_deliveries(webhook_id)).data
            done = [d for d in data if "Failed for good after 4 attempts" in d.status_message]
            return done[0] if done else None

        dispatched = await wait_until(failed_for_good, timeout=60)
        tested = await client.send_test_event(webhook_id)
        resent = await client.resend_delivery(webhook_id, dispatched.id)
        for delivery in (dispatched, tested, resent):
            assert delivery.status == "fail"
            assert delivery.status_message.startswith(
                "Request failed (proxy): cannot connect to the egress proxy (connection refused)"
            )
        assert receiver.received(path) == []
        assert proxied.pid("dispatcher") is not None and proxied.ready("dispatcher")
    finally:
        module_proxy.restart()

    recovery = await client.recover_deliveries(webhook_id, since)
    assert recovery.total == 3  # the event's delivery, the test event and the resend
    arrived = await receiver.wait_for(3, timeout=30, path=path)
    assert {r.headers["webhook-id"] for r in arrived} == {dispatched.id, tested.id, resent.id}
    assert carrying(receiver, path, event)
