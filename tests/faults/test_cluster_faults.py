"""A three-broker KRaft cluster losing a broker under load (issue 19, point 5): replication
3, `min.insync.replicas` 2, the four services, steady load counted at the receiver. Nothing may
be lost and no pause in deliveries may last over 10 s; duplicates are reported.

`make chaos` runs them (HOOKSTREAM_CHAOS=full); `make test` does not, to keep its time. One
can be run alone with HOOKSTREAM_CHAOS_CLUSTER=1 (short profile).
"""

import os
from collections.abc import Awaitable, Callable

import pytest

from hookstream_dev import chaos
from hookstream_dev.chaos import Scenario

RunScenario = Callable[..., Awaitable[Scenario]]

MAX_GAP_S = 10.0

pytestmark = [
    pytest.mark.faults,
    pytest.mark.timeout(3600 if chaos.profile() is chaos.FULL else 600),
    pytest.mark.skipif(
        chaos.profile() is not chaos.FULL and os.environ.get("HOOKSTREAM_CHAOS_CLUSTER") != "1",
        reason="the cluster scenarios run in `make chaos` (or HOOKSTREAM_CHAOS_CLUSTER=1)",
    ),
]


def check_cluster(scenario: Scenario) -> None:
    assert scenario.sound, scenario.failure
    gap = scenario.longest_delivery_gap()
    assert gap <= MAX_GAP_S, f"deliveries paused {gap:.1f} s\n{scenario.log_tails()}"


async def test_cluster_leader_sigkill(run_cluster_scenario: RunScenario) -> None:
    """SIGKILL the broker that leads the most partitions, then start it again."""

    async def kills(s: Scenario) -> None:
        for _ in range(s.profile.broker_kills):
            await s.broker_down("kill", s.profile.down_s, await s.busiest_leader())
            await s.wait_in_sync()
            await s.pause_between()

    check_cluster(await run_cluster_scenario("cluster-leader-sigkill", kills))


async def test_cluster_rolling_restart(run_cluster_scenario: RunScenario) -> None:
    """SIGTERM each broker in turn, waiting until every replica is in sync: an upgrade."""
    check_cluster(
        await run_cluster_scenario("cluster-rolling-restart", Scenario.rolling_broker_restart)
    )


async def test_cluster_broker_sigstop(run_cluster_scenario: RunScenario) -> None:
    """One broker of three frozen (SIGSTOP) for 30 s, then thawed."""

    async def freeze(s: Scenario) -> None:
        await s.broker_down("pause", 30.0, await s.busiest_leader())
        await s.wait_in_sync()

    check_cluster(await run_cluster_scenario("cluster-broker-sigstop", freeze))


async def test_cluster_controller_sigstop(run_cluster_scenario: RunScenario) -> None:
    """The active controller frozen for 30 s, then thawed: the worst freeze, since the others
    must elect a new controller before it can fence the frozen broker."""

    async def freeze(s: Scenario) -> None:
        await s.broker_down("pause", 30.0, s.active_controller())
        await s.wait_in_sync()

    check_cluster(await run_cluster_scenario("cluster-controller-sigstop", freeze))
