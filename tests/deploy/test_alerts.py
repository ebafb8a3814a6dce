"""deploy/prometheus: `promtool check rules`, `promtool test rules` (a firing and a quiet test
per alert), and a runbook entry in docs/operations.md for every alert."""

import yaml
from deploy_tools import DEPLOY, REPO, run, tool

RULES = DEPLOY / "prometheus" / "alerts.yml"
TESTS = DEPLOY / "prometheus" / "alerts.test.yml"


def _alerts() -> list[dict[str, object]]:
    return [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]


def test_promtool_check_rules() -> None:
    run(tool("promtool"), "check", "rules", RULES)


def test_promtool_unit_tests() -> None:
    run(tool("promtool"), "test", "rules", TESTS, cwd=TESTS.parent)


def test_every_alert_is_tested_firing_and_quiet() -> None:
    cases = [
        case
        for test in yaml.safe_load(TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
    ]
    for alert in _alerts():
        mine = [case for case in cases if case["alertname"] == alert["alert"]]
        assert any(case["exp_alerts"] for case in mine), f"{alert['alert']} never fires"
        assert any(not case["exp_alerts"] for case in mine), f"{alert['alert']} never stays quiet"


def test_every_alert_has_a_runbook_entry() -> None:
    operations = (REPO / "docs" / "operations.md").read_text()
    for alert in _alerts():
        url, _, anchor = alert["annotations"]["runbook_url"].partition("#")
        assert url.startswith("https://") and url.endswith("/docs/operations.md"), url
        assert anchor == str(alert["alert"]).lower()
        assert f"### {alert['alert']}" in operations, f"no runbook entry for {alert['alert']}"
