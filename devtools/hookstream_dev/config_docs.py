"""docs/configuration.md, generated from the services' settings objects (pydantic fields and
their descriptions), so a setting documented there is one the code reads.

    .venv/bin/python -m hookstream_dev.config_docs    # rewrite docs/configuration.md

tests/deploy/test_configuration_docs.py fails while the page and the settings differ.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from hookstream_api.settings import ApiSettings
from hookstream_common.settings import CommonSettings, DeliverySettings
from hookstream_dev.infra import REPO_ROOT
from hookstream_dispatcher.settings import DispatcherSettings
from hookstream_janitor.settings import JanitorSettings
from hookstream_matcher.settings import MatcherSettings

PAGE = REPO_ROOT / "docs" / "configuration.md"


@dataclass(frozen=True)
class Section:
    """One settings class, documented with the fields it adds or changes."""

    title: str
    settings: type[BaseSettings]
    used_by: str


SECTIONS = (
    Section("Every service", CommonSettings, "api, matcher, dispatcher, janitor, migrate"),
    Section("Sending webhook requests", DeliverySettings, "api (resend), dispatcher"),
    Section("API", ApiSettings, "api"),
    Section("Matcher", MatcherSettings, "matcher"),
    Section("Dispatcher", DispatcherSettings, "dispatcher"),
    Section("Janitor", JanitorSettings, "janitor"),
)

HEADER = """# Configuration

Every setting is an environment variable, read by the service's settings object at start; a
value the service cannot use stops it with a message naming the variable. Secrets
(`DATABASE_URL`, `HOOKSTREAM_ENCRYPTION_KEYS`, `HOOKSTREAM_JWT_KEY`) belong in a Secret or
`.env`, never in a ConfigMap. Compose passes what `.env` sets (`.env.example`); Kubernetes reads
`deploy/k8s/base/config.env` and the Secret `hookstream-secrets` (docs/operations.md).

This page is generated from the settings classes
(`.venv/bin/python -m hookstream_dev.config_docs`); a test fails while it is stale. Each table
lists what its class adds to the one above it, or changes (a service's own port, say).
"""


def variable(name: str, field: FieldInfo, prefix: str) -> str:
    """The environment variable a field is read from: its first alias, or prefix + NAME."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return str(alias) if isinstance(alias, str) else f"{prefix}{name.upper()}"


def default(field: FieldInfo) -> str:
    """The default as a reader would write it: `required`, empty, or the value."""
    if field.default is PydanticUndefined and field.default_factory is None:
        return "**required**"
    value: Any = field.get_default(call_default_factory=True)
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        value = ",".join(str(item) for item in value)
    return f"`{value}`".replace("|", "\\|")


def _own_fields(settings: type[BaseSettings]) -> dict[str, FieldInfo]:
    """Fields `settings` declares itself or declares differently from its base."""
    base = settings.__mro__[1]
    inherited: dict[str, FieldInfo] = getattr(base, "model_fields", {})
    own = {}
    for name, field in settings.model_fields.items():
        before = inherited.get(name)
        if before is None or (before.default, before.description) != (
            field.default,
            field.description,
        ):
            own[name] = field
    return own


def _nested(field: FieldInfo) -> type[BaseSettings] | None:
    """The settings class of a field that is a block of settings of its own (Kafka security)."""
    kind = field.annotation
    return kind if isinstance(kind, type) and issubclass(kind, BaseSettings) else None


def _table(title: str, settings: type[BaseSettings], used_by: str) -> list[str]:
    prefix = settings.model_config.get("env_prefix", "")
    rows = [f"\n## {title}\n\nRead by: {used_by}.\n"]
    if settings.__doc__:
        rows.append(f"\n{settings.__doc__.strip().splitlines()[0]}\n")
    rows.append("\n| variable | default | what it does |\n|---|---|---|\n")
    for name, field in _own_fields(settings).items():
        if _nested(field) is None:
            about = (field.description or "").replace("|", "\\|").replace("\n", " ")
            rows.append(f"| `{variable(name, field, prefix)}` | {default(field)} | {about} |\n")
    return rows


def render() -> str:
    parts = [HEADER]
    for section in SECTIONS:
        parts += _table(section.title, section.settings, section.used_by)
        for field in _own_fields(section.settings).values():
            block = _nested(field)
            if block is not None:
                title = (field.description or block.__name__).split(":")[0].rstrip(".")
                parts += _table(title, block, section.used_by)
    return "".join(parts)


def main() -> None:
    Path(PAGE).write_text(render())


if __name__ == "__main__":
    main()
