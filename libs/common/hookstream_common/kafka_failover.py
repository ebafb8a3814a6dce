"""An aiokafka client that stops waiting on a broker that has stopped answering (issue 19).

A frozen broker (SIGSTOP, a long GC pause, a hung host) keeps its connections open and its
kernel still accepts new ones, but it answers nothing. aiokafka 0.14 then waits the request
timeout for every request sent to it, and again for the handshake (ApiVersions) of every new
connection to it while holding the client's one connection lock, so a connection to a live
broker waits as well; it asks for new metadata only after such a request failed, and asks a
random broker, the frozen one included. On the fault suite's three-broker cluster a frozen
active controller paused deliveries 15.4 s: 6 s until the cluster had fenced it and moved its
leaderships, then three more request timeouts before the delivery consumer's metadata named
the new leaders (docs/reliability.md).

`FailoverClient` changes three things:

- one lock per connection (node, group), so an attempt at a frozen broker holds up only the
  requests that were waiting for that same connection;
- a broker that let a request or a new connection's handshake time out is *silent* until it
  answers again. No request waits on it: `_get_conn` answers None at once, as aiokafka does
  for a broker that refuses connections, and asks for new metadata, which the other brokers
  give, since a metadata refresh skips a node without a connection. The callers (fetcher,
  sender, group coordinator) retry after their backoff (`retry_backoff_ms`), so they follow
  the leaders as soon as the cluster has moved them, instead of one request timeout later. A
  coordinator lookup goes to an answering broker;
- a probe of the client's own connects to a silent broker again every PROBE_INTERVAL_S; the
  first answer ends its silence. A probe that timed out closes the client's connections to it,
  so requests still in flight there fail now instead of at their own timeouts; a broker that
  was only slow to answer one request (a produce waiting for a frozen follower) answers the
  probe at once and loses none of them.

It overrides `AIOKafkaClient._get_conn`, a private method, and was written against aiokafka
0.14.0 (`WRITTEN_FOR`; a unit test fails on any other version, so an upgrade re-reads this).
aiokafka's consumer, producer and admin client build their `AIOKafkaClient` inside their
constructors and offer no hook to pass another, so `with_failover` changes the class of the
client they built; the subclass adds behaviour and state and none of the parent's changes.
"""

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient, ConnectionGroup
from aiokafka.conn import AIOKafkaConnection, CloseReason, create_conn
from aiokafka.errors import KafkaError, RequestTimedOutError

log = logging.getLogger(__name__)

WRITTEN_FOR = "0.14.0"
"""The aiokafka version whose `AIOKafkaClient._get_conn` this module replaces."""

PROBE_INTERVAL_S = 0.5
"""Between a silent broker's failed probe and the next; a probe itself may wait the request
timeout, so a frozen broker gets a connection attempt every timeout + this, per client."""

Client = TypeVar("Client", AIOKafkaConsumer, AIOKafkaProducer, AIOKafkaAdminClient, AIOKafkaClient)


def answering_first(nodes: Iterable[Any], silent: set[Any]) -> list[Any]:
    """The nodes that answer, or all of them when none does (a lone broker that froze is
    still the only one to ask)."""
    nodes = list(nodes)
    answering = [node for node in nodes if node not in silent]
    return answering or nodes


def with_failover(kafka: Client) -> Client:
    """`kafka` (a consumer, producer, admin client or bare client, not started yet) with its
    client made a `FailoverClient`."""
    if isinstance(kafka, AIOKafkaClient):
        client = kafka
    elif isinstance(kafka, AIOKafkaProducer):
        client = kafka.client
    else:
        client = kafka._client
    FailoverClient.adopt(client)
    return kafka


