"""`make bench`: every scenario of the pipeline on real Kafka and Postgres, each beside a bare
client's ceiling measured against the same receiver in the same run.

    python -m hookstream_dev.bench                  # full sizes; writes docs/benchmarks.md
    python -m hookstream_dev.bench --quick          # small sizes, a smoke run (~2 min)
    python -m hookstream_dev.bench --only a,c,d     # some scenarios
    python -m hookstream_dev.bench --many-webhooks 2000   # the size of scenario (f)
    python -m hookstream_dev.bench --only h --list-deliveries 200000   # the size of (h)

(`HOOKSTREAM_BENCH=quick` in the environment is the same as `--quick`.)

Scenarios (issue 10):
  a  4 webhooks, unthrottled              b  50 webhooks, unthrottled
  c  1,000 deliveries/s over 4 and over 50 webhooks, 100/s to one: p50/p95/p99 event -> receiver
  d  one webhook whose receiver answers in 50 ms, HOOKSTREAM_WEBHOOK_CONCURRENCY = 1, 8, 64
  e  5 creates and 5 deletes per second during 1,000 deliveries/s: duplicates, p99
  f  N existing webhooks (default 10,000), 200 events/s to random ones: a new webhook's first
     delivery, p99, the dispatcher's idle CPU and RSS (on a private broker: N topics)
  g  two dispatchers, one SIGKILLed under load: time until its shards move, deliveries lost
  h  GET /api/v1/webhooks at 50 concurrent clients for a tenant with 1,000,000 deliveries in
     the last 24 h, beside a tenant with the same webhooks and no deliveries (issue 21)
  i  (a) again with tracing off, and on at 10 % and 100 % of traces, into a local Jaeger
     (`make test-tools` builds it): the cost of tracing (issue 23)

Every scenario also reports its efficiency (issue 21): deliveries per CPU-second of the
dispatcher, beside the bare client's POSTs per CPU-second of its own process in the same run
(both read from /proc), a figure that does not depend on what else runs on the box; for (h),
requests per CPU-second of the API, beside the empty tenant's.

The sink (hookstream_dev.bench_sink) runs in its own process; every scenario's services start
here on a fresh database and topic prefix, removed afterwards. Results print as one table, are
saved as JSON under .hookstream/bench/, and a full run replaces the table in
docs/benchmarks.md.
"""

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from hookstream_dev import bench_list, infra
from hookstream_dev.bench_sink import bare_paced, bare_throughput
from hookstream_dev.bench_stack import (
    SHARDS,
    BenchStack,
    CpuMeter,
    RssSampler,
    StageProbe,
    cpu_seconds,
    rss_bytes,
    say,
    wait_for,
    with_children,
)
from hookstream_dev.jaeger import JAEGER, running_jaeger
from hookstream_dev.receiver import ensure_tls
from hookstream_dev.stack import free_port

