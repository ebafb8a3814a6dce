"""Riding out outages: retry with capped backoff, and readiness that tracks the dependencies.

Decision 10: an outage of Kafka or Postgres never ends a service. Start-up waits for them with
`keep_trying`; while running, `Readiness` probes them in the background so `/readyz` answers 503
(without exception text) while one is unreachable, and 200 again once it is back.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import structlog
from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest

log = structlog.get_logger(__name__)

T = TypeVar("T")
Check = Callable[[], Awaitable[object]]

TRANSIENT = (
    OSError,
    TimeoutError,
    KafkaError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)
"""Errors an outage causes (refused, closed, shutting down, timed out, a connection left in a
broken state); anything else is a bug, bad data or a configuration error."""
PROBE_TIMEOUT = 3.0
PROBE_INTERVAL = 2.0


class Backoff:
    """Capped exponential delays: 0.5 s, 1 s, 2 s ... `cap` (5 s: an outage that ends is
    noticed within seconds, while a long one costs a retry every 5 s); `reset()` after success."""

    def __init__(self, initial: float = 0.5, cap: float = 5.0) -> None:
        self._initial = initial
        self._cap = cap
        self.delay = initial

    def reset(self) -> None:
        """Start again from the initial delay."""
        self.delay = self._initial

    async def wait(self) -> None:
        """Sleep the current delay, then double it up to the cap."""
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, self._cap)


async def keep_trying(action: Callable[[], Awaitable[T]], what: str, cap: float = 5.0) -> T:
    """Run `action` until it succeeds, logging each failure with what to check."""
    backoff = Backoff(cap=cap)
    while True:
        try:
            return await action()
        except TRANSIENT as exc:
            log.warning(
                "dependency unavailable; retrying",
                waiting_for=what,
                error_class=type(exc).__name__,
                error=str(exc),
                retry_in=backoff.delay,
            )
            await backoff.wait()


def postgres_check(dsn: str) -> Check:
    """Postgres accepts a connection and answers a query (a connection of its own, so the
    probe works before the service's pool exists and never waits behind its queries)."""

    async def check() -> object:
        conn = await asyncpg.connect(dsn, timeout=PROBE_TIMEOUT)
        try:
            return await conn.fetchval("SELECT 1", timeout=PROBE_TIMEOUT)
        finally:
            await conn.close(timeout=PROBE_TIMEOUT)

    return check


def kafka_check(bootstrap: str) -> Check:
    """A broker answers a request (an accepted TCP connection alone proves nothing: a frozen
    broker still completes handshakes). The request asks for the brokers and no topic, so it
    costs the same with ten topics or ten thousand."""
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(PROBE_TIMEOUT * 1000)
    )
    started = False

    async def check() -> object:
        nonlocal started
        if not started:
            await client.bootstrap()
            started = True
        node = client.get_random_node()
        if node is None:
            raise KafkaError("no broker is known")
        return await client.send(node, MetadataRequest(topics=[]))

    return check


class Readiness:
    """The service's own readiness (`is_started`) and its dependencies', probed in a loop."""

    def __init__(self, checks: dict[str, Check], is_started: Callable[[], bool]) -> None:
        self._checks = checks
        self._is_started = is_started
        self.dependencies: dict[str, bool] = dict.fromkeys(checks, False)
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """Started, and every dependency answered its last probe."""
        return self._is_started() and all(self.dependencies.values())

    def report(self) -> dict[str, object]:
        """The body of `/readyz`: what is up and what is not, never an error text."""
        return {
            "status": "ready" if self.ready else "unavailable",
            "started": self._is_started(),
            "dependencies": {
                name: "up" if up else "down" for name, up in self.dependencies.items()
            },
        }

    def start(self) -> None:
        """Probe in the background until `stop()`."""
        self._task = asyncio.create_task(self._probe_forever(), name="readiness")

    async def stop(self) -> None:
        """Stop probing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def probe(self) -> None:
        """Run every check once, each within the probe timeout."""
        for name, check in self._checks.items():
            try:
                await asyncio.wait_for(check(), PROBE_TIMEOUT)
                up = True
            except Exception:
                up = False
            if up != self.dependencies[name]:
                log.info("dependency state changed", dependency=name, up=up)
            self.dependencies[name] = up

    async def _probe_forever(self) -> None:
        while True:
            await self.probe()
            await asyncio.sleep(PROBE_INTERVAL)
