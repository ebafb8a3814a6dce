"""Fault injection for tests/faults and `make chaos`: private servers, steady load, an
independent account of every delivery, and the report.

The fault suite kills and freezes the broker and Postgres, so it runs its own pair
(`PrivateInfra`, under `.hookstream/faults/`) and never touches the shared local servers. Each
scenario gets a fresh installation (database, topic prefix, supervised services), a steady
load to four webhooks, its faults, and an account of what arrived at the receiver: lost and
duplicated deliveries, bad signatures, how long after each fault new events were delivered
again, and whether every service ended ready without help.

HOOKSTREAM_CHAOS=short (default, part of `make test`) or full (`make chaos`) picks the
`Profile`; HOOKSTREAM_CHAOS_SEED replays the random instants of a run.
"""

import asyncio
import itertools
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from standardwebhooks.webhooks import Webhook as StandardWebhook

from hookstream_common.jobs import delivery_id_for
from hookstream_common.kafka import client_options
from hookstream_common.sdk import EventPublisher
from hookstream_common.signing import qlik_signature
from hookstream_common.tokens import TENANT_ADMIN
from hookstream_dev import infra, supervisor
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import Receiver, RecordedRequest, TlsFiles
from hookstream_dev.stack import ServiceSet, free_port, kafka_security_of, service_environment
from hookstream_dev.tokens import mint_token

FAULTS_DIR = infra.STATE_DIR / "faults"
RECEIVER_HOST = "receiver.hookstream.test"
EVENT_TYPE = "com.qlik.v1.app.created"
SINGLE = ["api", "matcher", "dispatcher", "janitor"]  # one instance of each service
KEEP_RUNS = 5
SETTLE_MAX_S = 900.0
"""The longest wait for a backlog that keeps draining after the load stops."""
BROKER_RESTART_TIMEOUT = 180.0
"""How long a restarted broker may take to serve again: on a machine loaded by other work, a
cluster's node took over a minute (the JVM, then catching up with the quorum). The recovery
times count from when it answered, so waiting longer hides nothing."""
TIMESTAMP_TOLERANCE_S = 300  # the Standard Webhooks libraries' default


# --- profiles ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """How hard a run pushes: `short` fits in `make test`, `full` is `make chaos`."""

    name: str
    rate: float  # events per second, spread over the tenants
    kills: int  # SIGKILLs per service
    rolling_rounds: int
    rebalance_rounds: int
    broker_kills: int
    broker_pauses: int
    broker_pause_s: float
    postgres_restarts: int  # each of fast shutdown and SIGKILL
    recover_events: int
    gap_s: tuple[float, float]  # random wait after a service is ready again, before the next
    steady_s: float  # load before the first fault and after the last
    down_s: float  # how long the broker or Postgres stays down
    settle_s: float  # after the load stops, how long stragglers may take to make progress
    ready_s: float  # longest wait for every service to be ready at the end


SHORT = Profile(
    name="short",
    rate=25,
    kills=2,
    rolling_rounds=1,
    rebalance_rounds=1,
    broker_kills=1,
    broker_pauses=1,
    broker_pause_s=12,
    postgres_restarts=1,
    recover_events=10,
    gap_s=(1.0, 3.0),
    steady_s=2,
    down_s=5,
    settle_s=45,
    ready_s=30,
)
FULL = Profile(
    name="full",
    rate=40,
    kills=20,
    rolling_rounds=3,
    rebalance_rounds=5,
    broker_kills=3,
    broker_pauses=2,
    broker_pause_s=30,
    postgres_restarts=3,
    recover_events=30,
    gap_s=(1.0, 6.0),
    steady_s=5,
    down_s=10,
    settle_s=120,
    ready_s=60,
)


def profile() -> Profile:
    mode = os.environ.get("HOOKSTREAM_CHAOS", "short")
    if mode not in ("short", "full"):
        raise ValueError(f"HOOKSTREAM_CHAOS must be short or full, not {mode!r}")
    return FULL if mode == "full" else SHORT


def seed() -> int:
    return int(os.environ.get("HOOKSTREAM_CHAOS_SEED") or secrets.randbelow(2**31))


# --- private servers ---------------------------------------------------------------------------


@dataclass
class PrivateInfra:
    """A broker (or a cluster of brokers) and a Postgres server of this run only, on free
    ports below `root`."""

    root: Path
    brokers: list[infra.KafkaServer]
    postgres: infra.PostgresServer

    @classmethod
    def create(cls, brokers: int = 1) -> "PrivateInfra":
        """One broker, or a KRaft cluster of `brokers` nodes (`KafkaServer.cluster`), and a
        Postgres server, on ports of the block `infra.fault_ports` (a single broker's and a
        cluster's apart, since `make chaos` runs both)."""
        FAULTS_DIR.mkdir(parents=True, exist_ok=True)
        _prune_old_runs()
        kind = "" if brokers == 1 else "cluster-"
        root = FAULTS_DIR / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{kind}{os.getpid()}"
        *kafka_ports, postgres_port = infra.fault_ports(0 if brokers == 1 else 10, 2 * brokers + 1)
        pairs = list(zip(kafka_ports[::2], kafka_ports[1::2], strict=True))
        kafka = (
            [infra.KafkaServer.under(root, *pairs[0])]
            if brokers == 1
            else infra.KafkaServer.cluster(root, pairs)
        )
        return cls(root, kafka, infra.PostgresServer.under(root, postgres_port))

    @property
    def kafka(self) -> infra.KafkaServer:
        """The broker of a single-broker run (the first of a cluster)."""
        return self.brokers[0]

    @property
    def bootstrap(self) -> str:
        """Every broker: clients reach the cluster while any one of them is down."""
        return ",".join(broker.bootstrap for broker in self.brokers)

    def ensure_running(self) -> None:
        """Start whichever server is down (a scenario before may have failed to restart it);
        a cluster's nodes all at once, since none is ready before a quorum is."""
        started = {broker: broker.start() for broker in self.brokers if broker.pid is None}
        for broker, pid in started.items():
            broker.wait_ready(pid)
        if self.postgres.pid is None:
            self.postgres.start()

    def close(self) -> None:
        """Stop them all and drop their data; logs and reports stay for a post-mortem."""
        for broker in self.brokers:
            if broker.pid is not None:
                broker.resume()  # a frozen broker would ignore SIGTERM
            broker.stop()
            shutil.rmtree(broker.log_dirs, ignore_errors=True)
        self.postgres.stop()
        shutil.rmtree(self.postgres.data_dir, ignore_errors=True)


