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

aiokafka also sends a JoinGroup with the request timeout, though the coordinator answers it
only once every member has rejoined, which may take up to the rebalance timeout (60 s for the
services' groups, `GROUP_TIMEOUTS`: a dispatcher gives its shards up first). A JoinGroup that
timed out is sent again; one from the group's leader after the join phase ended starts another
rebalance.

`FailoverClient` changes five things:

- one lock per connection (node, group), so an attempt at a frozen broker holds up only the
  requests that were waiting for that same connection;
- a broker that let a request or a new connection's handshake time out is *silent* until it
  answers again. No request waits on it: `_get_conn` answers None at once, as aiokafka does
  for a broker that refuses connections, and asks for new metadata, which the other brokers
  give, since a metadata refresh skips a node without a connection. The callers (fetcher,
  sender, group coordinator) retry after their backoff (`retry_backoff_ms`), so they follow
  the leaders as soon as the cluster has moved them, instead of one request timeout later. A
  coordinator lookup goes to an answering broker;
- every client of the process (of its event loop) avoids a silent broker, not only the one
  that found it so: the dispatcher's five clients would otherwise each wait a timeout to learn
  it, and a coordinator lookup or a produce to the broker the metadata still names as leader
  held deliveries up one request timeout more;
- a probe connects to a silent broker again every PROBE_INTERVAL_S; the first answer ends its
  silence. A probe that timed out closes the client's connections to it,
  so requests still in flight there fail now instead of at their own timeouts; a broker that
  was only slow to answer one request (a produce waiting for a frozen follower) answers the
  probe at once and loses none of them;
- a JoinGroup waits the rebalance timeout and 5 s more, as in the Java client, while a probe
  checks every request timeout that the coordinator still answers.

It overrides `AIOKafkaClient._get_conn`, a private method, sets the request timeout of one
connection (`AIOKafkaConnection._request_timeout`) around one JoinGroup and reads the rebalance
timeout of a `JoinGroupRequest`: it was written against aiokafka 0.14.0 (`WRITTEN_FOR`; a unit
test fails on any other version, so an upgrade reads this again). aiokafka's consumer, producer
and admin client build their `AIOKafkaClient` inside their constructors and take no other, so
`with_failover` changes the class of the client they built; the subclass only adds attributes,
so whatever the parent set up stays as it was.
"""

import asyncio
import contextlib
import logging
import random
import weakref
from collections.abc import Iterable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient, ConnectionGroup
from aiokafka.conn import AIOKafkaConnection, CloseReason, create_conn
from aiokafka.errors import KafkaError, NodeNotReadyError, RequestTimedOutError
from aiokafka.protocol.group import JoinGroupRequest

log = logging.getLogger(__name__)

WRITTEN_FOR = "0.14.0"
"""The aiokafka version whose `AIOKafkaClient._get_conn` this module replaces."""

PROBE_INTERVAL_S = 0.5
"""Between a silent broker's failed probe and the next; a probe itself may wait the request
timeout, so a frozen broker gets a connection attempt every timeout + this."""

Client = TypeVar("Client", AIOKafkaConsumer, AIOKafkaProducer, AIOKafkaAdminClient, AIOKafkaClient)


def answering_first(nodes: Iterable[Any], silent: set[Any]) -> list[Any]:
    """The nodes that answer, or all of them when none does (a lone broker that froze is
    still the only one to ask)."""
    nodes = list(nodes)
    answering = [node for node in nodes if node not in silent]
    return answering or nodes


def join_group_timeout_s(request_timeout_s: float, rebalance_timeout_ms: int) -> float:
    """How long a JoinGroup may wait for its answer: as the Java client, the rebalance timeout
    and 5 s more, and never less than any other request."""
    return max(request_timeout_s, rebalance_timeout_ms / 1000 + 5)


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


Address = tuple[str, int]
Silences = dict[Address, asyncio.Task[None]]

_silences: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Silences] = (
    weakref.WeakKeyDictionary()
)
"""Per event loop, the brokers (host, port) found silent, each with the probe that will end
its silence: every client of the process avoids a broker once one of them found it silent,
instead of each one waiting a request timeout to find out."""


def _silent_here() -> Silences:
    return _silences.setdefault(asyncio.get_running_loop(), {})


class FailoverClient(AIOKafkaClient):
    """An `AIOKafkaClient` that asks no request of a broker that stopped answering (the
    module's docstring says why and how)."""

    _probes: dict[Address, asyncio.Task[None]]
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
        self._probes = {}
        """The probes this client started, which end with it."""
        self._conn_locks = {}

    def _address(self, node_id: int | str) -> Address | None:
        broker = self.cluster.broker_metadata(node_id)
        return None if broker is None else (broker.host, broker.port)

    def _is_silent(self, node_id: int | str) -> bool:
        address = self._address(node_id)
        probe = _silent_here().get(address) if address else None
        return probe is not None and not probe.done()

    def get_random_node(self) -> int | None:
        """A random answering broker, for a coordinator lookup or an admin request."""
        nodes = [b.nodeId for b in self.cluster.brokers()]
        nodes = answering_first(nodes, {node for node in nodes if self._is_silent(node)})
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
        if isinstance(request, JoinGroupRequest):
            return await self._join_group(node_id, request, group)
        try:
            return await super().send(node_id, request, group=group)
        except RequestTimedOutError:
            self._fell_silent(node_id, f"a {type(request).__name__} timed out")
            raise

    async def _join_group(
        self, node_id: int | str, request: JoinGroupRequest, group: ConnectionGroup
    ) -> Any:
        """Send a JoinGroup, which the coordinator holds until every member has rejoined (up
        to the rebalance timeout), and wait for it as long (`join_group_timeout_s`); each
        request timeout meanwhile, check with a probe that the coordinator still answers,
        and give up on it at once if it does not."""
        if not await self.ready(node_id, group=group):
            raise NodeNotReadyError(f"node {node_id} is not ready")
        conn = self._conns[(node_id, group)]
        usual = conn._request_timeout
        # The connection reads its timeout when the request is sent, so only this one waits longer.
        conn._request_timeout = join_group_timeout_s(usual, request._rebalance_timeout)
        try:
            reply = asyncio.ensure_future(conn.send(request))
        finally:
            conn._request_timeout = usual
        try:
            while not (await asyncio.wait({reply}, timeout=usual))[0]:
                address = self._address(node_id)
                if address is not None and not await self._answers(address):
                    self._fell_silent(node_id, "it did not answer while a JoinGroup waited")
                    self._close_conns(address)
            return reply.result()
        except TimeoutError as exc:
            conn.close(reason=CloseReason.CONNECTION_TIMEOUT)
            raise RequestTimedOutError() from exc
        finally:
            reply.cancel()

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
        if self._is_silent(node_id):
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
                if self._is_silent(node_id):  # found so while this attempt waited
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

    async def _answers(self, address: Address) -> bool:
        """Whether the broker answers a new connection's handshake within the request timeout.
        One that refuses it, or the credentials, answers too: it makes nobody wait."""
        try:
            conn = await self._connect(*address)
        except TimeoutError:
            return False
        except (OSError, KafkaError):
            return True
        conn.close(reason=CloseReason.SHUTDOWN)
        return True

    def _fell_silent(self, node_id: int | str, why: str) -> None:
        """Ask nothing more of the node, from any client, until a probe gets an answer."""
        address = self._address(node_id)
        if address is None or self._is_silent(node_id):
            return
        log.warning("Kafka node %s stopped answering (%s); avoided until it answers", node_id, why)
        probe = asyncio.get_running_loop().create_task(self._probe(address))
        self._probes[address] = _silent_here()[address] = probe
        self.force_metadata_update()

    async def _probe(self, address: Address) -> None:
        """Connect to the broker until it answers a handshake; close this client's
        connections to it the first time it does not."""
        closed = False
        try:
            while not await self._answers(address):
                if not closed:
                    closed = True
                    self._close_conns(address)
                await asyncio.sleep(PROBE_INTERVAL_S)
            log.warning("Kafka broker %s:%s answers again", *address)
        finally:
            silent = _silent_here()
            if silent.get(address) is self._probes.get(address):
                del silent[address]
            self._probes.pop(address, None)

    def _close_conns(self, address: Address) -> None:
        for (node_id, _), conn in list(self._conns.items()):
            if self._address(node_id) == address:
                conn.close(reason=CloseReason.CONNECTION_TIMEOUT)
