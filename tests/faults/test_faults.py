"""The fault suite (issue 8, item 7): steady load while services, the broker and Postgres are
killed, frozen and restarted; nothing may be lost and everything must come back by itself.

HOOKSTREAM_CHAOS=short (in `make test`) runs each scenario once with small counts;
HOOKSTREAM_CHAOS=full (`make chaos`) runs the counts of the issue and writes
docs/reliability.md.
"""

import asyncio
import signal
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest

from hookstream_common.jobs import delivery_id_for
from hookstream_dev import chaos
from hookstream_dev.chaos import SINGLE, Scenario
from hookstream_dev.events import sample_event

pytestmark = [
    pytest.mark.faults,
    pytest.mark.timeout(3600 if chaos.profile() is chaos.FULL else 300),
]

RunScenario = Callable[..., Awaitable[Scenario]]
RECOVER_EVENTS_FAIL_AFTER = 4  # attempts: the first and the three of "1s,2s,4s"


def check(scenario: Scenario) -> None:
    assert scenario.sound, scenario.failure


@pytest.mark.parametrize("service", ["api", "matcher", "dispatcher", "janitor"])
async def test_sigkill_service(run_scenario: RunScenario, service: str) -> None:
    """SIGKILL at random instants; the supervisor restarts it; nothing is lost."""

    async def kills(s: Scenario) -> None:
        for _ in range(s.profile.kills):
            await s.signal_instance(service, signal.SIGKILL)
            await s.pause_between()

    check(await run_scenario(f"sigkill-{service}", kills))


async def test_rolling_sigterm_restart(run_scenario: RunScenario) -> None:
    """Each service in turn gets SIGTERM and is restarted: a deploy. Duplicates under 0.1 %."""

    async def rolling(s: Scenario) -> None:
        for _ in range(s.profile.rolling_rounds):
            for instance in SINGLE:
                await s.signal_instance(instance, signal.SIGTERM)
                await s.pause_between()

    scenario = await run_scenario("rolling-sigterm", rolling)
    check(scenario)
    assert scenario.result is not None
    assert scenario.result.duplicate_rate < 0.001, scenario.failure or await scenario.diagnosis()


async def test_rebalance_two_matchers_two_dispatchers(run_scenario: RunScenario) -> None:
    """Two of each; one dispatcher and one matcher are SIGKILLed: their work moves over."""

    async def kills(s: Scenario) -> None:
        for _ in range(s.profile.rebalance_rounds):
            await s.signal_instance("dispatcher-2", signal.SIGKILL)
            await s.pause_between()
            await s.signal_instance("matcher-2", signal.SIGKILL)
            await s.pause_between()

    instances = [*SINGLE, "matcher-2", "dispatcher-2"]
    check(await run_scenario("rebalance", kills, instances))


async def test_broker_sigkill(run_scenario: RunScenario) -> None:
    async def kills(s: Scenario) -> None:
        for _ in range(s.profile.broker_kills):
            await s.broker_down("kill", s.profile.down_s)
            await s.pause_between()

    check(await run_scenario("broker-sigkill", kills))


async def test_broker_sigstop(run_scenario: RunScenario) -> None:
    """The broker frozen (SIGSTOP) and thawed: connections stay open but nothing answers."""

    async def pauses(s: Scenario) -> None:
        for _ in range(s.profile.broker_pauses):
            await s.broker_down("pause", s.profile.broker_pause_s)
            await s.pause_between()

    check(await run_scenario("broker-sigstop", pauses))


@pytest.mark.parametrize("kind", ["fast", "kill"])
async def test_postgres_down(run_scenario: RunScenario, kind: str) -> None:
    """Postgres stopped with a fast shutdown, or SIGKILLed with every backend, then started."""

    async def outages(s: Scenario) -> None:
        for _ in range(s.profile.postgres_restarts):
            await s.postgres_down(kind, s.profile.down_s)
            await s.pause_between()

    check(await run_scenario(f"postgres-{kind}", outages))


async def test_recover_during_dispatcher_kill(run_scenario: RunScenario) -> None:
    """Deliveries fail for good, the receiver heals, the dispatcher is SIGKILLed and recover
    is called while it is down: every failed delivery must still arrive."""
    check(await run_scenario("recover-during-dispatcher-kill", recover_during_kill))


async def recover_during_kill(s: Scenario) -> None:
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    webhook_id = await s.create_webhook(tenant, "recover")
    [path] = [p for p, w in s.ledger.webhook_at.items() if w == webhook_id]
    s.receiver.respond(path, status=500)
    await s.wait_routed([tenant])
    since = chaos.utc_iso(time.time() - 60)
    events = [
        await s.publisher.publish(sample_event(chaos.EVENT_TYPE, tenant, "recover"))
        for _ in range(s.profile.recover_events)
    ]
    failing = [delivery_id_for(webhook_id, event) for event in events]
    for delivery_id, event in zip(failing, events, strict=True):  # owed only once recovered
        s.ledger.recovering[delivery_id] = (webhook_id, event, float("inf"))
    await _wait_exhausted(s, failing)
    await _wait_stored_failed(s, tenant, webhook_id, len(failing))
    s.receiver.respond(path, status=200)
    healed = time.time()
    for delivery_id, event in zip(failing, events, strict=True):
        s.ledger.recovering[delivery_id] = (webhook_id, event, healed)
    killed = await s.signal_instance("dispatcher", signal.SIGKILL, wait_ready=False)
    response = await chaos.retrying(
        lambda: s.api.post(
            f"/api/v1/webhooks/{webhook_id}/actions/recover",
            json={"since": since},
            headers=s.token(tenant),
        )
    )
    s.notes.append(f"recover answered {response.status_code} {response.text[:200]}")
    assert response.is_success, f"recover: {response.status_code} {response.text}"
    await s.wait_restarted("dispatcher", killed)


async def _wait_exhausted(s: Scenario, delivery_ids: list[str], timeout: float = 60) -> None:
    """Until every delivery was attempted as often as the schedule allows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.ledger.absorb(s.receiver.requests)
        attempts = [len(s.ledger.arrivals.get(d, [])) for d in delivery_ids]
        if min(attempts) >= RECOVER_EVENTS_FAIL_AFTER:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"failing deliveries were not retried to the end: attempts {attempts}")


async def _wait_stored_failed(
    s: Scenario, tenant: str, webhook_id: str, count: int, timeout: float = 30
) -> None:
    """Until the history lists the failed deliveries, so that recover finds them."""
    deadline = time.monotonic() + timeout
    listed = 0
    while time.monotonic() < deadline:
        response = await s.api.get(
            f"/api/v1/webhooks/{webhook_id}/deliveries",
            params={"status": "fail", "limit": 100},
            headers=s.token(tenant),
        )
        if response.status_code == 200:
            listed = len(response.json()["data"])
            if listed >= count:
                return
        await asyncio.sleep(0.5)
    raise AssertionError(f"the history lists {listed} of {count} failed deliveries")
