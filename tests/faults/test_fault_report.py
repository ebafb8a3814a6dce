"""A selection of scenarios in the full profile rewrites only its rows of the report."""

import json
from pathlib import Path

import pytest

from hookstream_dev.chaos import results_table, rows_left_out

pytestmark = pytest.mark.faults


def row(scenario: str, lost: int = 0) -> dict[str, object]:
    return {
        "scenario": scenario,
        "faults": 1,
        "events": 10,
        "expected": 20,
        "lost": lost,
        "duplicates": 0,
        "duplicate_rate": 0.0,
        "max_fault_to_delivery_s": 12.0,
        "max_heal_to_delivery_s": 2.0,
        "restarts": {},
        "own_exits": {},
        "all_ready": True,
        "not_ready": [],
    }


def test_rows_of_scenarios_not_run_are_kept_and_name_their_run(tmp_path: Path) -> None:
    earlier = tmp_path / "reliability.json"
    earlier.write_text(
        json.dumps(
            {
                "date": "2026-11-28T15:43:05+00:00",
                "commit": "37e5cd1",
                "results": [row("sigkill-api"), row("broker-sigkill", lost=3)],
            }
        )
    )
    kept = rows_left_out(earlier, [row("broker-sigkill")])
    assert [r["scenario"] for r in kept] == ["sigkill-api"]
    table = results_table([row("broker-sigkill"), *kept])
    assert "| sigkill-api (run of 2026-11-28, commit 37e5cd1) |" in table
    assert "| broker-sigkill | 1 |" in table
    assert "| - |" in table  # the earlier run measured no longest gap


def test_no_earlier_report_keeps_nothing(tmp_path: Path) -> None:
    assert rows_left_out(tmp_path / "none.json", [row("x")]) == []
