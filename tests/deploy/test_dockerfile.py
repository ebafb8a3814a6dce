"""The Dockerfile: hadolint's rules, and the properties the deployment relies on, read with the
official Dockerfile parser (`dockerfile`, a binding of moby/buildkit's)."""

import re
import sys
import tomllib
from pathlib import Path

import dockerfile
from deploy_tools import REPO, run

HADOLINT = Path(sys.executable).with_name("hadolint")
PINNED_PYTHON = re.compile(r"^python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?$")


def _stages() -> dict[str, list[dockerfile.Command]]:
    stages: dict[str, list[dockerfile.Command]] = {}
    current: list[dockerfile.Command] = []
    for command in dockerfile.parse_file(str(REPO / "Dockerfile")):
        if command.cmd == "FROM":
            current = [command]
            stages[command.value[-1]] = current
        else:
            current.append(command)
    return stages


def test_hadolint_is_clean() -> None:
    run(HADOLINT, "--failure-threshold", "info", REPO / "Dockerfile")


def test_one_pinned_base_and_a_runtime_stage_last() -> None:
    stages = _stages()
    assert list(stages)[-1] == "runtime", "a plain `docker build` must produce the service image"
    bases = {commands[0].value[0] for commands in stages.values()} - set(stages)
    assert len(bases) == 1 and PINNED_PYTHON.match(bases.pop())


def test_final_stage_is_non_root_and_has_no_build_tools() -> None:
    runtime = _stages()["runtime"]
    users = [command.value[0] for command in runtime if command.cmd == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert not [command for command in runtime if command.cmd == "RUN"], "nothing is built here"
    copies = [command for command in runtime if command.cmd == "COPY"]
    assert copies and all("--from=build" in command.flags for command in copies)


def test_the_commands_the_image_runs_exist() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for name in ("hookstream", "hookstream-api", "hookstream-matcher", "hookstream-dispatcher"):
        assert name in scripts
    assert "hookstream-janitor" in scripts
    cli = (REPO / "clients/python/hookstream_client/cli.py").read_text()
    assert 'add_parser("migrate"' in cli


def test_dockerignore_keeps_secrets_and_state_out() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".hookstream", ".env", "tests"):
        assert entry in ignored


def test_dependencies_come_from_the_lock_before_the_sources() -> None:
    """uv.lock alone decides the installed versions, and a source change reuses the layer that
    installed them: the sources are copied only after that step."""
    build = _stages()["build"]
    steps = [(command.cmd, " ".join(command.value)) for command in build]
    copied = [value for cmd, value in steps if cmd == "COPY"]
    assert copied[0].split()[:2] == ["pyproject.toml", "uv.lock"]
    assert ". ." not in copied, "COPY . . would reinstall everything on any change"
    deps = next(i for i, (cmd, value) in enumerate(steps) if "--no-install-project" in value)
    sources = next(i for i, (cmd, value) in enumerate(steps) if value.startswith("services"))
    assert deps < sources
    assert all("--frozen" in value for cmd, value in steps if "uv sync" in value)


def test_downloads_get_the_ca_bundle_as_a_secret_and_nothing_copies_it() -> None:
    """Behind a TLS-intercepting proxy the build needs its CA; it is mounted, never a layer."""
    commands = [command for commands in _stages().values() for command in commands[1:]]
    for command in commands:
        text = " ".join(command.value)
        if command.cmd == "RUN" and ("pip install" in text or "uv " in text):
            assert "--mount=type=secret,id=ca-bundle" in command.flags, text
        if command.cmd in ("COPY", "ADD"):
            assert "ca-certificates" not in text and ".crt" not in text and ".pem" not in text


def test_the_image_carries_oci_labels() -> None:
    labels = [command.value for command in _stages()["base"] if command.cmd == "LABEL"]
    keys = {pair for value in labels for pair in value[::2]}
    for key in ("title", "description", "version", "revision", "source"):
        assert f"org.opencontainers.image.{key}" in keys
