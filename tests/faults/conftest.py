"""Fixtures of the fault suite: private Kafka and Postgres, a receiver, scenarios, the report.

The broker and database of this suite are its own (under .hookstream/faults/), because its
scenarios kill and freeze them; other test sessions keep using the shared local servers.
"""

import asyncio
import json
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import asdict
from typing import Any

import pytest

from hookstream_dev import chaos, infra
from hookstream_dev.chaos import PrivateInfra, Profile, Scenario
from hookstream_dev.receiver import Receiver, TlsFiles, ensure_tls

Faults = Callable[[Scenario], Awaitable[None]]


@pytest.fixture(scope="session")
def chaos_profile() -> Profile:
    return chaos.profile()


@pytest.fixture(scope="session")
def chaos_seed() -> int:
    return chaos.seed()


def _infra_fixture(brokers: int, doc: str) -> Callable[[], Iterator[PrivateInfra]]:
    """A session fixture: a private infrastructure of `brokers` brokers (and a Postgres of its
    own), running for the session, stopped and dropped at the end."""

    def infra_fixture() -> Iterator[PrivateInfra]:
        private = PrivateInfra.create(brokers=brokers)
        try:
            private.ensure_running()
            yield private
        finally:
            private.close()

    infra_fixture.__doc__ = doc
    return pytest.fixture(scope="session")(infra_fixture)


private_infra = _infra_fixture(1, "This session's own broker and Postgres server.")
cluster_infra = _infra_fixture(
    3, "This session's own three-broker KRaft cluster (and Postgres), for the replicated scenarios."
)


@pytest.fixture(scope="session")
def fault_report(chaos_profile: Profile, chaos_seed: int) -> Iterator[list[dict[str, Any]]]:
    """Every scenario's result; written at the end of the session.

    Always to .hookstream/faults/latest.md; a full run (`make chaos`) also to
    docs/reliability.md, keeping that page's rows of the scenarios a selection (`-k`) left
    out. Each run's folder keeps its results.jsonl.
    """
    results: list[dict[str, Any]] = []
    started, commit, load = time.monotonic(), chaos.git_commit(), os.getloadavg()[0]
    yield results
    if not results:
        return
    run = chaos.run_info(chaos_profile, chaos_seed, started, commit, load)
    chaos.write_report(chaos.FAULTS_DIR / "latest.md", results, run)
    if chaos_profile.name == "full":
        page = infra.REPO_ROOT / "docs" / "reliability.md"
        kept = chaos.rows_left_out(page.with_suffix(".json"), results)
        chaos.write_report(page, results + kept, run)


@pytest.fixture(scope="session")
def tls_files() -> TlsFiles:
    return ensure_tls(infra.STATE_DIR / "tls")


@pytest.fixture
async def fault_receiver(tls_files: TlsFiles) -> AsyncIterator[Receiver]:
    """The scenario's own HTTPS receiver, which the dispatcher reaches by name."""
    receiver = await Receiver.start(host="127.0.0.1", port=0, tls=tls_files)
    yield receiver
    await receiver.stop()


def _runner_fixture(infra_name: str, doc: str) -> Callable[..., Callable[..., Awaitable[Scenario]]]:
    """A fixture: the scenario runner on the private infrastructure of the session fixture
    `infra_name` (a broker, or the cluster)."""

    def runner_fixture(
        request: pytest.FixtureRequest,
        tls_files: TlsFiles,
        fault_receiver: Receiver,
        chaos_profile: Profile,
        chaos_seed: int,
        fault_report: list[dict[str, Any]],
    ) -> Callable[..., Awaitable[Scenario]]:
        private_infra: PrivateInfra = request.getfixturevalue(infra_name)

        def record(entry: dict[str, Any]) -> None:
            """Keep the result for the report, and on disk at once in case the session dies."""
            fault_report.append(entry)
            with (private_infra.root / "results.jsonl").open("a") as lines:
                lines.write(json.dumps(entry) + "\n")

        async def run(name: str, faults: Faults, instances: list[str] = chaos.SINGLE) -> Scenario:
            rng = random.Random(f"{chaos_seed}/{name}")
            started = time.monotonic()
            try:
                stack = await chaos.start_stack(private_infra, tls_files, name, instances)
            except Exception as exc:
                record({"scenario": name, "error": f"no installation: {exc}"})
                raise
            try:
                async with Scenario(
                    name, stack, private_infra, fault_receiver, chaos_profile, rng
                ) as scenario:
                    try:
                        result = await scenario.run(faults)
                    except Exception as exc:
                        record({"scenario": name, "error": f"{type(exc).__name__}: {exc}"[:300]})
                        raise
                    setting_up = time.monotonic() - started - result.duration_s
                    result.phases_s["start"] = round(setting_up, 1)
                    record(asdict(result))
                    scenario.failure = "" if scenario.sound else await scenario.diagnosis()
                return scenario
            finally:
                await asyncio.to_thread(stack.stop_all)

        return run

    runner_fixture.__doc__ = doc
    return pytest.fixture(runner_fixture)


run_scenario = _runner_fixture(
    "private_infra",
    "`await run_scenario(name, faults, instances)`: a fresh installation, load, the faults, the"
    " account; the result goes to the report, the scenario (with its diagnosis) is returned.",
)
run_cluster_scenario = _runner_fixture(
    "cluster_infra", "`run_scenario` on the three-broker cluster, topics replicated three times."
)
