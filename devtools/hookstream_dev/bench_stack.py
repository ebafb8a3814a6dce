"""One benchmark installation: its own database, topic prefix and service processes.

`BenchStack` starts the services (hookstream_dev.stack.ServiceSet) against a given Kafka and a
fresh database, creates webhooks through the API, reads the services' /metrics, publishes
events, and removes its database and topics when it stops, so a run never disturbs others.
"""

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from hookstream_common.kafka import client_options, producer
from hookstream_common.tokens import TENANT_ADMIN
from hookstream_dev import infra
from hookstream_dev.bench_sink import EVENT_TYPE, event_time, percentile
from hookstream_dev.events import sample_event
from hookstream_dev.receiver import ensure_tls
from hookstream_dev.stack import (
    MODULES,
    ServiceSet,
    delete_topics_under,
    free_port,
    service_environment,
    service_of,
)
from hookstream_dev.tokens import mint_token

SINK_HOST = "receiver.hookstream.test"  # a name the development certificate covers
SHARDS = 64
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_METRIC = re.compile(r"^([a-z_]+) ([0-9.e+-]+)$", re.MULTILINE)
_PROGRESS_EVERY = 5.0
"""Seconds between the progress lines of a long wait."""


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


async def wait_for(
    check: Callable[[], Awaitable[bool]],
    timeout: float,
    what: str,
    interval: float = 0.1,
    progress: Callable[[], str] | None = None,
) -> float:
    """Poll `check` every `interval` s until true; return the seconds it took, raise after
    `timeout`. A long wait shows it is moving: `progress()` is printed every 5 s, and told in
    the error."""
    started = shown = time.monotonic()
    while not await check():
        now = time.monotonic()
        if now - started > timeout:
            where = f" ({progress()})" if progress else ""
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}{where}")
        if progress and now - shown > _PROGRESS_EVERY:
            say(f"  {progress()}")
            shown = now
        await asyncio.sleep(interval)
    return time.monotonic() - started


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime (fields 14, 15)


def with_children(pid: int) -> list[int]:
    """A process and its children now, from /proc (a server and its workers)."""
    found = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


class CpuMeter:
    """CPU seconds some processes spent since the meter was made, from /proc. A process that
    ended keeps what was last read of it, so read the meter just before killing one."""

    def __init__(self, pids: list[int]) -> None:
        self._start = {pid: cpu_seconds(pid) for pid in pids}
        self._last = dict(self._start)

    def read(self) -> float:
        for pid in self._last:
            with contextlib.suppress(OSError, IndexError):
                self._last[pid] = cpu_seconds(pid)
        return sum(self._last[pid] - self._start[pid] for pid in self._start)


