"""Riding out outages: retry with capped backoff, and readiness that tracks the dependencies.

Decision 10: an outage of Kafka or Postgres never ends a service. Start-up waits for them with
`keep_trying`; while running, `Readiness` probes them in the background so `/readyz` answers 503
(without exception text) while one is unreachable, and 200 again once it is back.
"""

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import asyncpg
import structlog
from aiokafka.conn import AIOKafkaConnection, collect_hosts, create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    ClusterAuthorizationFailedError,
    IllegalSaslStateError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

from hookstream_common.kafka import client_options
from hookstream_common.settings import KafkaSecurity

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


async def keep_trying(
    action: Callable[[], Awaitable[T]],
    what: str,
    backoff: Backoff | None = None,
    limit: float | None = None,
) -> T:
    """Run `action` until it succeeds, logging each failure with what to check.

    A service waits as long as it takes (decision 10); a library in someone else's process
    gives a `limit` in seconds: no try runs past it or would start after it, and the last error
    is raised with a note saying what was unavailable and what to check.
    """
    backoff = backoff or Backoff()
    loop = asyncio.get_running_loop()
    deadline = None if limit is None else loop.time() + limit
    while True:
        try:
            async with asyncio.timeout_at(deadline):
                return await action()
        except TRANSIENT as exc:
            if deadline is not None and loop.time() + backoff.delay >= deadline:
                exc.add_note(
                    f"{what} still unavailable after {limit:g} s: {FIXES[failure_reason(exc)]}"
                )
                raise
            log.warning(
                "dependency unavailable; retrying",
                waiting_for=what,
                error_class=type(exc).__name__,
                error=str(exc),
                retry_in=backoff.delay,
            )
            await backoff.wait()


def postgres_check(dsn: str) -> Check:
    """Postgres answers a query, on a connection of the probe's own (so the probe works before
    the service's pool exists and never waits behind its queries).

    The connection is kept from one probe to the next: opening one every probe (a TLS context
    included) cost each service about 1 % of a core. A kept connection that fails is replaced
    in the same probe, so a restarted Postgres is seen as up as soon as it accepts connections.
    """
    kept: list[asyncpg.Connection] = []

    async def check() -> object:
        if kept:
            try:
                return await kept[0].fetchval("SELECT 1", timeout=PROBE_TIMEOUT)
            except Exception:  # whatever broke it, a new connection tells what holds now
                kept.pop().terminate()
        kept.append(await asyncpg.connect(dsn, timeout=PROBE_TIMEOUT))
        return await kept[0].fetchval("SELECT 1", timeout=PROBE_TIMEOUT)

    return check


_CONNECTION_OPTIONS = (
    "ssl_context",
    "security_protocol",
    "sasl_mechanism",
    "sasl_plain_username",
    "sasl_plain_password",
    "sasl_oauth_token_provider",
)


def kafka_check(bootstrap: str, security: KafkaSecurity | None = None) -> Check:
    """A broker answers a request (an accepted TCP connection alone proves nothing: a frozen
    broker still completes handshakes). The request asks for the brokers and no topic, so it
    costs the same with ten topics or ten thousand.

    The probe holds one connection of its own, made as every client makes it (TLS, SASL), so
    that a refused handshake reaches `Readiness` as itself and not as aiokafka's "unable to
    bootstrap". A failed probe drops it and tries the next bootstrap broker the next time: one
    frozen broker of three does not keep the service unready.
    """
    options = client_options(bootstrap, security)
    connect = {key: options[key] for key in _CONNECTION_OPTIONS if key in options}
    hosts = [(host, port) for host, port, _ in collect_hosts(bootstrap)]
    turn = 0
    conn: AIOKafkaConnection | None = None

    async def check() -> object:
        nonlocal conn, turn
        try:
            if conn is None or not conn.connected():
                host, port = hosts[turn % len(hosts)]
                conn = await create_conn(
                    host, port, request_timeout_ms=int(PROBE_TIMEOUT * 1000), **connect
                )
            return await conn.send(MetadataRequest(topics=[]))
        except BaseException:
            if conn is not None:
                conn.close()
            conn, turn = None, turn + 1
            raise

    return check


AUTH_ERRORS = (
    AuthenticationFailedError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
    IllegalSaslStateError,
    ClusterAuthorizationFailedError,
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidAuthorizationSpecificationError,
)

CLIENT_CERTIFICATE_REFUSED = {
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED",
    "SSLV3_ALERT_CERTIFICATE_REVOKED",
    "TLSV1_ALERT_UNKNOWN_CA",
    "TLSV1_ALERT_ACCESS_DENIED",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
}
"""TLS alerts a server sends about the client's certificate: with mTLS that certificate is the
credential, so these are `auth`, not `tls` (which is the client distrusting the server)."""

FIXES = {
    "auth": "the server refused the credentials: check the user, password or token and the "
    "mechanism (KAFKA_SASL_*, the user in DATABASE_URL), or that the server's CA signed the "
    "client certificate (KAFKA_SSL_CERTFILE, KAFKA_SSL_KEYFILE)",
    "tls": "the server's certificate is not trusted: check that the CA file signed it "
    "(KAFKA_SSL_CAFILE, sslrootcert in DATABASE_URL) and that it names the host connected to",
    "unreachable": "no answer: check the address, the network and that the server runs",
}
"""What to check for each reason a dependency is down, for the log (never the error text,
which could carry a connection string)."""


