"""The benchmark's receiver and its bare clients: the ceiling every scenario is compared with.

The sink is an HTTPS server in a process of its own (so it does not share a loop with the
load). For every POST it counts the request, the distinct `webhook-id` values (delivery ids:
duplicates and losses), the time from the event's `eventTime` to arrival, and the first arrival
per path (a new webhook's first delivery; paths under `/new/` count for nothing else). A path
`/slow/<ms>/...` answers after `<ms>` ms, as a receiver with that round trip would.

The bare clients POST to the same sink with aiohttp and nothing else: as fast as they can at a
given concurrency (the throughput ceiling), or at a given pace (the latency floor).
"""

import argparse
import asyncio
import contextlib
import time
from datetime import datetime
from typing import Any

import aiohttp
import orjson
import uvloop
from aiohttp import web

from hookstream_dev.events import sample_event
from hookstream_dev.receiver import ensure_tls

EVENT_TYPE = "com.qlik.v1.app.created"
_STAMP = b'"eventTime":"'
PROBE_PATH = "/new/"
"""Deliveries to paths under this count only as a path's first arrival, nothing else."""


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of `values` lie (nearest rank); 0 for none."""
    return _at(sorted(values), fraction)


def _at(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def timeline(sent: list[float], latencies_ms: list[float], step: float) -> list[dict[str, float]]:
    """Latencies by when their events were sent, in slots of `step` seconds from the first:
    where in a run the slow deliveries were (a stall at the start, or spread out)."""
    slots: dict[int, list[float]] = {}
    start = min(sent, default=0.0)
    for at, latency in zip(sent, latencies_ms, strict=True):
        slots.setdefault(int((at - start) // step), []).append(latency)
    return [
        {
            "from_s": slot * step,
            "count": len(values),
            "p50_ms": percentile(values, 0.5),
            "max_ms": max(values),
        }
        for slot, values in sorted(slots.items())
    ]


def event_time(body: bytes) -> float | None:
    """The event's `eventTime` (legacy shape) or `time` (CloudEvents 1.0), as a timestamp."""
    start = body.find(_STAMP)
    if start >= 0:
        start += len(_STAMP)
        with contextlib.suppress(ValueError):
            stamp = body[start : body.index(b'"', start)].decode()
            return datetime.fromisoformat(stamp).timestamp()
    with contextlib.suppress(ValueError):
        stamp = orjson.loads(body).get("time")
        return datetime.fromisoformat(stamp).timestamp() if stamp else None
    return None


class Sink:
    """What arrived since the last reset."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.first = self.last = 0.0
        self.latencies_ms: list[float] = []
        self.sent: list[float] = []
        """The `eventTime` of each latency, in the same order: the stats' timeline."""
        self.ids: set[str] = set()
        self.firsts: dict[str, float] = {}

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        path = request.path
        if path.startswith("/slow/"):
            await asyncio.sleep(int(path.split("/")[2]) / 1000)
        self.firsts.setdefault(path, now)
        if path.startswith(PROBE_PATH):
            return web.Response(text='{"ok":true}', content_type="application/json")
        self.count += 1
        self.first = self.first or now
        self.last = now
        if (delivery_id := request.headers.get("webhook-id")) is not None:
            self.ids.add(delivery_id)
        if (sent := event_time(body)) is not None:
            self.latencies_ms.append((now - sent) * 1000)
            self.sent.append(sent)
        return web.Response(text='{"ok":true}', content_type="application/json")

    async def stats(self, request: web.Request) -> web.Response:
        latencies = sorted(self.latencies_ms)
        result: dict[str, Any] = {
            "count": self.count,
            "distinct": len(self.ids),
            "first": self.first,
            "last": self.last,
            "p50_ms": _at(latencies, 0.50),
            "p95_ms": _at(latencies, 0.95),
            "p99_ms": _at(latencies, 0.99),
            "max_ms": max(latencies, default=0.0),
        }
        if seconds := request.query.get("timeline"):
            result["timeline"] = timeline(self.sent, self.latencies_ms, float(seconds))
        if prefix := request.query.get("firsts"):
            result["firsts"] = {p: t for p, t in self.firsts.items() if p.startswith(prefix)}
        return web.json_response(result)

    async def clear(self, _: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


async def serve(port: int) -> None:
    """Run the sink on 127.0.0.1:`port` until killed."""
    sink = Sink()
    app = web.Application()
    app.router.add_get("/stats", sink.stats)
    app.router.add_post("/reset", sink.clear)
    app.router.add_post("/{tail:.*}", sink.receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    context = ensure_tls().server_context()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context, backlog=2048).start()
    await asyncio.Event().wait()


# --- the bare clients ------------------------------------------------------------------------


def _session(concurrency: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(ssl=ensure_tls().client_context(), limit=concurrency)
    return aiohttp.ClientSession(connector=connector)


async def bare_throughput(url: str, total: int, concurrency: int) -> float:
    """POST/s of a bare aiohttp client sending `total` requests, `concurrency` at a time."""
    body = orjson.dumps(sample_event(EVENT_TYPE, "bench-bare"))
    async with _session(concurrency) as session:
        remaining = iter(range(total))

        async def worker() -> None:
            for _ in remaining:
                async with session.post(url, data=body) as response:
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - started)


async def bare_paced(url: str, rate: float, seconds: float, concurrency: int = 256) -> None:
    """POST `rate` requests/s for `seconds`, each body stamped when due (the sink measures)."""
    total = int(rate * seconds)
    slots = asyncio.Semaphore(concurrency)
    async with _session(concurrency) as session:

        async def one() -> None:
            body = orjson.dumps(sample_event(EVENT_TYPE, "bench-bare"))
            try:
                async with session.post(url, data=body) as response:
                    await response.read()
            finally:
                slots.release()

        tasks = []
        started = time.perf_counter()
        for index in range(total):
            if (wait := started + index / rate - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            await slots.acquire()
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)


def main(argv: list[str] | None = None) -> int:
    """`python -m hookstream_dev.bench_sink --port N`."""
    parser = argparse.ArgumentParser(prog="python -m hookstream_dev.bench_sink")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvloop.run(serve(args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
