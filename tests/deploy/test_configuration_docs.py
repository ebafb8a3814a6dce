"""docs/configuration.md is what the settings objects say now: run
`.venv/bin/python -m hookstream_dev.config_docs` after adding or changing a setting."""

from hookstream_dev import config_docs


def test_configuration_page_is_current() -> None:
    assert config_docs.PAGE.read_text() == config_docs.render()


def test_every_setting_is_described_once() -> None:
    """Each variable appears in one table, with a description (the settings rule)."""
    rows = [line for line in config_docs.render().splitlines() if line.startswith("| `")]
    names = [row.split("`")[1] for row in rows]
    assert len(names) == len(set(names)), "a variable is documented twice"
    assert all(not row.endswith("|  |") for row in rows), "a setting has no description"
    for name in ("HOOKSTREAM_OPS_PORT", "HOOKSTREAM_JWT_ISSUER", "DATABASE_URL"):
        assert name in names
