"""`make bench`: the whole pipeline on real Kafka and Postgres, against a bare client's ceiling.

    python -m hookstream_dev.bench [--webhooks 20] [--events 5000] [--rate 1000] [--seconds 20]

1. A fast HTTPS sink runs in its own process; a bare aiohttp client, then a bare httpx client,
   POST to it as fast as they can: the ceiling of this machine, and the HTTP-client choice.
2. The four services start on a fresh database and topic prefix; `--webhooks` webhooks of one
   tenant subscribe to one event type, so every event becomes that many deliveries.
3. Throughput: `--events` events are published at once; deliveries/s is measured at the sink.
4. Latency: events are published at `--rate` deliveries/s for `--seconds`; the sink measures
   event time to arrival (p50/p95/p99).
Peak RSS of each service is sampled throughout. Results print as a table and are saved as JSON
under .hookstream/bench/.
"""

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import httpx
import orjson
import psutil
from aiohttp import web
from cryptography.fernet import Fernet

from hookstream_common.kafka import producer
from hookstream_common.sdk import sample_event
from hookstream_common.tokens import TENANT_ADMIN, mint_token
from hookstream_dev import infra
from hookstream_dev.receiver import ensure_tls
from hookstream_dev.stack import MODULES, ServiceSet, free_port

SINK_HOST = "receiver.hookstream.test"  # a name the development certificate covers
EVENT_TYPE = "com.qlik.v1.app.created"
TENANT = "bench-tenant"


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


# --- the sink: answers 200 as fast as it can and measures event time to arrival -------------


class Sink:
    """Counts deliveries and their latency from the event's `eventTime`."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.first = self.last = 0.0
        self.latencies_ms: list[float] = []

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        self.count += 1
        self.first = self.first or now
        self.last = now
        event_time = orjson.loads(body).get("eventTime")
        if event_time:
            sent = datetime.fromisoformat(event_time).timestamp()
            self.latencies_ms.append((now - sent) * 1000)
        return web.Response(text='{"ok":true}', content_type="application/json")

    async def stats(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "count": self.count,
                "first": self.first,
                "last": self.last,
                "latencies_ms": self.latencies_ms,
            }
        )

    async def clear(self, _: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


async def _serve_sink(port: int) -> None:
    sink = Sink()
    app = web.Application()
    app.router.add_get("/stats", sink.stats)
    app.router.add_post("/reset", sink.clear)
    app.router.add_post("/{tail:.*}", sink.receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    context = ensure_tls().server_context()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context, backlog=1024).start()
    await asyncio.Event().wait()


# --- the ceiling: a bare client against the same sink -------------------------------------


async def _bare_aiohttp(url: str, total: int, concurrency: int) -> float:
    context = ensure_tls().client_context()
    body = orjson.dumps(sample_event(EVENT_TYPE, TENANT))
    connector = aiohttp.TCPConnector(ssl=context, limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        remaining = iter(range(total))

        async def worker() -> None:
            for _ in remaining:
                async with session.post(url, data=body) as response:
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - started)


async def _bare_httpx(url: str, total: int, concurrency: int) -> float:
    body = orjson.dumps(sample_event(EVENT_TYPE, TENANT))
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(verify=ensure_tls().client_context(), limits=limits) as client:
        remaining = iter(range(total))

        async def worker() -> None:
            for _ in remaining:
                await client.post(url, content=body)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - started)


# --- the pipeline ---------------------------------------------------------------------------


class RssSampler:
    """Peak resident memory of each service process, sampled twice a second, and CPU time."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.peaks = dict.fromkeys(pids, 0)
        self._processes = {name: psutil.Process(pid) for name, pid in pids.items()}

    def cpu_seconds(self) -> dict[str, float]:
        """User plus system CPU time of each service so far."""
        times = {name: p.cpu_times() for name, p in self._processes.items()}
        return {name: t.user + t.system for name, t in times.items()}

    async def run(self) -> None:
        while True:
            for name, process in self._processes.items():
                with contextlib.suppress(psutil.Error):
                    self.peaks[name] = max(self.peaks[name], process.memory_info().rss)
            await asyncio.sleep(0.5)


async def _create_database(server_dsn: str) -> str:
    name = f"hookstream_bench_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(server_dsn)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    return f"{server_dsn.rpartition('/')[0]}/{name}"


async def _drop_database(server_dsn: str, dsn: str) -> None:
    connection = await asyncpg.connect(server_dsn)
    await connection.execute(f'DROP DATABASE IF EXISTS "{dsn.rpartition("/")[2]}" WITH (FORCE)')
    await connection.close()


