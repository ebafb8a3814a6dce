"""The generated files are what deploy/generate.py makes now (like the OpenAPI drift test):
run `.venv/bin/python deploy/generate.py` after changing a panel or an alert."""

import importlib.util
from types import ModuleType

from deploy_tools import DEPLOY


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_generate", DEPLOY / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dashboard_json_is_current() -> None:
    generator = _generator()
    assert generator.DASHBOARD_JSON.read_text() == generator.dashboard_text()


def test_prometheus_rule_is_current() -> None:
    generator = _generator()
    assert generator.PROMETHEUS_RULE.read_text() == generator.prometheus_rule_text()


def test_dashboard_has_the_rows_the_operators_need() -> None:
    board = _generator().build_dashboard()
    rows = [panel["title"] for panel in board["panels"] if panel["type"] == "row"]
    assert rows == ["Overview", "Lag and backlog", "Failures and retries", "API", "Janitor"]
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"]
            for target in panel["targets"]:
                assert 'namespace=~"$namespace"' in target["expr"], target["expr"]
    variables = [variable["name"] for variable in board["templating"]["list"]]
    assert variables == ["datasource", "namespace"]