DOC = infra.REPO_ROOT / "docs" / "benchmarks.md"
PARTIAL = infra.STATE_DIR / "bench" / "partial.json"
DOC_BEGIN = "<!-- make bench: begin -->"
DOC_END = "<!-- make bench: end -->"
SLOW_MS = 50
ALL = "abcdefghi"


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is; `QUICK` is a smoke run of the same code."""

    ceiling_requests: int = 20_000
    throughput_deliveries: int = 30_000  # (a), (b)
    rate: int = 1_000  # deliveries/s in (c), (e), (g)
    quiet_rate: int = 100  # deliveries/s in (c) to one webhook
    latency_seconds: float = 20  # (c)
    slow_seconds: float = 8  # (d), per concurrency
    concurrencies: tuple[int, ...] = (1, 8, 64)
    churn_seconds: float = 20  # (e)
    many_webhooks: int = 10_000  # (f)
    many_rate: int = 200
    many_seconds: float = 30
    probes: int = 5  # (f): new webhooks timed to their first delivery
    idle_seconds: float = 10
    failover_seconds: float = 24  # (g); the kill comes after a third of it
    private_kafka_above: int = 1_000  # (f) on its own broker beyond this many webhooks
    list_deliveries: int = 1_000_000  # (h), in the last 24 h
    list_webhooks: int = 10  # (h), in each of the two tenants: one page
    list_clients: int = 50
    list_seconds: float = 20


FULL = Sizes()
QUICK = Sizes(
    ceiling_requests=3_000,
    throughput_deliveries=3_000,
    latency_seconds=3,
    slow_seconds=2,
    churn_seconds=4,
    many_webhooks=200,
    many_seconds=5,
    probes=2,
    idle_seconds=3,
    failover_seconds=12,
    list_deliveries=20_000,
    list_seconds=4,
)


@dataclass
class Row:
    """One line of the table."""

    scenario: str
    pipeline: str
    bare: str
    ratio: str
    target: str
    met: bool | None
    data: dict[str, Any] = field(default_factory=dict)
    efficiency: str = "-"


@dataclass
class Bench:
    sizes: Sizes
    sink_port: int
    kafka: str
    server_dsn: str
    rows: list[Row] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    sampler: RssSampler = field(default_factory=RssSampler)
    http: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(timeout=30, verify=ensure_tls().client_context())
    )
    ceiling: float = 0.0
    bare_per_cpu: float = 0.0
    """The bare client's POSTs per CPU-second of its process, in the ceiling's run."""
    probe: StageProbe | None = None

    def stages(self) -> str:
        """What the stage probe saw since its reset, for a row's text."""
        return f"; event→job (matcher) p50/p99 {self.probe.summary()}" if self.probe else ""

    # --- the sink -----------------------------------------------------------------------

    def sink(self, path: str) -> str:
        return f"https://localhost:{self.sink_port}{path}"

    async def reset(self) -> None:
        await self.http.post(self.sink("/reset"))

    async def stats(self, firsts: str = "", timeline: float = 0) -> dict[str, Any]:
        """The sink's counts since its reset; `firsts`: first arrivals of paths under it;
        `timeline`: latencies in slots of that many seconds of the events' time."""
        params: dict[str, Any] = {"firsts": firsts} if firsts else {}
        if timeline:
            params["timeline"] = timeline
        response = await self.http.get(self.sink("/stats"), params=params)
        return dict(response.json())

    async def drain(self, expected: int, timeout: float, distinct: bool = False) -> dict[str, Any]:
        """Wait until the sink has `expected` deliveries (distinct ids), or quiet after timeout."""
        deadline = time.monotonic() + timeout
        shown = time.monotonic()
        key = "distinct" if distinct else "count"
        while True:
            stats = await self.stats()
            if stats[key] >= expected or time.monotonic() > deadline:
                return stats
            if time.monotonic() - shown > 5:
                say(f"  {stats[key]} of {expected} delivered")
                shown = time.monotonic()
            await asyncio.sleep(0.2)

    # --- the ceiling ----------------------------------------------------------------------

    async def measure_ceiling(self) -> None:
        count = self.sizes.ceiling_requests
        say(f"ceiling: bare aiohttp client, {count} POSTs, 64 at a time")
        meter = CpuMeter([os.getpid()])
        self.ceiling = await bare_throughput(self.sink("/ceiling"), count, 64)
        self.bare_per_cpu = count / max(meter.read(), 0.01)
        self.results["ceiling_rps"] = round(self.ceiling)
        self.results["bare_per_cpu_s"] = round(self.bare_per_cpu)

    async def bare_latency(self, rate: float, seconds: float) -> dict[str, Any]:
        """The sink's latency for a bare client POSTing at `rate`/s."""
        await self.reset()
        await bare_paced(self.sink("/bare"), rate, seconds)
        return await self.stats()

    # --- helpers --------------------------------------------------------------------------

    def ratio(self, value: float) -> str:
        return f"{value / self.ceiling:.2f}" if self.ceiling else "-"

    def efficiency(self, deliveries: int, meter: CpuMeter) -> tuple[str, float]:
        """Deliveries per CPU-second of the dispatchers `meter` reads, beside the bare
        client's POSTs per CPU-second: the text of the row's cell, and the figure."""
        per_cpu = deliveries / max(meter.read(), 0.01)
        if not self.bare_per_cpu:
            return f"{per_cpu:,.0f}/CPU-s", per_cpu
        share = per_cpu / self.bare_per_cpu
        return f"{per_cpu:,.0f}/CPU-s, {share:.2f} x bare ({self.bare_per_cpu:,.0f})", per_cpu

    def add(self, row: Row) -> None:
        """Record a row; the rows so far are saved at once, so an interrupted run keeps them."""
        self.rows.append(row)
        say(f"  => {row.scenario}: {row.pipeline} | bare {row.bare} | {row.ratio}")
        partial = {**self.results, "rows": [asdict(r) for r in self.rows]}
        PARTIAL.parent.mkdir(parents=True, exist_ok=True)
        PARTIAL.write_text(json.dumps(partial, indent=2, default=str) + "\n")


def _rate(stats: dict[str, Any]) -> float:
    """Deliveries/s at the sink, between its first and last arrival."""
    span = stats["last"] - stats["first"]
    return (stats["count"] - 1) / span if span > 0 and stats["count"] > 1 else 0.0


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if math.isfinite(value) else "none in 30 s"


def _pcts(stats: dict[str, Any]) -> str:
    return f"{stats['p50_ms']:.0f} / {stats['p95_ms']:.0f} / {stats['p99_ms']:.0f} ms"