async def _wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def _publish(kafka_producer: Any, topic: str, count: int, rate: float | None) -> None:
    """`count` events keyed by tenant; paced at `rate` events/s when given."""
    started = time.perf_counter()
    pending = []
    for index in range(count):
        if rate:
            due = started + index / rate
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
        event = sample_event(EVENT_TYPE, TENANT, "bench-user")
        pending.append(await kafka_producer.send(topic, orjson.dumps(event), key=TENANT.encode()))
    await asyncio.gather(*pending)


def _start_sink(port: int) -> subprocess.Popen[bytes]:
    """The sink in a process of its own, so it does not share a core's loop with the load."""
    return subprocess.Popen(
        [sys.executable, "-m", "hookstream_dev.bench", "sink", "--port", str(port)],
        stdin=subprocess.DEVNULL,
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark; returns the results."""
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB",
        "webhooks": args.webhooks,
    }
    kafka, server_dsn = infra.ensure_kafka(), infra.ensure_postgres()
    tls = ensure_tls()
    sink_port = free_port()
    sink = _start_sink(sink_port)
    database = await _create_database(server_dsn)
    services = None
    try:
        sink_url = f"https://localhost:{sink_port}"
        async with httpx.AsyncClient(verify=tls.client_context()) as client:
            await _wait_for(lambda: _answers(client, f"{sink_url}/stats"), 20, "the sink")
            _say(f"ceiling: bare aiohttp client, {args.ceiling_requests} POSTs at 64 concurrent")
            results["ceiling_aiohttp_rps"] = await _bare_aiohttp(
                f"{sink_url}/ceiling", args.ceiling_requests, 64
            )
            _say(f"ceiling: bare httpx client, {args.ceiling_requests // 4} POSTs at 64 concurrent")
            results["ceiling_httpx_rps"] = await _bare_httpx(
                f"{sink_url}/ceiling", args.ceiling_requests // 4, 64
            )

            prefix = f"bench-{secrets.token_hex(3)}"
            jwt_key = secrets.token_urlsafe(32)
            env = {
                "KAFKA_BOOTSTRAP_SERVERS": kafka,
                "DATABASE_URL": database,
                "HOOKSTREAM_TOPIC_PREFIX": prefix,
                "HOOKSTREAM_JWT_KEY": jwt_key,
                "HOOKSTREAM_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                "HOOKSTREAM_EXTRA_CA_FILE": str(tls.ca),
                "HOOKSTREAM_ALLOW_NETWORKS": "127.0.0.0/8",
                "HOOKSTREAM_STATIC_HOSTS": f"{SINK_HOST}=127.0.0.1",
                "HOOKSTREAM_LOG_LEVEL": "WARNING",
                "HOOKSTREAM_MATCHER_DATA_DIR": str(infra.STATE_DIR / "bench" / prefix),
            }
            services = ServiceSet(
                env=env,
                ports={name: free_port() for name in MODULES},
                log_dir=infra.STATE_DIR / "bench" / "logs" / prefix,
            )
            _say("starting the four services")
            for name in MODULES:
                services.start(name, wait=False)
            for name in MODULES:
                await asyncio.to_thread(services.wait_ready, name)
            sampler = RssSampler({n: p.pid for n, p in services.processes.items()})
            sampling = asyncio.create_task(sampler.run())
            await _create_webhooks(client, services, jwt_key, sink_port, args.webhooks)

            kafka_producer = producer(kafka, linger_ms=5)
            await kafka_producer.start()
            try:
                topic = f"{prefix}.events"
                total = args.events * args.webhooks
                await client.post(f"{sink_url}/reset")
                _say(f"throughput: {args.events} events x {args.webhooks} webhooks = {total}")
                started = time.time()
                cpu_before = sampler.cpu_seconds()
                await _publish(kafka_producer, topic, args.events, None)
                stats = await _drain(client, sink_url, total, args.timeout)
                cpu_after = sampler.cpu_seconds()
                results["throughput_deliveries"] = stats["count"]
                results["throughput_dps"] = stats["count"] / (stats["last"] - started)
                results["throughput_cpu_seconds"] = {
                    name: round(cpu_after[name] - cpu_before[name], 1) for name in cpu_after
                }

                rate_events = args.rate / args.webhooks
                count = int(rate_events * args.seconds)
                await client.post(f"{sink_url}/reset")
                _say(f"latency: {args.rate} deliveries/s for {args.seconds} s")
                await _publish(kafka_producer, topic, count, rate_events)
                stats = await _drain(client, sink_url, count * args.webhooks, args.timeout)
                latencies = stats["latencies_ms"]
                results["latency_rate_dps"] = args.rate
                results["latency_deliveries"] = stats["count"]
                results["latency_p50_ms"] = statistics.median(latencies)
                results["latency_p95_ms"] = _percentile(latencies, 0.95)
                results["latency_p99_ms"] = _percentile(latencies, 0.99)
            finally:
                await kafka_producer.stop()
                sampling.cancel()
            results["peak_rss_mib"] = {n: round(v / 2**20) for n, v in sampler.peaks.items()}
    finally:
        if services is not None:
            services.stop_all()
        sink.send_signal(signal.SIGTERM)
        sink.wait()
        await _drop_database(server_dsn, database)
    return results


async def _answers(client: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


async def _create_webhooks(
    client: httpx.AsyncClient, services: ServiceSet, jwt_key: str, sink_port: int, count: int
) -> None:
    token = mint_token(jwt_key, TENANT, "bench-user", [TENANT_ADMIN])
    auth = {"Authorization": f"Bearer {token}"}
    ids = set()
    for index in range(count):
        response = await client.post(
            f"{services.url('api')}/api/v1/webhooks",
            headers=auth,
            json={
                "name": f"bench {index}",
                "url": f"https://{SINK_HOST}:{sink_port}/hook/{index}",
                "eventTypes": [EVENT_TYPE],
                "secret": "b" * 40,
            },
        )
        response.raise_for_status()
        ids.add(response.json()["id"])

    async def routed() -> bool:
        response = await client.get(f"{services.url('matcher')}/routes/{TENANT}")
        return response.status_code == 200 and ids <= {w["id"] for w in response.json()["webhooks"]}

    await _wait_for(routed, 60, "the matcher to learn the webhooks")


async def _drain(client: httpx.AsyncClient, sink_url: str, expected: int, timeout: float) -> Any:
    """Wait until the sink has `expected` deliveries, showing progress."""
    deadline = time.monotonic() + timeout
    shown = 0.0
    while True:
        stats = (await client.get(f"{sink_url}/stats")).json()
        if stats["count"] >= expected or time.monotonic() > deadline:
            return stats
        if time.monotonic() - shown > 2:
            _say(f"  {stats['count']} of {expected} delivered")
            shown = time.monotonic()
        await asyncio.sleep(0.25)


def _report(results: dict[str, Any]) -> str:
    rss = ", ".join(f"{name} {mib} MiB" for name, mib in results["peak_rss_mib"].items())
    ceiling = results["ceiling_aiohttp_rps"]
    return "\n".join(
        [
            f"date                 {results['date']}  ({results['machine']})",
            f"ceiling, bare aiohttp  {ceiling:8.0f} POST/s",
            f"ceiling, bare httpx    {results['ceiling_httpx_rps']:8.0f} POST/s",
            f"pipeline throughput    {results['throughput_dps']:8.0f} deliveries/s"
            f"  ({results['throughput_dps'] / ceiling:.0%} of the aiohttp ceiling;"
            f" {results['throughput_deliveries']} deliveries, {results['webhooks']} webhooks)",
            f"latency at {results['latency_rate_dps']}/s     p50 {results['latency_p50_ms']:.0f} ms"
            f"  p95 {results['latency_p95_ms']:.0f} ms  p99 {results['latency_p99_ms']:.0f} ms"
            f"  ({results['latency_deliveries']} deliveries)",
            f"peak RSS               {rss}",
            "CPU s, throughput run  "
            + ", ".join(f"{n} {s}" for n, s in results["throughput_cpu_seconds"].items()),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m hookstream_dev.bench [run options] | sink --port N`."""
    parser = argparse.ArgumentParser(prog="python -m hookstream_dev.bench")
    parser.add_argument("command", nargs="?", default="run", choices=["run", "sink"])
    parser.add_argument("--port", type=int, default=0, help="sink: port to listen on")
    parser.add_argument("--webhooks", type=int, default=20)
    parser.add_argument("--events", type=int, default=1500)
    parser.add_argument("--rate", type=int, default=1000, help="deliveries/s in the latency run")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--ceiling-requests", type=int, default=20000)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)
    if args.command == "sink":
        asyncio.run(_serve_sink(args.port))
        return 0
    results = asyncio.run(run(args))
    out = infra.STATE_DIR / "bench" / f"results-{results['date'].replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(_report(results))
    print(f"(saved to {out.relative_to(infra.REPO_ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