def _prune_old_runs() -> None:
    """Stop the servers of runs whose test session died; keep the last KEEP_RUNS folders."""
    runs = sorted(path for path in FAULTS_DIR.iterdir() if path.is_dir())
    abandoned = [run for run in runs if not _session_alive(run)]
    for run in abandoned:
        for broker in [run, *run.glob("broker-*")]:
            infra.KafkaServer.under(broker, 0, 0).kill()
        infra.PostgresServer.under(run, 0).kill()
    for run in runs[:-KEEP_RUNS]:
        if run in abandoned:
            shutil.rmtree(run, ignore_errors=True)


def _session_alive(run: Path) -> bool:
    """Whether the test session that made `run` (its pid ends the name) still runs."""
    try:
        os.kill(int(run.name.rsplit("-", 1)[-1]), 0)
    except (ValueError, ProcessLookupError):
        return False
    return True


# --- the account -------------------------------------------------------------------------------


@dataclass
class Ledger:
    """What was published, what each webhook must receive, and what the receiver got.

    Independent of the services: a delivery's id is `delivery_id_for(webhook, event)`, and
    every request is checked against the webhook's secret (both signature schemes).
    """

    secret_of: dict[str, str] = field(default_factory=dict)  # webhook id -> secret
    webhook_at: dict[str, str] = field(default_factory=dict)  # receiver path -> webhook id
    webhooks_of: dict[str, list[str]] = field(default_factory=dict)  # tenant -> webhook ids
    expected: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (webhook, event)
    sent_at: dict[str, float] = field(default_factory=dict)  # counted event -> publish began
    probes: set[str] = field(default_factory=set)  # probe deliveries: routing checks only
    # delivery id -> (webhook, event, t): owed again from t on (a failed delivery recovered)
    recovering: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    arrivals: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    bad: list[str] = field(default_factory=list)
    foreign: int = 0  # verified arrivals of events whose publish was never acknowledged
    publish_errors: int = 0
    _absorbed: int = 0

    def add_webhook(self, tenant: str, webhook_id: str, path: str, secret: str) -> None:
        self.secret_of[webhook_id] = secret
        self.webhook_at[path] = webhook_id
        self.webhooks_of.setdefault(tenant, []).append(webhook_id)

    def expect(self, tenant: str, event_id: str, sent_at: float, probe: bool = False) -> None:
        """An acknowledged event: each of the tenant's webhooks must get it."""
        for webhook_id in self.webhooks_of[tenant]:
            delivery_id = delivery_id_for(webhook_id, event_id)
            if probe:
                self.probes.add(delivery_id)
            else:
                self.expected[delivery_id] = (webhook_id, event_id)
        if not probe:
            self.sent_at[event_id] = sent_at

    def absorb(self, requests: list[RecordedRequest]) -> None:
        """Verify and count the requests that arrived since the last call."""
        for request in requests[self._absorbed :]:
            delivery_id = self._verify(request)
            if delivery_id is not None:
                self.arrivals[delivery_id].append(request.received_at)
        self._absorbed = len(requests)

    def _verify(self, request: RecordedRequest) -> str | None:
        """The request's delivery id if it is a genuine delivery to one of our webhooks."""
        webhook_id = self.webhook_at.get(request.path)
        if webhook_id is None:
            return None
        secret, headers = self.secret_of[webhook_id], request.headers
        delivery_id = headers.get("webhook-id", "")
        problem = None
        if headers.get("qlik-signature") != qlik_signature(secret, request.body):
            problem = "Qlik-Signature does not match the body"
        else:
            try:
                problem = _standard_webhooks_problem(secret, request)
                event_id = orjson.loads(request.body)["eventId"]
                if not problem and delivery_id != delivery_id_for(webhook_id, event_id):
                    problem = f"webhook-id is not the delivery id of event {event_id}"
            except Exception as exc:  # any malformed request is a finding, not a crash
                problem = f"{type(exc).__name__}: {exc}"
        if problem:
            self.bad.append(f"{request.path} webhook-id={delivery_id}: {problem}")
            return None
        known = (self.expected, self.probes, self.recovering)
        if not any(delivery_id in ids for ids in known):
            self.foreign += 1
        return delivery_id

    def owed(self) -> int:
        return len(self.expected) + len(self.recovering)

    def arrivals_owed(self, delivery_id: str) -> list[float]:
        """Arrivals that count: for a recovered delivery, only those after its recovery."""
        times = self.arrivals.get(delivery_id, [])
        if delivery_id in self.recovering:
            since = self.recovering[delivery_id][2]
            return [t for t in times if t >= since]
        return times

    def missing(self) -> list[str]:
        owed = [*self.expected, *self.recovering]
        return [d for d in owed if not self.arrivals_owed(d)]

    def duplicates(self) -> int:
        owed = [*self.expected, *self.recovering]
        return sum(max(0, len(self.arrivals_owed(d)) - 1) for d in owed)

    def where(self, delivery_id: str) -> tuple[str, str]:
        """(webhook id, event id) of an owed delivery."""
        if delivery_id in self.expected:
            return self.expected[delivery_id]
        webhook_id, event_id, _ = self.recovering[delivery_id]
        return webhook_id, event_id


def _standard_webhooks_problem(secret: str, request: RecordedRequest) -> str | None:
    """What is wrong with the request's Standard Webhooks signature, if anything.

    The reference library signs; the timestamp is checked against the request's arrival,
    not against now, because the ledger may verify a request minutes after it came.
    """
    headers = request.headers
    stamp = int(headers["webhook-timestamp"])
    if abs(request.received_at - stamp) > TIMESTAMP_TOLERANCE_S:
        return f"webhook-timestamp {stamp} is {request.received_at - stamp:.0f} s off its arrival"
    expected = StandardWebhook(secret.encode()).sign(
        headers["webhook-id"], datetime.fromtimestamp(stamp, UTC), request.body.decode()
    )
    if expected not in headers["webhook-signature"].split(" "):
        return "webhook-signature does not match"
    return None