# --- scenarios on the shared broker ------------------------------------------------------------


async def throughput(
    bench: Bench, stack: BenchStack, name: str, tenant: str, hooks: int, variant: str = ""
) -> None:
    """(a), (b): `hooks` webhooks of one tenant, events published at once; (i) with tracing
    (`variant` names what differs)."""
    events = max(1, bench.sizes.throughput_deliveries // hooks)
    total = events * hooks
    say(f"({name}) throughput: {events} events x {hooks} webhooks = {total} deliveries")
    await bench.reset()
    pids = {n: p.pid for n, p in stack.services.processes.items()}
    cpu_before = {n: cpu_seconds(pid) for n, pid in pids.items()}
    meter = CpuMeter([stack.pid("dispatcher")])
    await stack.publish(events, None, lambda _: (tenant, "bench-user"))
    stats = await bench.drain(total, 120 + total / 200)
    efficiency, per_cpu = bench.efficiency(stats["count"], meter)
    cpu = {n: round(cpu_seconds(pid) - cpu_before[n], 1) for n, pid in pids.items()}
    rate = _rate(stats)
    bench.add(
        Row(
            f"({name}) {hooks} webhooks, unthrottled{variant}",
            f"{rate:,.0f} deliveries/s ({stats['count']:,} of {total:,})",
            f"{bench.ceiling:,.0f} POST/s",
            bench.ratio(rate),
            "≥ 0.60 x bare",
            stats["count"] >= total and rate >= 0.6 * bench.ceiling,
            {
                "rate": rate,
                "deliveries": stats["count"],
                "expected": total,
                "cpu_s": cpu,
                "per_cpu_s": per_cpu,
            },
            efficiency,
        )
    )


async def latency(
    bench: Bench, stack: BenchStack, tenant: str, hooks: int, quiet: bool = False
) -> dict[str, Any]:
    """(c): `rate` deliveries/s spread over `hooks` webhooks of one tenant; `quiet`: the
    `quiet_rate` to one webhook, where only the p50 has a target (a few ms over the receiver)."""
    rate = bench.sizes.quiet_rate if quiet else bench.sizes.rate
    seconds = bench.sizes.latency_seconds
    events_rate = rate / hooks
    count = int(events_rate * seconds)
    say(f"(c) latency: {rate}/s over {hooks} webhooks for {seconds:.0f} s")
    await bench.reset()
    if bench.probe:
        bench.probe.reset()
    meter = CpuMeter([stack.pid("dispatcher")])
    await stack.publish(count, events_rate, lambda _: (tenant, "bench-user"))
    stats = await bench.drain(count * hooks, 60)
    efficiency, per_cpu = bench.efficiency(stats["count"], meter)
    stages = bench.stages()
    bare = await bench.bare_latency(rate, seconds)
    bench.add(
        Row(
            f"(c) {rate:,}/s over {hooks} webhooks",
            f"p50/p95/p99 {_pcts(stats)} ({stats['count']:,} of {count * hooks:,}){stages}",
            f"{rate:,}/s paced: {_pcts(bare)}",
            f"p99 {stats['p99_ms'] / max(bare['p99_ms'], 0.1):.0f}x",
            "p50 < 15 ms" if quiet else "p99 < 100 ms",
            stats["count"] >= count * hooks
            and (stats["p50_ms"] < 15 if quiet else stats["p99_ms"] < 100),
            {"stats": stats, "bare": bare, "per_cpu_s": per_cpu},
            efficiency,
        )
    )
    return stats


async def churn(bench: Bench, stack: BenchStack, tenant: str, hooks: int, p99_c: float) -> None:
    """(e): 5 creates and 5 deletes per second (another tenant) during `rate` deliveries/s."""
    rate, seconds = bench.sizes.rate, bench.sizes.churn_seconds
    events_rate = rate / hooks
    count = int(events_rate * seconds)
    say(f"(e) churn: 5 creates + 5 deletes/s during {rate}/s over {hooks} webhooks")
    alive = [await stack.create_webhook("churn", f"/churn/{i}") for i in range(10)]
    created = deleted = 0

    async def churning() -> None:
        nonlocal created, deleted
        started = time.monotonic()
        tick = 0
        while True:
            tick += 1
            doomed, alive[:5] = alive[:5], []
            paths = [f"/churn/{10 + created + i}" for i in range(5)]
            made = await asyncio.gather(
                *(stack.create_webhook("churn", path) for path in paths),
                *(stack.delete_webhook("churn", webhook_id) for webhook_id in doomed),
            )
            alive.extend(str(webhook_id) for webhook_id in made[:5])
            created += 5
            deleted += len(doomed)
            if (wait := started + tick - time.monotonic()) > 0:
                await asyncio.sleep(wait)

    await bench.reset()
    meter = CpuMeter([stack.pid("dispatcher")])
    task = asyncio.create_task(churning())
    try:
        await stack.publish(count, events_rate, lambda _: (tenant, "bench-user"))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    expected = count * hooks
    stats = await bench.drain(expected, 60)
    await asyncio.sleep(2)  # late duplicates
    stats = await bench.stats()
    efficiency, per_cpu = bench.efficiency(stats["count"], meter)
    duplicates = stats["count"] - stats["distinct"]
    share = duplicates / max(stats["distinct"], 1)
    bench.add(
        Row(
            f"(e) churn during {rate:,}/s ({hooks} webhooks)",
            f"{created} created, {deleted} deleted in {seconds:.0f} s;"
            f" duplicates {duplicates} of {stats['distinct']:,} ({share:.2%});"
            f" lost {max(expected - stats['distinct'], 0)}; p99 {stats['p99_ms']:.0f} ms",
            f"(c) p99 {p99_c:.0f} ms",
            f"p99 {stats['p99_ms'] / max(p99_c, 0.1):.1f}x (c)",
            "dup < 0.1 %, p99 ≤ 2x (c)",
            share < 0.001 and stats["p99_ms"] <= 2 * p99_c and stats["distinct"] >= expected,
            {
                "stats": stats,
                "created": created,
                "deleted": deleted,
                "duplicates": duplicates,
                "per_cpu_s": per_cpu,
            },
            efficiency,
        )
    )


async def slow_receiver(bench: Bench, stack: BenchStack, tenant: str) -> None:
    """(d): one webhook whose receiver answers in 50 ms, at concurrency C."""
    rtt = SLOW_MS / 1000
    for concurrency in bench.sizes.concurrencies:
        say(f"(d) 50 ms receiver, HOOKSTREAM_WEBHOOK_CONCURRENCY={concurrency}")
        await stack.restart_dispatchers(
            ["dispatcher"], {"HOOKSTREAM_WEBHOOK_CONCURRENCY": str(concurrency)}
        )
        pace = concurrency / rtt
        events = max(20, int(pace * bench.sizes.slow_seconds))
        await bench.reset()
        meter = CpuMeter([stack.pid("dispatcher")])
        await stack.publish(events, None, lambda _: (tenant, "bench-user"))
        stats = await bench.drain(events, 30 + events / 10)
        efficiency, per_cpu = bench.efficiency(stats["count"], meter)
        rate = _rate(stats)
        await bench.reset()
        bare_total = max(20, int(pace * bench.sizes.slow_seconds / 2))
        bare = await bare_throughput(bench.sink(f"/slow/{SLOW_MS}/bare"), bare_total, concurrency)
        target = 0.85 * pace
        bench.add(
            Row(
                f"(d) 50 ms receiver, C = {concurrency}",
                f"{rate:,.0f} deliveries/s ({stats['count']:,} of {events:,})",
                f"{bare:,.0f} POST/s at {concurrency} concurrent",
                f"{rate / bare:.2f}",
                f"≥ {target:,.0f}/s (0.85 x C / RTT)",
                rate >= target and stats["count"] >= events,
                {
                    "concurrency": concurrency,
                    "rate": rate,
                    "bare": bare,
                    "stats": stats,
                    "per_cpu_s": per_cpu,
                },
                efficiency,
            )
        )
    await stack.restart_dispatchers(["dispatcher"], {})


async def failover(bench: Bench, stack: BenchStack, tenant: str, hooks: int) -> None:
    """(g): two dispatchers share the shards; one is SIGKILLed a third of the way through."""
    rate, seconds = bench.sizes.rate, bench.sizes.failover_seconds
    say(f"(g) failover: two dispatchers, {rate}/s over {hooks} webhooks, one killed")
    await stack.restart_dispatchers(["dispatcher", "dispatcher-2"], {})
    victim_shards = await stack.shards_owned("dispatcher-2")
    events_rate = rate / hooks
    count = int(events_rate * seconds)
    await bench.reset()
    moved: dict[str, float] = {}
    meter = CpuMeter([stack.pid("dispatcher"), stack.pid("dispatcher-2")])

    async def kill_later() -> None:
        await asyncio.sleep(seconds / 3)
        killed = time.monotonic()
        meter.read()  # the victim's CPU so far: its /proc entry goes with it
        await asyncio.to_thread(stack.kill, "dispatcher-2")
        say("(g) dispatcher-2 SIGKILLed")

        async def all_shards() -> bool:
            return await stack.shards_owned("dispatcher") == SHARDS

        await wait_for(all_shards, 60, "the survivor to own every shard")
        moved["seconds"] = time.monotonic() - killed

    killer = asyncio.create_task(kill_later())
    await stack.publish(count, events_rate, lambda _: (tenant, "bench-user"))
    await killer
    expected = count * hooks
    stats = await bench.drain(expected, 90, distinct=True)
    await asyncio.sleep(2)
    stats = await bench.stats()
    efficiency, per_cpu = bench.efficiency(stats["count"], meter)
    lost = max(expected - stats["distinct"], 0)
    bench.add(
        Row(
            "(g) 2 dispatchers, one SIGKILLed",
            f"{victim_shards} shards moved in {moved['seconds']:.1f} s; lost {lost} of"
            f" {expected:,}; {stats['count'] - stats['distinct']} duplicates;"
            f" p99 {stats['p99_ms']:,.0f} ms",
            "-",
            "-",
            "move ≤ 15 s, none lost",
            moved["seconds"] <= 15 and lost == 0,
            {"moved_s": moved["seconds"], "lost": lost, "stats": stats, "per_cpu_s": per_cpu},
            efficiency,
        )
    )
    await stack.restart_dispatchers(["dispatcher"], {})


async def shared_scenarios(bench: Bench, only: str) -> None:
    """Every scenario but (f), on one installation on the shared broker."""
    stack = BenchStack(bench.kafka, bench.server_dsn, bench.sink_port)
    try:
        await stack.start()
        bench.sampler.watch(stack)
        tenants = {"four": 4, "fifty": 50, "slow": 1, "one": 1}
        ids: dict[str, set[str]] = {}
        for tenant, hooks in tenants.items():
            prefix = f"/slow/{SLOW_MS}/{tenant}" if tenant == "slow" else f"/{tenant}"
            ids[tenant] = {
                await stack.create_webhook(tenant, f"{prefix}/{index}") for index in range(hooks)
            }
        for tenant in tenants:
            await stack.wait_routed(tenant, ids[tenant])
        bench.probe = StageProbe(stack.kafka, stack.prefix)
        await bench.probe.start()
        p99_c = 0.0
        if "a" in only:
            await throughput(bench, stack, "a", "four", 4)
        if "b" in only:
            await throughput(bench, stack, "b", "fifty", 50)
        if "c" in only or "e" in only:
            p99_c = (await latency(bench, stack, "four", 4))["p99_ms"]
        if "c" in only:
            await latency(bench, stack, "fifty", 50)
            await latency(bench, stack, "one", 1, quiet=True)
        if "e" in only:
            await churn(bench, stack, "four", 4, p99_c)
        if "d" in only:
            await slow_receiver(bench, stack, "slow")
        if "g" in only:
            await failover(bench, stack, "fifty", 50)
        bench.sampler.sample()
    finally:
        if bench.probe:
            await bench.probe.stop()
            bench.probe = None
        await stack.stop()


# --- (f): many webhooks ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def private_kafka(root: Path) -> Any:
    """A broker of this run's own (1 GiB heap): N topics must not weigh on the shared one."""
    server = infra.KafkaServer(
        root / "kafka-data", free_port(), free_port(), root / "kafka.pid", root / "kafka.out",
        "1g", "256m",
    )  # fmt: skip
    try:
        pid = await asyncio.to_thread(server.start)
        await asyncio.to_thread(server.wait_ready, pid)
        yield server.bootstrap
    finally:
        await asyncio.to_thread(server.kill)
        shutil.rmtree(root, ignore_errors=True)


async def many_webhooks(bench: Bench) -> None:
    """(f): N webhooks (100 per tenant, each a user's), 200 events/s to random ones."""
    sizes = bench.sizes
    count = sizes.many_webhooks
    per_tenant = 100
    root = infra.STATE_DIR / "bench" / f"kafka-{os.getpid()}"
    use_private = count > sizes.private_kafka_above
    async with contextlib.AsyncExitStack() as exits:
        kafka = await exits.enter_async_context(private_kafka(root)) if use_private else bench.kafka
        env = {"HOOKSTREAM_MAX_WEBHOOKS_PER_TENANT": str(per_tenant * 2)}
        stack = BenchStack(kafka, bench.server_dsn, bench.sink_port, env)
        exits.push_async_callback(stack.stop)
        await stack.start()
        bench.sampler.watch(stack)

        say(f"(f) creating {count:,} webhooks ({math.ceil(count / per_tenant)} tenants)")
        owners = [(f"t{i // per_tenant}", f"u{i}") for i in range(count)]
        started = time.monotonic()
        queue = iter(range(count))
        done = 0
        ids: dict[str, set[str]] = {}

        async def creator() -> None:
            nonlocal done
            for index in queue:
                tenant, user = owners[index]
                webhook_id = await stack.create_webhook(tenant, f"/many/{index}", owner=user)
                ids.setdefault(tenant, set()).add(webhook_id)
                done += 1

        async def progress() -> None:
            while True:
                await asyncio.sleep(10)
                say(f"  {done:,} created, {done / (time.monotonic() - started):.0f}/s")

        shower = asyncio.create_task(progress())
        try:
            await asyncio.gather(*(creator() for _ in range(16)))
        finally:
            shower.cancel()
        create_s = time.monotonic() - started
        say(f"(f) {count:,} created in {create_s:.0f} s; waiting for the matcher to route them")
        routing = time.monotonic()
        for tenant, tenant_ids in ids.items():
            await stack.wait_routed(tenant, tenant_ids, 300)
        settle_s = time.monotonic() - routing
        say("(f) waiting until the broker serves every delivery topic")
        served_s = await stack.wait_topics_served(
            [i for tenant_ids in ids.values() for i in tenant_ids], 600
        )
        if count <= 2000:  # beyond, the probe's own fetches of every topic would weigh
            bench.probe = StageProbe(stack.kafka, stack.prefix)
            exits.push_async_callback(bench.probe.stop)
            await bench.probe.start()
            await asyncio.sleep(3)
            bench.probe.reset()
        say(f"(f) {sizes.many_rate} events/s to random webhooks for {sizes.many_seconds:.0f} s")
        total = int(sizes.many_rate * sizes.many_seconds)
        picks = [random.randrange(count) for _ in range(total)]
        await bench.reset()
        meter = CpuMeter([stack.pid("dispatcher")])
        probes: list[float] = []
        load = asyncio.create_task(
            stack.publish(total, sizes.many_rate, lambda i: owners[picks[i]])
        )
        gap = sizes.many_seconds / (sizes.probes + 1)
        for probe in range(sizes.probes):
            await asyncio.sleep(gap * 0.5)
            probes.append(await first_delivery(bench, stack, probe))
        await load
        stats = await bench.drain(total, 60)
        slots = (await bench.stats(timeline=5))["timeline"]
        say(
            "(f) p50/max by when the events were sent (5 s slots): "
            + ", ".join(f"{s['p50_ms']:.0f}/{s['max_ms']:.0f} ms" for s in slots)
        )
        efficiency, per_cpu = bench.efficiency(stats["count"], meter)
        stages = bench.stages()
        bench.probe = None
        pids = stack.pid("dispatcher")
        await asyncio.sleep(3)
        say(f"(f) the dispatcher's CPU over {sizes.idle_seconds:.0f} idle seconds")
        before, t0 = cpu_seconds(pids), time.monotonic()
        await asyncio.sleep(sizes.idle_seconds)
        idle_cpu = (cpu_seconds(pids) - before) / (time.monotonic() - t0)
        rss = rss_bytes(pids)
        bare = await bench.bare_latency(sizes.many_rate, min(sizes.many_seconds, 5))
        worst = max(probes) if probes else 0.0
        bench.results["many"] = {
            "webhooks": count,
            "create_seconds": round(create_s, 1),
            "settle_seconds": round(settle_s, 1),
            "served_seconds": round(served_s, 1),
            "private_kafka": use_private,
        }
        bench.add(
            Row(
                f"(f) {count:,} webhooks, {sizes.many_rate}/s to random ones",
                f"new webhook → first delivery max {_seconds(worst)}"
                f" (of {len(probes)}: {', '.join(_seconds(p) for p in probes)});"
                f" p50/p95/p99 {_pcts(stats)} ({stats['count']:,} of {total:,}){stages};"
                f" dispatcher idle {idle_cpu:.1%} of a core, RSS {rss / 2**20:.0f} MiB",
                f"{sizes.many_rate}/s paced: {_pcts(bare)}",
                f"p99 {stats['p99_ms'] / max(bare['p99_ms'], 0.1):.0f}x",
                "first ≤ 2 s, p99 < 250 ms, idle < 5 %, RSS < 300 MB",
                worst <= 2
                and stats["p99_ms"] < 250
                and idle_cpu < 0.05
                and rss < 300e6
                and count >= 10_000,
                {
                    "probes_s": probes,
                    "stats": stats,
                    "idle_cpu": idle_cpu,
                    "rss": rss,
                    "create_s": create_s,
                    "per_cpu_s": per_cpu,
                    "timeline": slots,
                },
                efficiency,
            )
        )


async def first_delivery(bench: Bench, stack: BenchStack, probe: int) -> float:
    """Create a webhook, then publish one event for it every 50 ms until the first arrives;
    the seconds from the API's answer to that arrival."""
    tenant, user, path = f"new{probe}", f"new{probe}", f"/new/{probe}"
    await stack.create_webhook(tenant, path, owner=user)
    created = time.time()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        await stack.publish(1, None, lambda _: (tenant, user))
        arrived = (await bench.stats(firsts="/new/")).get("firsts", {}).get(path)
        if arrived:
            return float(arrived) - created
        await asyncio.sleep(0.05)
    return math.inf


# --- (h): the webhook list of a busy tenant ---------------------------------------------------


async def webhook_list(bench: Bench) -> None:
    """(h): the list at 50 concurrent clients, a tenant with a day of deliveries beside one with
    none; both have the same webhooks, so only the delivery volume differs."""
    sizes = bench.sizes
    stack = BenchStack(bench.kafka, bench.server_dsn, bench.sink_port)
    try:
        await stack.start()
        bench.sampler.watch(stack)
        ids = {
            tenant: [
                await stack.create_webhook(tenant, f"/list/{tenant}/{i}")
                for i in range(sizes.list_webhooks)
            ]
            for tenant in ("busy", "empty")
        }
        say(f"(h) storing {sizes.list_deliveries:,} deliveries of the last 24 h")
        seeded = await bench_list.seed(stack.database, "busy", ids["busy"], sizes.list_deliveries)
        say(f"(h) stored in {seeded:.0f} s")
        url = f"{stack.services.url('api')}/api/v1/webhooks"
        first = await stack.client.get(url, headers=stack.auth("busy"))
        if any(w["successRate24h"] is None for w in first.json()["data"]):
            raise RuntimeError("(h): the busy tenant's list shows no success rate")
        reads: dict[str, dict[str, Any]] = {}
        postgres = infra.local_postgres_pid()
        for tenant in ("empty", "busy"):
            say(f"(h) {sizes.list_clients} clients list {tenant}'s webhooks")
            api = CpuMeter([stack.pid("api")])
            database = CpuMeter(with_children(postgres) if postgres else [])
            read = await bench_list.read_list(
                url, stack.auth(tenant), sizes.list_clients, sizes.list_seconds
            )
            read["per_cpu_s"] = read["requests"] / max(api.read(), 0.01)
            read["postgres_cpu_ms"] = 1000 * database.read() / max(read["requests"], 1)
            reads[tenant] = read
        busy, empty = reads["busy"], reads["empty"]
        slower = empty["rate"] / max(busy["rate"], 0.01)
        bench.add(
            Row(
                f"(h) GET /webhooks, {sizes.list_clients} clients, {sizes.list_webhooks}"
                f" webhooks with {sizes.list_deliveries:,} deliveries in 24 h",
                f"{busy['rate']:,.0f} req/s, p50/p99 {busy['p50_ms']:.0f} /"
                f" {busy['p99_ms']:.0f} ms ({busy['failures']} not 200)",
                f"empty tenant: {empty['rate']:,.0f} req/s, p50/p99 {empty['p50_ms']:.0f} /"
                f" {empty['p99_ms']:.0f} ms",
                f"{slower:.2f}x slower",
                "≥ 500 req/s, p99 < 250 ms, ≤ 1.5x empty",
                busy["rate"] >= 500
                and busy["p99_ms"] < 250
                and slower <= 1.5
                and not busy["failures"],
                {"busy": busy, "empty": empty, "seed_s": seeded},
                f"{busy['per_cpu_s']:,.0f} req/CPU-s of the API, empty {empty['per_cpu_s']:,.0f};"
                f" Postgres CPU {busy['postgres_cpu_ms']:.2f} ms a request,"
                f" empty {empty['postgres_cpu_ms']:.2f}",
            )
        )
    finally:
        await stack.stop()


# --- (i): the cost of tracing ------------------------------------------------------------------


async def tracing_cost(bench: Bench) -> None:
    """(i): (a)'s throughput on installations of their own, tracing off, then on at 10 % and
    100 % of traces, exported to a local Jaeger as a deployment would to its collector."""
    if not JAEGER.is_file():
        missing = "not run: `make jaeger` builds Jaeger"
        bench.add(Row("(i) tracing", missing, "-", "-", "-", None))
        return
    directory = infra.STATE_DIR / "bench" / "jaeger"
    directory.mkdir(parents=True, exist_ok=True)
    with running_jaeger(directory) as jaeger:
        for label, sampling in (("off", None), ("10 %", 0.1), ("100 %", 1.0)):
            env = jaeger.otel_env(sampling) if sampling is not None else {}
            stack = BenchStack(bench.kafka, bench.server_dsn, bench.sink_port, env)
            try:
                await stack.start()
                ids = {await stack.create_webhook("traced", f"/traced/{i}") for i in range(4)}
                await stack.wait_routed("traced", ids)
                await throughput(bench, stack, "i", "traced", 4, f", tracing {label}")
            finally:
                await stack.stop()


# --- the run -----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "nproc": os.cpu_count(),
        "model": model,
        "memory_gib": round(memory / 2**30, 1),
        "python": platform.python_version(),
        "load_before": os.getloadavg()[0],
    }