class FailoverClient(AIOKafkaClient):
    """An `AIOKafkaClient` that asks no request of a broker that stopped answering (the
    module's docstring says why and how)."""

    _silent: set[int | str]
    _probes: dict[int | str, asyncio.Task[None]]
    _conn_locks: dict[tuple[int | str, ConnectionGroup], asyncio.Lock]

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._init_failover()

    @classmethod
    def adopt(cls, client: AIOKafkaClient) -> None:
        """Make an `AIOKafkaClient` that is not connected yet one of these."""
        if not isinstance(client, cls):
            client.__class__ = cls
            client._init_failover()  # type: ignore[attr-defined]

    def _init_failover(self) -> None:
        self._silent = set()
        self._probes = {}
        self._conn_locks = {}

    def get_random_node(self) -> int | None:
        """A random answering broker, for a coordinator lookup or an admin request."""
        nodes = answering_first((b.nodeId for b in self.cluster.brokers()), self._silent)
        return random.choice(nodes) if nodes else None

    async def close(self) -> None:
        for probe in list(self._probes.values()):
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe
        await super().close()

    async def send(
        self, node_id: int | str, request: Any, *, group: ConnectionGroup = ConnectionGroup.DEFAULT
    ) -> Any:
        try:
            return await super().send(node_id, request, group=group)
        except RequestTimedOutError:
            self._fell_silent(node_id, f"a {type(request).__name__} timed out")
            raise

    async def _get_conn(
        self,
        node_id: int | str,
        *,
        group: ConnectionGroup = ConnectionGroup.DEFAULT,
        no_hint: bool = False,
    ) -> AIOKafkaConnection | None:
        """`AIOKafkaClient._get_conn` with a lock per connection, and None at once for a
        silent broker."""
        conn_id = (node_id, group)
        if node_id in self._silent:
            self.force_metadata_update()
            return None
        conn = self._conns.get(conn_id)
        if conn is not None and conn.connected():
            return conn
        broker = self.cluster.broker_metadata(node_id)
        if broker is None:
            log.error("Unable connect to node with id %s: not in current metadata", node_id)
            self.force_metadata_update()
            return None
        lock = self._conn_locks.setdefault(conn_id, asyncio.Lock())
        try:
            async with lock:
                conn = self._conns.get(conn_id)
                if conn is not None and conn.connected():
                    return conn
                if node_id in self._silent:  # found so while this attempt waited
                    self.force_metadata_update()
                    return None
                conn = await self._connect(broker.host, broker.port, self._on_connection_closed)
                self._conns[conn_id] = conn
                return conn
        except TimeoutError:
            self._fell_silent(node_id, "a new connection's handshake timed out")
        except (OSError, KafkaError) as err:
            log.error("Unable connect to node with id %s: %s", node_id, err)
        self.force_metadata_update()
        return None

    async def _connect(self, host: str, port: int, on_close: Any = None) -> AIOKafkaConnection:
        """A connection as aiokafka's `_get_conn` makes it."""
        return await create_conn(
            host,
            port,
            client_id=self._client_id,
            request_timeout_ms=self._request_timeout_ms,
            ssl_context=self._ssl_context,
            security_protocol=self._security_protocol,
            on_close=on_close,
            max_idle_ms=self._connections_max_idle_ms,
            sasl_mechanism=self._sasl_mechanism,
            sasl_plain_username=self._sasl_plain_username,
            sasl_plain_password=self._sasl_plain_password,
            sasl_kerberos_service_name=self._sasl_kerberos_service_name,
            sasl_kerberos_domain_name=self._sasl_kerberos_domain_name,
            sasl_oauth_token_provider=self._sasl_oauth_token_provider,
        )

    def _fell_silent(self, node_id: int | str, why: str) -> None:
        """Ask nothing more of the node until a probe gets an answer from it."""
        if node_id == "bootstrap" or node_id in self._silent:
            return
        log.warning("Kafka node %s stopped answering (%s); avoided until it answers", node_id, why)
        self._silent.add(node_id)
        self._probes[node_id] = asyncio.get_running_loop().create_task(self._probe(node_id))
        self.force_metadata_update()

    async def _probe(self, node_id: int | str) -> None:
        """Connect to the node until it answers a handshake; close the client's connections
        to it the first time it does not."""
        closed = False
        try:
            while (broker := self.cluster.broker_metadata(node_id)) is not None:
                try:
                    conn = await self._connect(broker.host, broker.port)
                except (OSError, TimeoutError, KafkaError):
                    if not closed:
                        closed = True
                        self._close_conns(node_id)
                    await asyncio.sleep(PROBE_INTERVAL_S)
                    continue
                conn.close(reason=CloseReason.SHUTDOWN)
                log.warning("Kafka node %s answers again", node_id)
                break
        finally:
            self._silent.discard(node_id)
            self._probes.pop(node_id, None)

    def _close_conns(self, node_id: int | str) -> None:
        for (node, _), conn in list(self._conns.items()):
            if node == node_id:
                conn.close(reason=CloseReason.CONNECTION_TIMEOUT)
