"""A worker loop's turns (the matcher's): each within a time limit, cut to the grace by a stop,
and watched, so a loop that stops turning fails `/healthz` and `/readyz`."""

import asyncio

import orjson
import pytest

from hookstream_common.ops import healthz, readyz
from hookstream_common.resilience import Readiness, Turns


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _hang() -> None:
    await asyncio.Event().wait()


async def test_a_turn_that_outlasts_its_limit_is_cut() -> None:
    turns = Turns(limit=0.05, grace=5.0)
    with pytest.raises(TimeoutError):
        async with turns.turn():
            await _hang()


async def test_a_stop_cuts_a_stuck_turn_to_the_grace() -> None:
    turns = Turns(limit=60.0, grace=0.05)
    loop = asyncio.get_running_loop()

    async def stuck_turn() -> None:
        async with turns.turn():
            await _hang()

    task = asyncio.create_task(stuck_turn())
    await asyncio.sleep(0)  # the turn has begun
    began = loop.time()
    turns.stop()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(task, 5)
    assert loop.time() - began < 1.0
    with pytest.raises(TimeoutError):
        async with turns.turn():  # a turn after the stop gets the grace too
            await _hang()


async def test_a_stop_does_not_lengthen_a_shorter_limit() -> None:
    turns = Turns(limit=0.05, grace=60.0)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(TimeoutError):
        async with turns.turn():
            turns.stop()
            await _hang()
    assert loop.time() - began < 1.0


def test_a_loop_not_started_yet_is_not_stuck() -> None:
    clock = Clock()
    turns = Turns(limit=30.0, grace=10.0, clock=clock)
    clock.now += 1000
    assert turns.stuck_for() is None, "not started yet: start-up has its own readiness"


async def test_stuck_fails_liveness_and_readiness_until_the_loop_turns() -> None:
    clock = Clock()
    turns = Turns(limit=30.0, grace=10.0, clock=clock)
    readiness = Readiness({}, lambda: True, turns)
    async with turns.turn():
        pass
    clock.now += 60.0
    assert turns.stuck_for() is None and healthz(turns).status == 200 and readiness.ready
    clock.now += 1.0
    assert turns.stuck_for() == 61.0
    answer = healthz(turns)
    assert answer.status == 503
    assert orjson.loads(answer.body) == {"status": "stuck", "loopStillSeconds": 61.0}
    assert not readiness.ready
    assert readyz(readiness).status == 503
    assert orjson.loads(readyz(readiness).body)["loop"] == "stuck"

    async with turns.turn():
        pass
    assert healthz(turns).status == 200 and readiness.ready
    assert orjson.loads(readyz(readiness).body)["loop"] == "turning"
    clock.now += 1000
    turns.finished()
    assert turns.stuck_for() is None, "a loop that ended is not stuck"