async def run(sizes: Sizes, only: str) -> dict[str, Any]:
    bench = Bench(sizes, free_port(), infra.ensure_kafka(), infra.ensure_postgres())
    bench.results.update(
        date=datetime.now(UTC).isoformat(timespec="seconds"), machine=machine(), sizes=asdict(sizes)
    )
    ensure_tls()
    sink = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hookstream_dev.bench_sink", "--port", str(bench.sink_port),
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    started = time.monotonic()
    try:

        async def answers() -> bool:
            try:
                return (await bench.http.get(bench.sink("/stats"))).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_for(answers, 20, "the sink")
        await bench.measure_ceiling()
        if set(only) - {"f", "h", "i"}:
            await shared_scenarios(bench, only)
        if "f" in only:
            await many_webhooks(bench)
        if "h" in only:
            await webhook_list(bench)
        if "i" in only:
            await tracing_cost(bench)
    finally:
        await bench.sampler.stop()
        sink.send_signal(signal.SIGTERM)
        await sink.wait()
        await bench.http.aclose()
    bench.results["seconds"] = round(time.monotonic() - started)
    bench.results["machine"]["load_after"] = os.getloadavg()[0]
    bench.results["peak_rss_mib"] = {n: round(v / 2**20) for n, v in bench.sampler.peaks.items()}
    bench.results["rows"] = [asdict(row) for row in bench.rows]
    return bench.results


