"""The client that asks nothing of a silent broker: which nodes it prefers, that a silent node
costs no wait, and that every kind of client gets it. Its timing against a frozen broker is
the cluster fault suite's (tests/faults/test_cluster_faults.py)."""

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import aiokafka
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient
from aiokafka.structs import BrokerMetadata

from hookstream_common.kafka import producer
from hookstream_common.kafka_failover import (
    WRITTEN_FOR,
    FailoverClient,
    answering_first,
    join_group_timeout_s,
    with_failover,
)

TIMEOUT_MS = 400


def test_written_for_the_installed_aiokafka() -> None:
    """It replaces a private method of aiokafka's client: an upgrade must re-read it."""
    assert aiokafka.__version__ == WRITTEN_FOR


@pytest.mark.parametrize(
    ("nodes", "silent", "expected"),
    [
        ([1, 2, 3], set(), [1, 2, 3]),
        ([1, 2, 3], {2}, [1, 3]),
        ([1, 2, 3], {1, 2, 3}, [1, 2, 3]),
        ([1], {1}, [1]),
        ([], {1}, []),
    ],
)
def test_answering_nodes_come_first_and_a_silent_one_is_the_last_resort(
    nodes: list[int], silent: set[int], expected: list[int]
) -> None:
    assert answering_first(nodes, silent) == expected


def test_a_join_group_waits_the_rebalance_timeout_and_5_s_more_but_never_less_than_others() -> None:
    assert join_group_timeout_s(3.0, 60_000) == 65.0
    assert join_group_timeout_s(40.0, 6_000) == 40.0


async def test_every_kind_of_client_gets_the_failover_client() -> None:
    consumer = with_failover(AIOKafkaConsumer(bootstrap_servers="localhost:1"))
    admin = with_failover(AIOKafkaAdminClient(bootstrap_servers="localhost:1"))
    bare = with_failover(AIOKafkaClient(bootstrap_servers="localhost:1"))
    assert isinstance(consumer._client, FailoverClient)
    assert isinstance(admin._client, FailoverClient)
    assert isinstance(producer("localhost:1").client, FailoverClient)
    assert isinstance(bare, FailoverClient)
    assert with_failover(bare) is bare


@pytest.fixture
async def silent_ports() -> AsyncIterator[list[int]]:
    """Two listeners that accept connections and never answer, as a frozen broker's kernel
    does."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    servers = [await asyncio.start_server(hold, "127.0.0.1", 0) for _ in range(2)]
    yield [server.sockets[0].getsockname()[1] for server in servers]
    for writer in held:
        writer.close()
    for server in servers:
        server.close()


def client_of(ports: list[int]) -> FailoverClient:
    """A client whose metadata names the `ports` as nodes 1, 2, ..."""
    client = FailoverClient(bootstrap_servers="127.0.0.1:1", request_timeout_ms=TIMEOUT_MS)
    for node, port in enumerate(ports, 1):
        client.cluster._brokers[node] = BrokerMetadata(node, "127.0.0.1", port, None)
    return client


async def test_a_node_that_does_not_answer_costs_one_timeout_then_none(
    silent_ports: list[int],
) -> None:
    client, other = client_of(silent_ports), client_of(silent_ports)
    try:
        started = time.monotonic()
        assert await client._get_conn(1) is None
        assert time.monotonic() - started >= TIMEOUT_MS / 1000
        for anyone in (client, other):
            started = time.monotonic()
            assert await anyone._get_conn(1) is None
            assert time.monotonic() - started < TIMEOUT_MS / 1000 / 2
            assert anyone.get_random_node() == 2
    finally:
        await client.close()
        await other.close()


async def test_connecting_to_one_node_does_not_wait_for_another(silent_ports: list[int]) -> None:
    """aiokafka's one lock per client would make these two attempts take twice as long."""
    client = client_of(silent_ports)
    try:
        started = time.monotonic()
        assert await asyncio.gather(client._get_conn(1), client._get_conn(2)) == [None, None]
        assert time.monotonic() - started < 2 * TIMEOUT_MS / 1000
    finally:
        await client.close()


async def test_a_silent_node_that_refuses_connections_is_silent_no_longer() -> None:
    """Its probe is answered at once (refused), so nobody waits on it any more."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    client = client_of([port])
    client._fell_silent(1, "a test")
    assert client._is_silent(1)
    await client._probes[("127.0.0.1", port)]
    assert not client._is_silent(1)
    assert not client._probes
    await client.close()