# --- load --------------------------------------------------------------------------------------


@dataclass
class Load:
    """Publishes events at a steady rate, round robin over tenants, without waiting for acks.

    Publishing is fire-and-track: during a broker outage sends pile up (bounded) and complete
    or fail later, while the schedule keeps its pace.
    """

    publisher: EventPublisher
    ledger: Ledger
    tenants: list[str]
    rate: float
    max_in_flight: int = 5000
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        started, sent = time.monotonic(), 0
        while not self._stop.is_set():
            due = started + sent / self.rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if len(self._tasks) < self.max_in_flight:
                task = asyncio.create_task(self._publish(self.tenants[sent % len(self.tenants)]))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            sent += 1

    async def _publish(self, tenant: str) -> None:
        sent_at = time.time()
        try:
            event_id = await self.publisher.publish(sample_event(EVENT_TYPE, tenant, "chaos"))
        except Exception:  # unacknowledged: not owed to anyone, but counted
            self.ledger.publish_errors += 1
            return
        self.ledger.expect(tenant, event_id, sent_at)

    async def stop(self, timeout: float) -> None:
        """Stop scheduling; wait (bounded) for the sends still in flight to be acknowledged."""
        self._stop.set()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)


# --- one installation --------------------------------------------------------------------------


async def start_stack(
    private: PrivateInfra, tls: TlsFiles, name: str, instances: list[str]
) -> ServiceSet:
    """A fresh installation (database, topic prefix), its instances under a supervisor."""
    await asyncio.to_thread(private.ensure_running)
    database = f"chaos_{re.sub(r'[^a-z0-9]', '_', name.lower())}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(private.postgres.dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    home = private.root / "stacks" / name
    env = service_environment(
        private.bootstrap,
        private.postgres.dsn(database),
        prefix=f"chaos-{secrets.token_hex(3)}",
        ca_file=tls.ca,
        static_hosts={RECEIVER_HOST: "127.0.0.1"},
        overrides={
            "HOOKSTREAM_LOG_LEVEL": "INFO",
            "HOOKSTREAM_RETRY_SCHEDULE": "1s,2s,4s",
            "HOOKSTREAM_RETRY_JITTER": "0.1",
            "HOOKSTREAM_KAFKA_REPLICATION_FACTOR": str(len(private.brokers)),
            **(
                {"KAFKA_REQUEST_TIMEOUT_MS": str(infra.CLUSTER_CLIENT_TIMEOUT_MS)}
                if len(private.brokers) > 1
                else {}
            ),
        },
    )
    stack = ServiceSet(
        env=env, ports={instance: free_port() for instance in instances}, log_dir=home / "logs"
    )
    stack.supervise(home / "run")
    try:
        for instance in instances:
            await asyncio.to_thread(stack.wait_ready, instance, 120)
    except BaseException:
        await asyncio.to_thread(stack.stop_all)
        raise
    return stack


# --- faults and results ------------------------------------------------------------------------


@dataclass
class FaultRecord:
    """One fault: when it struck and when it ended: the harness thawed or restarted the
    broker or Postgres, or the supervisor started the successor of a killed service (the
    same instant when the scenario does not wait for one)."""

    kind: str
    at: float
    healed_at: float


@dataclass
class Result:
    """What one scenario measured; `lost` must be 0 and `all_ready` true."""

    scenario: str
    profile: str
    faults: int
    events: int
    expected: int
    delivered: int
    lost: int
    duplicates: int
    duplicate_rate: float
    max_fault_to_delivery_s: float | None
    max_heal_to_delivery_s: float | None
    longest_gap_s: float  # between two consecutive first arrivals at the receiver
    restarts: dict[str, int]  # by the supervisor, per instance
    own_exits: dict[str, int]  # restarts the harness did not cause: the service exited itself
    all_ready: bool
    not_ready: list[str]
    bad_signatures: int
    unacknowledged_publishes: int
    foreign_deliveries: int
    duration_s: float
    phases_s: dict[str, float]
    notes: list[str] = field(default_factory=list)
    recovery_s: list[tuple[str, float, float]] = field(default_factory=list)
    """Per fault: its kind, fault → first new delivery, end of fault → delivery."""


