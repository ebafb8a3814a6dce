"""The event catalogue is Qlik's types plus those of HOOKSTREAM_EVENT_TYPES_FILE."""

import asyncio
import json
from pathlib import Path

import pytest

from hookstream_api.main import create_app
from hookstream_api.routers.webhooks import list_event_types
from hookstream_api.settings import ApiSettings
from hookstream_common import catalogue
from hookstream_common.catalogue import (
    DEFAULT_EVENT_TYPES,
    CatalogueError,
    EventType,
    event_type_names,
    read_event_types,
)

INVOICE = {
    "name": "com.example.v1.invoice.paid",
    "title": "Invoice paid",
    "description": "A customer paid an invoice.",
    "category": "billing",
    "levels": ["tenant"],
}

JWT = {"jwt_key": "k" * 32, "jwt_issuer": "test", "jwt_audience": "test"}


def write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "event-types.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_the_file_adds_types_after_qliks(tmp_path: Path) -> None:
    audit = {"name": "com.example.v1.audit", "title": "Audit", "description": "", "category": "x"}
    types = read_event_types(write(tmp_path, [INVOICE, audit]))
    assert types[: len(DEFAULT_EVENT_TYPES)] == DEFAULT_EVENT_TYPES
    invoice, audit_type = types[len(DEFAULT_EVENT_TYPES) :]
    assert invoice == EventType(
        "com.example.v1.invoice.paid",
        "Invoice paid",
        INVOICE["description"],
        "billing",
        ("tenant",),
    )
    assert invoice.as_json()["levels"] == ["tenant"]
    assert audit_type.levels == ("tenant", "user")


def test_the_api_loads_the_file_at_start_and_lists_its_types(tmp_path: Path) -> None:
    app = create_app(ApiSettings(**JWT, event_types_file=write(tmp_path, [INVOICE])))
    assert INVOICE["name"] in event_type_names(app.state.event_types)
    listed = asyncio.run(list_event_types(None, app.state.event_types))["data"]  # type: ignore[arg-type]
    assert listed[-1]["name"] == INVOICE["name"]
    assert create_app(ApiSettings(**JWT)).state.event_types == DEFAULT_EVENT_TYPES
    assert INVOICE["name"] not in event_type_names()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("not json", "not a JSON array"),
        ({"name": "x"}, "not a JSON array"),
        ([{**INVOICE, "name": "has space"}], "not a JSON array"),
        ([{**INVOICE, "levels": []}], "not a JSON array"),
        ([{**INVOICE, "levels": ["everyone"]}], "not a JSON array"),
        ([{**INVOICE, "colour": "red"}], "not a JSON array"),
        ([INVOICE, INVOICE], r"named more than once: com\.example\.v1\.invoice\.paid"),
        ([{**INVOICE, "name": "com.qlik.v1.app.created"}], "more than once"),
    ],
)
def test_a_file_that_cannot_be_used_stops_the_service(
    tmp_path: Path, content: object, reason: str
) -> None:
    path = write(tmp_path, content)
    with pytest.raises(CatalogueError, match=reason):
        create_app(ApiSettings(**JWT, event_types_file=path))


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match=r"missing\.json"):
        catalogue.load(tmp_path / "missing.json")