def rss_bytes(pid: int) -> int:
    """Resident memory of a process now, from /proc/<pid>/statm."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE


async def create_database(server_dsn: str) -> str:
    name = f"hookstream_bench_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(server_dsn)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    return f"{server_dsn.rpartition('/')[0]}/{name}"


async def drop_database(server_dsn: str, dsn: str) -> None:
    connection = await asyncpg.connect(server_dsn)
    await connection.execute(f'DROP DATABASE IF EXISTS "{dsn.rpartition("/")[2]}" WITH (FORCE)')
    await connection.close()


class RssSampler:
    """Peak resident memory of each service, over every instance it ran, twice a second."""

    def __init__(self) -> None:
        self.peaks: dict[str, int] = {}
        self._stacks: list[BenchStack] = []
        self._task: asyncio.Task[None] | None = None

    def watch(self, stack: "BenchStack") -> None:
        self._stacks.append(stack)
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    def sample(self) -> None:
        for stack in self._stacks:
            for instance, process in list(stack.services.processes.items()):
                with contextlib.suppress(OSError, ValueError):
                    service = service_of(instance)
                    rss = rss_bytes(process.pid)
                    self.peaks[service] = max(self.peaks.get(service, 0), rss)

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(0.5)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class BenchStack:
    """The four services on `kafka`, a fresh database and topic prefix, delivering to the sink."""

    def __init__(
        self, kafka: str, server_dsn: str, sink_port: int, extra_env: dict[str, str] | None = None
    ) -> None:
        self.kafka = kafka
        self.server_dsn = server_dsn
        self.sink_port = sink_port
        self.extra_env = extra_env or {}
        self.prefix = f"bench-{secrets.token_hex(3)}"
        self.jwt_key = ""
        self.database = ""
        self.services: ServiceSet
        self.client = httpx.AsyncClient(timeout=30)
        self._producer: Any = None
        self._tokens: dict[str, str] = {}

    # --- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self.database = await create_database(self.server_dsn)
        tls = ensure_tls()
        env = service_environment(
            self.kafka,
            self.database,
            prefix=self.prefix,
            ca_file=tls.ca,
            static_hosts={SINK_HOST: "127.0.0.1"},
            overrides={
                "HOOKSTREAM_LOG_LEVEL": "WARNING",
                # the API's per-tenant write rate would throttle the set-up and the churn
                "HOOKSTREAM_WRITE_RATE_PER_SECOND": "10000",
                "HOOKSTREAM_WRITE_BURST": "10000",
                **self.extra_env,
            },
        )
        self.jwt_key = env["HOOKSTREAM_JWT_KEY"]
        self.services = ServiceSet(
            env=env,
            ports={name: free_port() for name in [*MODULES, "dispatcher-2"]},
            log_dir=self.state_dir / "logs",
        )
        say(f"starting the four services (prefix {self.prefix})")
        for name in MODULES:
            self.services.start(name, wait=False)
        await asyncio.gather(
            *(asyncio.to_thread(self.services.wait_ready, name) for name in MODULES)
        )
        await self.wait_shards({"dispatcher": SHARDS})
        self._producer = producer(self.kafka, linger_ms=5)
        await self._producer.start()

    @property
    def state_dir(self) -> Path:
        return infra.STATE_DIR / "bench" / self.prefix

    async def stop(self) -> None:
        """Stop the services, then remove the database, the topics and the state directory."""
        if self._producer is not None:
            await self._producer.stop()
        if hasattr(self, "services"):
            await asyncio.to_thread(self.services.stop_all)
        await self.client.aclose()
        with contextlib.suppress(Exception):
            await delete_topics_under(self.kafka, self.prefix)
        if self.database:
            await drop_database(self.server_dsn, self.database)
        shutil.rmtree(self.state_dir / "matcher", ignore_errors=True)

    # --- dispatchers --------------------------------------------------------------------

    async def metrics(self, instance: str) -> dict[str, float]:
        """The unlabelled samples of an instance's /metrics."""
        response = await self.client.get(f"{self.services.ops_url(instance)}/metrics", timeout=5)
        return {name: float(value) for name, value in _METRIC.findall(response.text)}

    async def shards_owned(self, instance: str) -> int:
        try:
            return int((await self.metrics(instance))["hookstream_dispatcher_shards_owned"])
        except (httpx.HTTPError, KeyError):
            return -1

    async def wait_shards(self, wanted: dict[str, int], timeout: float = 60) -> float:
        """Wait until each dispatcher instance owns the given number of shards."""

        async def settled() -> bool:
            owned = [await self.shards_owned(name) for name in wanted]
            return owned == list(wanted.values())

        return await wait_for(settled, timeout, f"shard ownership {wanted}")

    async def restart_dispatchers(self, instances: list[str], env: dict[str, str]) -> None:
        """Stop every dispatcher, start `instances` with `env` added, wait for the shards."""
        for name in ("dispatcher", "dispatcher-2"):
            await asyncio.to_thread(self.services.stop, name)
        for name in instances:
            self.services.instance_env[name] = dict(env)
            self.services.start(name, wait=False)
        for name in instances:
            await asyncio.to_thread(self.services.wait_ready, name)

        async def spread() -> bool:
            owned = [await self.shards_owned(name) for name in instances]
            return min(owned) > 0 and sum(owned) == SHARDS

        await wait_for(spread, 60, f"{len(instances)} dispatchers to share the shards")

    def pid(self, instance: str) -> int:
        return self.services.processes[instance].pid

    def kill(self, instance: str) -> None:
        self.services.stop(instance, signal.SIGKILL)

    # --- webhooks -----------------------------------------------------------------------

    def auth(self, tenant: str) -> dict[str, str]:
        """The headers of a TenantAdmin of `tenant`."""
        if tenant not in self._tokens:
            token = mint_token(self.jwt_key, tenant, f"{tenant}-admin", [TENANT_ADMIN])
            self._tokens[tenant] = f"Bearer {token}"
        return {"Authorization": self._tokens[tenant]}

    def sink_url(self, path: str) -> str:
        return f"https://{SINK_HOST}:{self.sink_port}{path}"

    async def create_webhook(self, tenant: str, path: str, owner: str | None = None) -> str:
        """A webhook on EVENT_TYPE delivering to the sink at `path`; with `owner`, a user-level
        webhook that receives only that user's events."""
        body: dict[str, Any] = {
            "name": path,
            "url": self.sink_url(path),
            "eventTypes": [EVENT_TYPE],
            "secret": "b" * 40,
        }
        if owner:
            body |= {"level": "user", "ownerId": owner}
        url = f"{self.services.url('api')}/api/v1/webhooks"
        for attempt in range(5):
            try:
                response = await self.client.post(url, headers=self.auth(tenant), json=body)
                if response.status_code == 429:
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                    continue
                if response.status_code < 500:
                    response.raise_for_status()
                    return str(response.json()["id"])
            except httpx.TransportError:
                if attempt == 4:
                    raise
            await asyncio.sleep(0.5 * (attempt + 1))
        response.raise_for_status()
        raise AssertionError("unreachable")

    async def delete_webhook(self, tenant: str, webhook_id: str) -> None:
        url = f"{self.services.url('api')}/api/v1/webhooks/{webhook_id}"
        (await self.client.delete(url, headers=self.auth(tenant))).raise_for_status()

    async def routed(self, tenant: str, ids: set[str]) -> bool:
        response = await self.client.get(f"{self.services.url('matcher')}/routes/{tenant}")
        return response.status_code == 200 and ids <= {w["id"] for w in response.json()["webhooks"]}

    async def wait_routed(self, tenant: str, ids: set[str], timeout: float = 120) -> None:
        await wait_for(lambda: self.routed(tenant, ids), timeout, f"routes of {tenant}")

    async def wait_topics_served(self, webhook_ids: list[str], timeout: float) -> float:
        """Wait until the broker serves every one of these webhooks' delivery topics (each has
        a leader in the broker's own metadata); the seconds waited. The controller answers a
        topic's creation at once, but the broker applies creations at its own pace (on the
        2-core box about 50 partitions a second): right after 10,000 webhooks are created it
        is still behind, and a write to a topic it does not serve yet waits, then fails."""
        names = [f"{self.prefix}.deliveries.{webhook_id}" for webhook_id in webhook_ids]
        served = 0

        async def all_served() -> bool:
            nonlocal served
            described = await admin.describe_topics(names)
            served = sum(
                t["error_code"] == 0 and all(p["leader"] >= 0 for p in t["partitions"])
                for t in described
            )
            return served == len(names)

        admin = AIOKafkaAdminClient(**client_options(self.kafka))
        await admin.start()
        try:
            # Each poll describes every topic: once a second, not to load the broker waited for.
            return await wait_for(
                all_served,
                timeout,
                "the broker to serve every delivery topic",
                interval=1,
                progress=lambda: f"the broker serves {served:,} of {len(names):,} delivery topics",
            )
        finally:
            await admin.close()

    # --- events -------------------------------------------------------------------------

    async def publish(
        self, count: int, rate: float | None, target: Callable[[int], tuple[str, str]]
    ) -> None:
        """`count` events, event i for the (tenant, user) `target(i)`; `rate` events/s if given.

        Each event's `eventTime` is stamped when it is due, so the sink's latency includes any
        delay in this publisher and the broker.
        """
        started = time.perf_counter()
        pending = []
        topic = f"{self.prefix}.events"
        for index in range(count):
            if rate and (wait := started + index / rate - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            tenant, user = target(index)
            event = orjson.dumps(sample_event(EVENT_TYPE, tenant, user))
            pending.append(await self._producer.send(topic, event, key=tenant.encode()))
        await asyncio.gather(*pending)


class StageProbe:
    """Splits latency into stages: reads the delivery topics (no group, from their ends) and
    notes, for every job, the time from its event's `eventTime` to the job's broker timestamp
    (set when the matcher produced it). The rest of a delivery's latency is the dispatcher's."""

    def __init__(self, kafka: str, prefix: str) -> None:
        self._consumer = AIOKafkaConsumer(
            **client_options(kafka),
            group_id=None,
            auto_offset_reset="latest",
            metadata_max_age_ms=2000,
            fetch_max_wait_ms=100,
        )
        self._consumer.subscribe(pattern=rf"^{re.escape(prefix)}\.deliveries\..+$")
        self.latencies_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            fetched = await self._consumer.getmany(timeout_ms=500, max_records=5000)
            for records in fetched.values():
                for record in records:
                    if record.value and (sent := event_time(record.value)) is not None:
                        self.latencies_ms.append(record.timestamp - sent * 1000)

    def reset(self) -> None:
        self.latencies_ms = []

    def summary(self) -> str:
        """`event→job p50/p99` of what was read since the last reset."""
        lat = self.latencies_ms
        return f"{percentile(lat, 0.5):.0f} / {percentile(lat, 0.99):.0f} ms"

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()