class Scenario:
    """One fault scenario on one installation: webhooks, load, faults, settle, account.

    Use: `async with Scenario(...) as s: await s.run(faults)`; `s.result` and `s.diagnosis()`.
    """

    def __init__(
        self,
        name: str,
        stack: ServiceSet,
        private: PrivateInfra,
        receiver: Receiver,
        profile: Profile,
        rng: random.Random,
    ) -> None:
        self.name, self.stack, self.private = name, stack, private
        self.receiver, self.profile, self.rng = receiver, profile, rng
        self.ledger = Ledger()
        self.faults: list[FaultRecord] = []
        self.notes: list[str] = []
        self.result: Result | None = None
        self.failure = ""  # the diagnosis, when the result is not sound
        self.phases: dict[str, float] = {}
        self._phase_start = time.monotonic()
        self.tenants = [f"tenant-{uuid.uuid4().hex[:8]}" for _ in range(2)]
        self.jwt_key = stack.env["HOOKSTREAM_JWT_KEY"]
        self.publisher = EventPublisher(
            private.bootstrap,
            stack.env["HOOKSTREAM_TOPIC_PREFIX"],
            security=kafka_security_of(stack.env),
        )
        self.api = httpx.AsyncClient(base_url=stack.url("api"), timeout=15)

    async def __aenter__(self) -> "Scenario":
        await self.publisher.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.api.aclose()
        await self.publisher.__aexit__(*exc)

    @property
    def sound(self) -> bool:
        """Nothing lost, nothing forged, every service ready at the end."""
        result = self.result
        return bool(result and result.lost == 0 and result.all_ready and not result.bad_signatures)

    def token(self, tenant: str) -> dict[str, str]:
        token = mint_token(self.jwt_key, tenant, "chaos-admin", [TENANT_ADMIN])
        return {"Authorization": f"Bearer {token}"}

    async def create_webhook(self, tenant: str, label: str) -> str:
        """A webhook with a secret, at a receiver path of its own; returns its id."""
        path, secret = f"/chaos/{self.name}/{label}", secrets.token_hex(20)
        body = {
            "name": f"chaos {label}",
            "url": f"https://{RECEIVER_HOST}:{self.receiver.port}{path}",
            "eventTypes": [EVENT_TYPE],
            "secret": secret,
        }
        response = await retrying(
            lambda: self.api.post("/api/v1/webhooks", json=body, headers=self.token(tenant))
        )
        assert response.status_code == 201, f"creating a webhook: {response.text}"
        webhook_id = response.json()["id"]
        self.ledger.add_webhook(tenant, webhook_id, path, secret)
        return webhook_id

    async def wait_routed(self, tenants: list[str], timeout: float = 60.0) -> None:
        """Probe each tenant until every one of its webhooks received a probe event.

        Events published before the matcher knows a webhook are not owed to it, so the
        counted load starts only once routing is proven end to end.
        """
        webhooks = {w for t in tenants for w in self.ledger.webhooks_of[t]}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for tenant in tenants:
                event_id = await self.publisher.publish(sample_event(EVENT_TYPE, tenant, "probe"))
                self.ledger.expect(tenant, event_id, time.time(), probe=True)
            await asyncio.sleep(0.5)
            self.ledger.absorb(self.receiver.requests)
            reached = {
                self.ledger.webhook_at[r.path]
                for r in self.receiver.requests
                if r.path in self.ledger.webhook_at
                and r.headers.get("webhook-id") in self.ledger.probes
            }
            if webhooks <= reached:
                return
        raise AssertionError(
            f"{self.name}: webhooks {sorted(webhooks - reached)} got no probe within "
            f"{timeout:.0f} s; the pipeline does not deliver even before any fault\n"
            + self.log_tails()
        )

    async def run(self, faults: Callable[["Scenario"], Awaitable[None]]) -> Result:
        """Webhooks, routing proven, steady load, the faults, settle, then the account."""
        started = time.monotonic()
        for tenant in self.tenants:
            for n in range(2):
                await self.create_webhook(tenant, f"{tenant}-{n}")
        await self.wait_routed(self.tenants)
        self._phase("setup")
        load = Load(self.publisher, self.ledger, self.tenants, self.profile.rate)
        loading = asyncio.create_task(load.run())
        try:
            await asyncio.sleep(self.profile.steady_s)
            await faults(self)
            await asyncio.sleep(self.profile.steady_s)
        finally:
            await load.stop(timeout=60)
            loading.cancel()
        self._phase("faults")
        await self.settle()
        self._phase("settle")
        not_ready = await self.unready_instances()
        self._phase("ready")
        self.result = self._account(time.monotonic() - started, not_ready)
        return self.result

    def _phase(self, name: str) -> None:
        """Note how long the phase that just ended took, to see where a run's time goes."""
        now = time.monotonic()
        self.phases[name] = round(now - self._phase_start, 1)
        self._phase_start = now

    async def settle(self) -> None:
        """Wait until everything owed arrived, or nothing new arrived for the settle time: a
        backlog still draining (a slow machine) is late, which the recovery times show, not
        lost. At most `SETTLE_MAX_S`."""
        started = time.monotonic()
        deadline, missing = started + self.profile.settle_s, -1
        while time.monotonic() < min(deadline, started + SETTLE_MAX_S):
            self.ledger.absorb(self.receiver.requests)
            still = len(self.ledger.missing())
            if not still:
                break
            if still != missing:
                deadline, missing = time.monotonic() + self.profile.settle_s, still
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)  # a duplicate would arrive within this time
        self.ledger.absorb(self.receiver.requests)

    async def unready_instances(self) -> list[str]:
        """The instances not running and ready after waiting up to the profile's `ready_s`."""
        deadline = time.monotonic() + self.profile.ready_s
        while True:
            pending = [i for i in self.stack.ports if not await self.instance_ready(i)]
            if not pending or time.monotonic() > deadline:
                return pending
            await asyncio.sleep(0.5)

    async def instance_ready(self, instance: str) -> bool:
        if self.stack.pid(instance) is None:
            return False
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                response = await client.get(f"{self.stack.ops_url(instance)}/readyz")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    # --- faults --------------------------------------------------------------------------------

    async def pause_between(self) -> None:
        await asyncio.sleep(self.rng.uniform(*self.profile.gap_s))

    async def signal_instance(self, instance: str, sig: int, wait_ready: bool = True) -> int:
        """Signal the instance's current process; then wait for its successor to be ready.
        Returns the pid signalled."""
        pid = await self._current_pid(instance)
        os.kill(pid, sig)
        now = time.time()
        fault = FaultRecord(f"{signal.Signals(sig).name} {instance}", now, now)
        self.faults.append(fault)
        if wait_ready:
            fault.healed_at = await self.wait_restarted(instance, pid)
        return pid

    async def _current_pid(self, instance: str, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while (pid := self.stack.pid(instance)) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{instance} has no process after {timeout:.0f} s")
            await asyncio.sleep(0.1)
        return pid

    async def wait_restarted(self, instance: str, old_pid: int, timeout: float = 90.0) -> float:
        """Wait for a new process of the instance to be ready; note it if none is in time.
        Returns when the new process was first seen (the supervisor's backoff is over)."""
        deadline = time.monotonic() + timeout
        started = None
        while time.monotonic() < deadline:
            pid = self.stack.pid(instance)
            if pid not in (None, old_pid):
                started = started or time.time()
                if await self.instance_ready(instance):
                    return started
            await asyncio.sleep(0.2)
        self.notes.append(f"{instance} was not ready {timeout:.0f} s after a fault")
        return started or time.time()

    async def broker_down(
        self, kind: str, hold: float, broker: infra.KafkaServer | None = None
    ) -> None:
        """`kill`: SIGKILL the broker (of a cluster: `broker`) and start it again after `hold`
        s; `pause`: SIGSTOP it for `hold` s."""
        kafka = broker or self.private.kafka
        at = time.time()
        if kind == "pause":
            kafka.pause()
            await asyncio.sleep(hold)
            kafka.resume()
        else:
            await asyncio.to_thread(kafka.kill)
            await asyncio.sleep(hold)
            await asyncio.to_thread(lambda: kafka.wait_ready(kafka.start(), BROKER_RESTART_TIMEOUT))
        node = f" (node {kafka.node_id} of {len(self.private.brokers)})" if broker else ""
        self.faults.append(FaultRecord(f"broker {kind} {hold:.0f} s{node}", at, time.time()))

    async def _partitions(self) -> list[dict[str, Any]]:
        """The partitions of this installation's topics, with leader, replicas and ISR."""
        prefix = self.stack.env["HOOKSTREAM_TOPIC_PREFIX"]
        admin = AIOKafkaAdminClient(**client_options(self.private.bootstrap))
        await admin.start()
        try:
            ours = [t for t in await admin.list_topics() if t.startswith(f"{prefix}.")]
            described = await admin.describe_topics(ours)
        finally:
            await admin.close()
        return [p for topic in described for p in topic["partitions"]]

    async def busiest_leader(self) -> infra.KafkaServer:
        """The broker that leads the most of this installation's partitions."""
        leaders = Counter(p["leader"] for p in await self._partitions())
        node = leaders.most_common(1)[0][0]
        self.notes.append(f"node {node} led {leaders[node]} of {sum(leaders.values())} partitions")
        return next(b for b in self.private.brokers if b.node_id == node)

    def active_controller(self) -> infra.KafkaServer:
        """The node the KRaft quorum follows: the one whose freeze costs most, since the
        others elect a new controller before they can fence it."""
        known = [state for b in self.private.brokers if (state := b.quorum_leader())]
        if not known:
            raise AssertionError("no node of the cluster has recorded a quorum leader")
        node, epoch = max(known, key=lambda state: state[1])
        self.notes.append(f"node {node} was the active controller (epoch {epoch})")
        return next(b for b in self.private.brokers if b.node_id == node)

    async def wait_in_sync(self, timeout: float = 120.0) -> None:
        """Until every partition of the installation has all its replicas in sync again."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                behind = [
                    p for p in await self._partitions() if set(p["isr"]) != set(p["replicas"])
                ]
            except KafkaError:
                behind = [{}]
            if not behind:
                return
            await asyncio.sleep(1)
        raise AssertionError(f"replicas not in sync {timeout:.0f} s after a broker restart")

    async def rolling_broker_restart(self) -> None:
        """Each broker in turn: SIGTERM (a controlled shutdown), start, wait until every
        replica is in sync, next: as an upgrade does."""
        for broker in self.private.brokers:
            at = time.time()
            await asyncio.to_thread(broker.stop)
            await asyncio.to_thread(
                lambda b=broker: b.wait_ready(b.start(), BROKER_RESTART_TIMEOUT)
            )
            await self.wait_in_sync()
            self.faults.append(
                FaultRecord(f"broker rolling restart (node {broker.node_id})", at, time.time())
            )

    def longest_delivery_gap(self) -> float:
        """The longest time between two consecutive first arrivals at the receiver."""
        firsts = sorted(times[0] for times in self.ledger.arrivals.values() if times)
        return max((b - a for a, b in itertools.pairwise(firsts)), default=0.0)

    async def postgres_down(self, kind: str, hold: float) -> None:
        """`fast`: pg_ctl stop -m fast; `kill`: SIGKILL every Postgres process; then start."""
        postgres = self.private.postgres
        at = time.time()
        await asyncio.to_thread(postgres.stop if kind == "fast" else postgres.kill)
        await asyncio.sleep(hold)
        await asyncio.to_thread(postgres.start)
        self.faults.append(FaultRecord(f"postgres {kind}", at, time.time()))

    # --- the account ---------------------------------------------------------------------------

    def _account(self, duration: float, not_ready: list[str]) -> Result:
        ledger = self.ledger
        missing, expected, duplicates = ledger.missing(), ledger.owed(), ledger.duplicates()
        recoveries = self._recoveries()
        to_delivery = max((r[1] for r in recoveries), default=None)
        to_heal = max((r[2] for r in recoveries), default=None)
        assert self.stack.run_dir is not None
        restarts = Counter(str(r["service"]) for r in supervisor.restarts(self.stack.run_dir))
        provoked = Counter(
            fault.kind.split()[-1] for fault in self.faults if fault.kind.startswith("SIG")
        )
        own_exits = {i: n - provoked[i] for i, n in restarts.items() if n > provoked[i]}
        return Result(
            scenario=self.name,
            profile=self.profile.name,
            faults=len(self.faults),
            events=len(ledger.sent_at),
            expected=expected,
            delivered=expected - len(missing),
            lost=len(missing),
            duplicates=duplicates,
            duplicate_rate=round(duplicates / expected, 5) if expected else 0.0,
            max_fault_to_delivery_s=to_delivery,
            max_heal_to_delivery_s=to_heal,
            longest_gap_s=round(self.longest_delivery_gap(), 1),
            restarts=dict(restarts),
            own_exits=own_exits,
            all_ready=not not_ready,
            not_ready=not_ready,
            bad_signatures=len(ledger.bad),
            unacknowledged_publishes=ledger.publish_errors,
            foreign_deliveries=ledger.foreign,
            duration_s=round(duration, 1),
            phases_s=self.phases,
            notes=self.notes + self._recovered_note(),
            recovery_s=recoveries,
        )

    def _recovered_note(self) -> list[str]:
        recovering = self.ledger.recovering
        if not recovering:
            return []
        arrivals = [len(self.ledger.arrivals_owed(d)) for d in recovering]
        return [
            f"recovered deliveries: {len(recovering)} owed, {sum(arrivals)} arrivals after recover"
        ]

    def _recoveries(self) -> list[tuple[str, float, float]]:
        """Per fault: the time from the fault, and from its end, to the first delivery of an
        event published after the fault struck (infinite when none came)."""
        firsts = sorted(
            (self.ledger.sent_at[event], min(self.ledger.arrivals[d]))
            for d, (_, event) in self.ledger.expected.items()
            if self.ledger.arrivals.get(d)
        )
        recoveries = []
        for fault in self.faults:
            first = min((arrived for sent, arrived in firsts if sent >= fault.at), default=None)
            if first is None:
                recoveries.append((fault.kind, float("inf"), float("inf")))
            else:
                healed = max(0.0, first - fault.healed_at)  # 0: it never stopped delivering
                recoveries.append((fault.kind, round(first - fault.at, 2), round(healed, 2)))
        return recoveries

    async def diagnosis(self, limit: int = 15) -> str:
        """Why it failed: lost ids with where they got stuck, bad requests, logs."""
        assert self.result is not None
        parts = [f"scenario {self.name}: {json.dumps(asdict(self.result))}"]
        if missing := self.ledger.missing():
            parts.append(await self._lost_report(missing, limit))
        if self.ledger.bad:
            parts.append(
                "requests that failed verification:\n  " + "\n  ".join(self.ledger.bad[:limit])
            )
        parts.append(f"faults: {[(f.kind, round(f.at, 2)) for f in self.faults]}")
        parts.append(self.log_tails())
        return "\n\n".join(parts)

    async def _lost_report(self, missing: list[str], limit: int) -> str:
        """Each lost delivery: webhook, event, when it was published, in its topic?, history."""
        lost = [(d, *self.ledger.where(d)) for d in missing]
        queued = await self._queued_ids({w for _, w, _ in lost})
        stored = await self._history(d for d, _, _ in lost[:limit])
        lines = [f"{len(lost)} lost deliveries (first {limit}):"]
        for delivery_id, webhook_id, event in lost[:limit]:
            sent = self.ledger.sent_at.get(event)
            when = f"published {utc_iso(sent)}" if sent else f"event {event} (recovered)"
            topic = "job in topic" if delivery_id in queued else "NO job in topic"
            lines.append(
                f"  {delivery_id} webhook {webhook_id} {when}: {topic}; "
                f"history {stored.get(delivery_id, 'none')}"
            )
        by_webhook = Counter(w for _, w, _ in lost)
        lines.append(f"lost per webhook: {dict(by_webhook)}")
        lost_at_matcher = sum(1 for d, _, _ in lost if d not in queued)
        lines.append(
            f"with no job in the delivery topic (lost before the dispatcher): {lost_at_matcher}"
        )
        return "\n".join(lines)

    async def _queued_ids(self, webhook_ids: set[str]) -> set[str]:
        """Delivery ids found in the webhooks' delivery topics (empty if the broker is gone)."""
        prefix = self.stack.env["HOOKSTREAM_TOPIC_PREFIX"]
        consumer = AIOKafkaConsumer(
            **client_options(self.private.bootstrap), enable_auto_commit=False
        )
        found: set[str] = set()
        try:
            await asyncio.wait_for(consumer.start(), 10)
            partitions = [TopicPartition(f"{prefix}.deliveries.{w}", 0) for w in webhook_ids]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            while [p for p in partitions if await consumer.position(p) < ends[p]]:
                batches = await consumer.getmany(timeout_ms=1000)
                for records in batches.values():
                    found.update(orjson.loads(r.value).get("deliveryId", "") for r in records)
        except Exception as exc:  # diagnostics must never hide the assertion
            self.notes.append(f"could not read delivery topics: {exc!r}")
        finally:
            await consumer.stop()
        return found

    async def _history(self, delivery_ids: Any) -> dict[str, str]:
        ids = [uuid.UUID(d) for d in delivery_ids]
        try:
            connection = await asyncpg.connect(self.stack.env["DATABASE_URL"], timeout=5)
            try:
                rows = await connection.fetch(
                    "SELECT id, status, status_message FROM deliveries WHERE id = ANY($1)", ids
                )
            finally:
                await connection.close()
        except Exception as exc:
            return {str(d): f"(unreadable: {exc!r})" for d in ids}
        return {str(r["id"]): f"{r['status']} {r['status_message']!r}" for r in rows}

    def log_tails(self, lines: int = 12) -> str:
        """The supervisor's restarts, and per instance its errors and the end of its log."""
        run_dir = self.stack.run_dir
        restarts = supervisor.restarts(run_dir) if run_dir else []
        parts = [
            "supervisor restarts: "
            + (
                ", ".join(f"{r['service']} {r['reason']} after {r['uptime']}s" for r in restarts)
                or "none"
            )
        ]
        for instance in self.stack.ports:
            path = self.stack.log_dir / f"{instance}.log"
            text = path.read_text(errors="replace").splitlines() if path.exists() else []
            errors = [line for line in text if _is_error(line)]
            parts.append(
                f"--- {instance}: {len(errors)} error lines, last ones ---\n"
                + "\n".join(line[:600] for line in errors[-8:])
            )
            parts.append(
                f"--- {instance}: last {lines} lines of {path} ---\n"
                + "\n".join(line[:400] for line in text[-lines:])
            )
        return "\n".join(parts)


def _is_error(line: str) -> bool:
    return '"level": "error"' in line or '"level": "critical"' in line or "Traceback" in line


async def retrying(
    call: Callable[[], Awaitable[httpx.Response]], attempts: int = 20
) -> httpx.Response:
    """An API call that may meet the API restarting: retry connection errors and 503s."""
    for _ in range(attempts - 1):
        try:
            response = await call()
            if response.status_code != 503:
                return response
        except httpx.TransportError:
            pass
        await asyncio.sleep(1.0)
    return await call()


# --- report ------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    memory = next(
        (
            line.split()[1]
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        "0",
    )
    uname = subprocess.run(["uname", "-a"], capture_output=True, text=True).stdout.strip()
    return {
        "uname": uname,
        "nproc": str(os.cpu_count()),
        "memory": f"{int(memory) // 1024} MiB",
    }


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return "never" if value == float("inf") else f"{value:.1f}"


def _cell(text: str) -> str:
    """Text that cannot break a markdown table row."""
    return " ".join(text.replace("|", "/").split())[:200]


def _restarts(result: dict[str, Any]) -> str:
    """Restarts per instance, with how many were the service's own exits."""
    own = result["own_exits"]
    return (
        ", ".join(
            f"{name} {count}" + (f" ({own[name]} own)" if own.get(name) else "")
            for name, count in sorted(result["restarts"].items())
        )
        or "0"
    )


def rows_left_out(path: Path, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of an earlier report (its JSON at `path`) for the scenarios `results` lack, each
    marked with the run that measured it, so a selection of scenarios updates only its rows."""
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    ran = {result["scenario"] for result in results}
    measured = {
        "date": earlier.get("date", "?"),
        "commit": earlier.get("commit", "?"),
        **({"load": earlier["load"]} if "load" in earlier else {}),
    }
    return [
        {"measured": measured, **row}
        for row in earlier.get("results", [])
        if row["scenario"] not in ran
    ]


def _scenario(result: dict[str, Any]) -> str:
    """The scenario's name, with the run that measured it when that was an earlier one."""
    earlier = result.get("measured")
    if earlier is None:
        return result["scenario"]
    load = earlier.get("load")
    busy = f", load {load['start']}-{load['end']}" if load else ""
    return f"{result['scenario']} (run of {earlier['date'][:10]}, commit {earlier['commit']}{busy})"


def results_table(results: list[dict[str, Any]]) -> str:
    """A markdown table, one row per scenario."""
    head = (
        "| scenario | faults | events | deliveries | lost | duplicates (rate) | "
        "fault → first new delivery, s | end of fault → delivery, s | longest gap, s | "
        "restarts | all ready |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n"
    )
    rows = [
        f"| {_scenario(r)} | error: {_cell(r['error'])} ||||||||||"
        if "error" in r
        else f"| {_scenario(r)} | {r['faults']} | {r['events']} | {r['expected']} | {r['lost']} | "
        f"{r['duplicates']} ({r['duplicate_rate'] * 100:.2f} %) | "
        f"{_seconds(r['max_fault_to_delivery_s'])} | {_seconds(r['max_heal_to_delivery_s'])} | "
        f"{_seconds(r.get('longest_gap_s'))} | "
        f"{_restarts(r)} | "
        f"{'yes' if r['all_ready'] else 'no: ' + ', '.join(r['not_ready'])} |"
        for r in results
    ]
    return head + "\n".join(rows) + "\n"


def write_report(path: Path, results: list[dict[str, Any]], run: dict[str, Any]) -> None:
    """The run's results as JSON next to `path`, and as a markdown page at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps({**run, "results": results}, indent=2))
    host = run["machine"]
    path.write_text(
        REPORT_TEMPLATE.format(
            date=run["date"],
            mode=run["profile"],
            seed=run["seed"],
            duration=run["duration_s"],
            commit=run["commit"],
            uname=host["uname"],
            nproc=host["nproc"],
            memory=host["memory"],
            load_start=run["load"]["start"],
            load_end=run["load"]["end"],
            busy=BUSY if max(run["load"].values()) > 2 * int(host["nproc"]) else "",
            table=results_table(results),
        )
    )


def run_info(
    profile_: Profile, seed_: int, started: float, commit: str, load_start: float
) -> dict[str, Any]:
    """What the report says about the run: `commit` and `load_start` (the 1-minute load
    average) are taken at its start, since the services are started again from the working
    tree all through it."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "profile": profile_.name,
        "settings": asdict(profile_),
        "seed": seed_,
        "duration_s": round(time.monotonic() - started),
        "machine": machine(),
        "load": {"start": round(load_start, 1), "end": round(os.getloadavg()[0], 1)},
        "commit": commit,
    }


def git_commit() -> str:
    result = subprocess.run(
        ["git", "-C", str(infra.REPO_ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def utc_iso(moment: float) -> str:
    """RFC 3339 in UTC, as the API takes it."""
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


BUSY = " The machine was shared: other work ran on it beside this run."
"""Said when the load average passed twice the CPUs: more than the suite's own processes."""

REPORT_TEMPLATE = """\
# Reliability: the fault suite

Hookstream promises at-least-once delivery through crashes and outages (DESIGN decisions 5
and 10). `tests/faults/` checks that promise from the outside: an independent HTTPS receiver
verifies every request's signatures (Qlik-Signature and Standard Webhooks) and records every
delivery id, while steady load runs to four webhooks on two tenants and the scenarios below
kill, stop and freeze the services, the broker and Postgres.

- `make chaos` runs the full profile and rewrites this page; `make test` runs the short
  profile (each scenario once, small counts) and writes `.hookstream/faults/latest.md`. A
  selection in the full profile (`HOOKSTREAM_CHAOS=full pytest -m faults tests/faults -k ...`)
  rewrites only its scenarios' rows; a row an earlier run measured names that run.
- The suite's broker (or cluster) and Postgres listen on a block of ports of the checkout's
  own, `HOOKSTREAM_FAULT_PORTS` (default `HOOKSTREAM_KAFKA_PORT` + 100; the cluster from + 10),
  below the ephemeral range, so no other process's connection takes a port while its server
  is down; a block already taken falls back to free ports.
- Every scenario runs on a fresh installation (database, topic prefix) whose four services
  run under the supervisor of `make run` (`hookstream_dev.supervisor`), which restarts any
  process that exits. The broker and Postgres are the suite's own (under
  `.hookstream/faults/`), never the shared local servers.
- A delivery is owed for every event whose publish the broker acknowledged, to every webhook
  of its tenant: its id is `delivery_id_for(webhook, event)`. **Lost** are owed deliveries that
  never arrived: after the load stops the suite waits while deliveries keep arriving (until
  none came for the settle time, 120 s in the full profile, at most 15 min); it must be 0.
  **Duplicates** are arrivals beyond the first of a delivery id.
- **Fault → first new delivery**: the longest time, over a scenario's faults, from the fault
  to the first delivery of an event published after it. A killed service comes back after the
  supervisor's backoff (0.5 s, doubling to 10 s for a service killed again within 30 s of its
  start, as Kubernetes does), so the full profile's runs of kills include up to 10 s of
  backoff per kill. **End of fault → delivery**: the same from the moment the fault ended:
  the harness thawed or restarted the broker or Postgres, or the supervisor started the killed
  service's successor (its backoff over); 0 when deliveries went on through the fault. This
  is how long the system itself takes to recover; the target is under 15 s. Each fault's
  pair of times is in reliability.json (`recovery_s`).
- **Longest gap**: the longest time between two consecutive first arrivals at the receiver
  over the whole scenario, faults included (the target on the cluster: 10 s).
- **Restarts**: processes the supervisor restarted; "own" counts exits the harness did not
  cause (a service that gave up by itself). **All ready**: every instance running and
  answering `/readyz` 200 at the end, with no step by hand.

Scenarios:

- **sigkill-api, -matcher, -dispatcher, -janitor**: SIGKILL the service at random instants
  (full: 20 times each; the next kill once its successor is ready).
- **rolling-sigterm**: SIGTERM each service in turn, as a deploy does; duplicates must stay
  under 0.1 %.
- **rebalance**: two matchers and two dispatchers; the second of each is SIGKILLed.
- **broker-sigkill**: SIGKILL the broker, start it again after a few seconds.
- **broker-sigstop**: SIGSTOP the broker for 30 s (short: 12 s), then SIGCONT.
- **postgres-fast, postgres-kill**: Postgres fast shutdown, or SIGKILL of all its processes;
  then start it again.
- **recover-during-dispatcher-kill**: a webhook's deliveries fail for good, its receiver heals,
  the dispatcher is SIGKILLed and `actions/recover` is called while it is down: every failed
  delivery must arrive.
- **cluster-leader-sigkill, cluster-rolling-restart, cluster-broker-sigstop,
  cluster-controller-sigstop** (`make chaos` only): a three-broker KRaft cluster, topics
  replicated 3 times with `min.insync.replicas` 2. SIGKILL the broker that leads the most
  partitions and start it again; SIGTERM each broker in turn, waiting until every replica is
  in sync, as an upgrade does; SIGSTOP for 30 s the broker that leads the most partitions, and
  the active controller (the worst freeze: the others must elect a controller before they can
  fence it). Besides nothing lost, no pause between deliveries may last over 10 s (longest
  gap). One alone, short profile: `HOOKSTREAM_CHAOS_CLUSTER=1 pytest
  tests/faults/test_cluster_faults.py -k leader`.

Where recovery time goes (from the services' logs of the runs below):

- A killed service: the supervisor's backoff, then the new process's start (the dispatcher
  imports for about 2.5 CPU-seconds, nearly all of it aiohttp, pydantic, aiokafka, asyncpg and
  cryptography; 0.3 CPU-s of it is `rich`, which structlog imports whenever it is installed:
  in the development environment only, not in the image), then 0.1-2 s to join the shard
  group, take its shards and deliver. At a load of 3 the dispatcher's successor logged its
  first line 3.4-5.7 s after it started and delivered 3.8-7.7 s after; with 20 processes
  waiting for 2 CPUs the start alone took 15-25 s. Killed again faster than it restarts, a
  service runs a fraction of the time and a backlog builds up; an event published after a
  later kill waits behind it (a webhook's first attempts keep their order), so a run of kills
  measures that backlog, and its first fault (`recovery_s` in the JSON) one restart.
- One broker of three killed: the cluster moves its leaderships once the active controller
  fences it, `broker.session.timeout.ms` after its last heartbeat (Kafka's default 9 s; the
  suite's cluster runs with 3 s, `infra.CLUSTER_FAILOVER`). A killed active controller is
  replaced first: the voters elect another after `controller.quorum.fetch.timeout.ms` (1 s
  here) and a random election timeout, 1.4-2.6 s in all, and the new controller starts the
  sessions afresh. A dead broker refuses connections, so clients ask the cluster again at
  once and delivered 1.2-2.5 s after the fencing. Over the six kills of the last two runs:
  4.3-5.2 s for a broker (2.7-3.1 s to its fencing), 5.8-8.0 s for the active controller
  (the run of 16:40 that day: 2.6 s election, 3.0 s session, 2.4 s clients); with Kafka's
  defaults the fencing alone came 8.8 s after the kill. The run below: at most 6.6 s over
  three kills.
- A rolling restart (SIGTERM): a broker hands its leaderships over before it stops
  (controlled shutdown), so deliveries paused only while they moved: 2-3 s at a load
  average of 3-8, 4.8 s in the run below (load average 10-18).
- A frozen broker: it answers nothing but its connections stay open, and the kernel still
  accepts new ones, so a request sent to it waits `KAFKA_REQUEST_TIMEOUT_MS` (3 s on the
  suite's cluster, `infra.CLUSTER_CLIENT_TIMEOUT_MS`; 5 s by default). aiokafka alone kept
  trying it: a client opens one connection at a time, each attempt at the frozen broker
  holding its other connections up as long, and looks a leader up again only after a request
  to the old one failed. A frozen broker of three then paused deliveries 5.7-9.1 s, and 9.0-16.5
  s when it was the active controller (the worst run: 3 s to elect another controller, 3 s to
  fence it, then the dispatcher's delivery consumer tried it three more times, 3 s each, before
  its metadata named the new leaders). Since 2026-12-06 the services' clients
  (`hookstream_common.kafka_failover`) take the first timeout as the broker's silence: no
  client of the process sends it anything until a probe gets an answer from it, each retry
  (every 0.1 s) asks the other brokers for the leaders, and no connection waits for an attempt
  at it. What is left is the cluster's: the requests in flight when it froze time out (3 s;
  meanwhile writes with `acks=all` and offset commits wait for its replica), it is fenced
  `broker.session.timeout.ms` (3 s) after its last heartbeat, after the election of another
  controller if it was the active one (1.1-1.3 s in the two runs traced: fenced 4.2-4.5 s
  after the freeze), and the clients delivered 1.0-1.4 s after the fencing. The longest pause
  was 4.1-6.8 s for the broker that leads the most (three runs: two short, the full one below)
  and 5.5-6.5 s for the active controller (three runs; 5.0-5.1 s in two runs of an earlier
  version of the change), with the load average at up to 18.
- Postgres: jobs and outcome writes wait for it with capped backoff (0.5 s doubling to 5 s), so
  deliveries resume up to 5 s after it is back, behind the jobs that queued meanwhile. Faults
  that follow each other within seconds overlap: a fault's time to its first new delivery then
  includes the next one.

A development machine may be shared with other work while the suite runs: the load average
under the results (and beside a row an earlier run measured) says how busy it was. Above the
number of CPUs, processes waited for one, and every time here includes that wait; the figures
that matter are lost = 0 and the recovery times.

## Results

{mode} profile, {date}, seed {seed} (replay with `HOOKSTREAM_CHAOS_SEED`), {duration} s,
commit {commit}.
Machine: `{uname}`, {nproc} CPUs, {memory}.
Load average (1 min): {load_start} at the start, {load_end} at the end.{busy}

{table}
"""