def table(results: dict[str, Any]) -> str:
    """The results as a Markdown table with the date, machine and memory."""
    m = results["machine"]
    lines = [
        f"Run {results['date']} on {m['nproc']} cores ({m['model']}), {m['memory_gib']} GiB,"
        f" load average {m['load_before']:.1f} at the start and {m.get('load_after', 0):.1f}"
        f" at the end (other sessions share the cores); {results['seconds']} s in all."
        f" Bare aiohttp ceiling (64 concurrent POSTs to the same sink):"
        f" **{results['ceiling_rps']:,} POST/s**.",
        "",
        "| scenario | pipeline | bare client, same run | ratio | efficiency | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        met = {True: "**yes**", False: "no", None: "-"}[row["met"]]
        efficiency = row.get("efficiency", "-")
        cells = [row["scenario"], row["pipeline"], row["bare"], row["ratio"], efficiency]
        cells += [row["target"], met]
        lines.append("| " + " | ".join(cells) + " |")
    rss = ", ".join(f"{name} {mib} MiB" for name, mib in results["peak_rss_mib"].items())
    lines += ["", f"Peak RSS of each service over the run: {rss}."]
    if many := results.get("many"):
        where = "a private broker" if many["private_kafka"] else "the shared broker"
        lines.append(
            f"(f) setup: {many['webhooks']:,} webhooks created through the API in"
            f" {many['create_seconds']} s, all routed by the matcher"
            f" {many['settle_seconds']} s later, on {where}; the broker served every"
            f" delivery topic {many.get('served_seconds', 0)} s after that (the load starts"
            " then)."
        )
    return "\n".join(lines)


def write_doc(text: str) -> None:
    """Replace the marked block of docs/benchmarks.md with the new table."""
    doc = DOC.read_text()
    block = f"{DOC_BEGIN}\n{text}\n{DOC_END}"
    if DOC_BEGIN in doc and DOC_END in doc:
        head, rest = doc.split(DOC_BEGIN, 1)
        doc = head + block + rest.split(DOC_END, 1)[1]
    else:
        doc += f"\n{block}\n"
    DOC.write_text(doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hookstream_dev.bench")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", default=ALL, help="scenarios to run, e.g. `abc` (default all)")
    parser.add_argument("--many-webhooks", type=int, help="webhooks in scenario (f)")
    parser.add_argument("--list-deliveries", type=int, help="deliveries in scenario (h)")
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    quick = args.quick or os.environ.get("HOOKSTREAM_BENCH") == "quick"
    sizes = QUICK if quick else FULL
    if args.many_webhooks:
        sizes = replace(sizes, many_webhooks=args.many_webhooks)
    if args.list_deliveries:
        sizes = replace(sizes, list_deliveries=args.list_deliveries)
    only = "".join(c for c in args.only.lower() if c in ALL)
    results = asyncio.run(run(sizes, only))
    results["quick"] = quick
    text = table(results)
    out = infra.STATE_DIR / "bench" / f"results-{results['date'].replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(text)
    print(f"(saved to {out.relative_to(infra.REPO_ROOT)})")
    if not quick and not args.no_doc and only == ALL:
        write_doc(text)
        print(f"(table written to {DOC.relative_to(infra.REPO_ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