def failure_reason(error: BaseException) -> str:
    """Why a probe failed, in one word: `auth`, `tls` or `unreachable` (`/readyz`).

    Walks the chain of causes: aiokafka wraps a refused handshake in a connection error.
    """
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, AUTH_ERRORS):
            return "auth"
        if getattr(seen, "reason", None) in CLIENT_CERTIFICATE_REFUSED:
            return "auth"
        if isinstance(seen, ssl.SSLError | ssl.CertificateError):
            return "tls"
        seen = seen.__cause__ or seen.__context__
    return "unreachable"


def _safe(error: BaseException) -> str:
    """The part of one error that carries no secret, or ''."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return str(error.verify_message or error.reason or "")
    if isinstance(error, ssl.SSLError):
        return str(error.reason or "")
    if isinstance(error, OSError):
        return ", ".join(str(part) for part in (error.errno, error.strerror) if part)
    if isinstance(error, asyncpg.PostgresError):
        return f"SQLSTATE {error.sqlstate}"
    return ""


def error_summary(error: BaseException) -> str:
    """What an error was, without its text (which could carry a connection string or a
    password): each class along the chain of causes, with the parts that are safe to log, an
    OS error's errno and message, a TLS error's reason and a Postgres error's SQLSTATE."""
    parts: list[str] = []
    seen: BaseException | None = error
    while seen is not None and len(parts) < 5:
        parts.append(type(seen).__name__ + (f" ({detail})" if (detail := _safe(seen)) else ""))
        seen = seen.__cause__ or seen.__context__
    return " <- ".join(parts)


class Turns:
    """The turns of a worker's main loop: each within a time limit, cut to a grace once the
    worker is told to stop, and watched.

    A turn that outlasts its limit raises `TimeoutError`, so a hang inside it (an answer that
    never comes, no error logged) costs one retried turn, and SIGTERM ends even a stuck turn
    within the grace. A loop that has not turned for twice the limit (which covers a turn cut
    short plus its backoff) is stuck by some other way: `/healthz` and `/readyz` fail, so the
    orchestrator restarts it.
    """

    def __init__(
        self, limit: float, grace: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self._grace = grace
        self._clock = clock
        self._stopping = False
        self._last: float | None = None
        """When the current or last turn began; None before the first and after the last."""
        self._current: asyncio.Timeout | None = None

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """One turn of the loop; `TimeoutError` once it outlasts the limit (or the grace)."""
        self._last = self._clock()
        async with asyncio.timeout(self._grace if self._stopping else self.limit) as timeout:
            self._current = timeout
            try:
                yield
            finally:
                self._current = None

    def stop(self) -> None:
        """The worker is told to stop: the turn in hand, and any after it, get the grace."""
        self._stopping = True
        if self._current is not None:
            deadline = asyncio.get_running_loop().time() + self._grace
            when = self._current.when()
            if when is None or deadline < when:
                self._current.reschedule(deadline)

    def finished(self) -> None:
        """The loop ended: nothing to watch any more."""
        self._last = None

    def stuck_for(self) -> float | None:
        """Seconds since the loop last turned, once that is over twice the limit; None while
        it turns, before its first turn and after its last."""
        if self._last is None:
            return None
        still = self._clock() - self._last
        return still if still > 2 * self.limit else None


class Readiness:
    """The service's own readiness (`is_started`) and its dependencies', probed in a loop; with
    `turns`, also that its main loop turns."""

    def __init__(
        self,
        checks: dict[str, Check],
        is_started: Callable[[], bool],
        turns: Turns | None = None,
    ) -> None:
        self._checks = checks
        self._is_started = is_started
        self.turns = turns
        self.dependencies: dict[str, bool] = dict.fromkeys(checks, False)
        self.reasons: dict[str, str] = {}
        """Why each dependency that is down is down (`failure_reason`); not yet probed: absent."""
        self._task: asyncio.Task[None] | None = None

    @property
    def stuck(self) -> bool:
        """The main loop has stopped turning (`Turns.stuck_for`)."""
        return self.turns is not None and self.turns.stuck_for() is not None

    @property
    def ready(self) -> bool:
        """Started, every dependency answered its last probe, and the main loop turns."""
        return self._is_started() and all(self.dependencies.values()) and not self.stuck

    def report(self) -> dict[str, object]:
        """The body of `/readyz`: what is up and what is not and why in one word (`reasons`),
        never an error text."""
        report: dict[str, object] = {
            "status": "ready" if self.ready else "unavailable",
            "started": self._is_started(),
            "dependencies": {
                name: "up" if up else "down" for name, up in self.dependencies.items()
            },
            "reasons": dict(self.reasons),
        }
        if self.turns is not None:
            report["loop"] = "stuck" if self.stuck else "turning"
        return report

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
            except Exception as exc:
                self._down(name, failure_reason(exc), exc)
                continue
            if not self.dependencies[name]:
                log.info("dependency state changed", dependency=name, up=True)
            self.dependencies[name] = True
            self.reasons.pop(name, None)

    def _down(self, name: str, reason: str, error: Exception) -> None:
        """Record a failed probe; log when the state or its reason changes, with what to fix
        and what the error was (`error_summary`, never its text)."""
        if self.dependencies[name] or self.reasons.get(name) != reason:
            log.warning(
                "dependency state changed",
                dependency=name,
                up=False,
                reason=reason,
                fix=FIXES[reason],
                error_class=type(error).__name__,
                error=error_summary(error),
            )
        self.dependencies[name] = False
        self.reasons[name] = reason

    async def _probe_forever(self) -> None:
        while True:
            await self.probe()
            await asyncio.sleep(PROBE_INTERVAL)
