"""The OpenAPI document: committed in docs/openapi.json, in step with the code, and complete."""

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from hookstream_dev import openapi

PREFIXES = ("/api/v1", "/api/core")
WEBHOOK_OPERATIONS = {
    # (method, path under the prefix): (success status, response schema or None for no body)
    ("get", "/webhooks"): ("200", "WebhookList"),
    ("post", "/webhooks"): ("201", "Webhook"),
    ("get", "/webhooks/event-types"): ("200", "EventTypeList"),
    ("get", "/webhooks/{id}"): ("200", "Webhook"),
    ("patch", "/webhooks/{id}"): ("204", None),
    ("put", "/webhooks/{id}"): ("200", "Webhook"),
    ("delete", "/webhooks/{id}"): ("204", None),
    ("get", "/webhooks/{id}/deliveries"): ("200", "DeliveryList"),
    ("get", "/webhooks/{id}/deliveries/{deliveryId}"): ("200", "Delivery"),
    ("post", "/webhooks/{id}/deliveries/{deliveryId}/actions/resend"): ("201", "Delivery"),
    ("post", "/webhooks/{id}/actions/recover"): ("202", "Recovery"),
    ("get", "/webhooks/{id}/actions/recover/{recoveryId}"): ("200", "Recovery"),
    ("post", "/webhooks/{id}/actions/test"): ("201", "Delivery"),
    ("get", "/webhooks/audit"): ("200", "AuditEventList"),
    ("get", "/webhooks/{id}/audit"): ("200", "AuditEventList"),
}
ERROR_STATUSES = ("400", "401", "403", "404")
REF = "#/components/schemas/"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.build_document()


def operations(document: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Every webhook operation: (method, path under the prefix, full path, operation)."""
    return [
        (method, path, prefix + path, document["paths"][prefix + path][method])
        for prefix in PREFIXES
        for method, path in WEBHOOK_OPERATIONS
    ]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a `$ref` into components."""
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].removeprefix(REF)]
    return schema


def enum_of(document: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """The values an enum-typed schema allows, through `$ref` and `anyOf` (null left out)."""
    schema = resolve(document, schema)
    if "enum" in schema:
        return set(schema["enum"])
    if "const" in schema:
        return {schema["const"]}
    values: set[str] = set()
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        if resolve(document, option).get("type") != "null":
            values |= enum_of(document, option)
    return values


def component(document: dict[str, Any], name: str) -> dict[str, Any]:
    return document["components"]["schemas"][name]


# --- in step with the code ------------------------------------------------------------------


def test_committed_document_matches_the_code() -> None:
    # On failure: "docs/openapi.json is out of date with the code; run
    # `python -m hookstream_dev.openapi` and commit the result", then the diff.
    problem = openapi.check()
    assert problem is None, problem


def test_committed_document_is_sorted_and_indented() -> None:
    text = openapi.DOCUMENT_PATH.read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_building_the_document_connects_nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"building the OpenAPI document tried to connect: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    first, second = openapi.build_document(), openapi.build_document()
    assert openapi.render(first) == openapi.render(second)


def test_check_reports_drift_with_a_diff(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "openapi.json"
    assert openapi.main(["--check", "--output", str(path)]) == 1
    assert "does not exist" in capsys.readouterr().err

    assert openapi.main(["--output", str(path)]) == 0
    assert openapi.main(["--check", "--output", str(path)]) == 0
    capsys.readouterr()

    drifted = json.loads(path.read_text())
    drifted["info"]["title"] = "Something else"
    path.write_text(openapi.render(drifted))
    assert openapi.main(["--check", "--output", str(path)]) == 1
    err = capsys.readouterr().err
    assert "python -m hookstream_dev.openapi" in err
    lines = err.splitlines()
    assert any(line.startswith("-") and '"Something else"' in line for line in lines), err
    assert any(line.startswith("+") and '"Hookstream webhooks API"' in line for line in lines), err
    assert "1 line(s) added, 1 removed" in err


# --- complete -------------------------------------------------------------------------------


def test_every_webhook_operation_is_under_both_prefixes(document: dict[str, Any]) -> None:
    documented = {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if path.startswith(PREFIXES)
    }
    expected = {(m, prefix + p) for prefix in PREFIXES for m, p in WEBHOOK_OPERATIONS}
    assert documented == expected


def test_both_prefixes_document_the_same_operations(document: dict[str, Any]) -> None:
    for method, path in WEBHOOK_OPERATIONS:
        v1, core = (dict(document["paths"][p + path][method]) for p in PREFIXES)
        v1.pop("operationId"), core.pop("operationId")
        assert v1 == core, f"{method.upper()} {path} differs between the prefixes"


def test_success_responses(document: dict[str, Any]) -> None:
    for method, relative, path, operation in operations(document):
        success, schema_name = WEBHOOK_OPERATIONS[(method, relative)]
        successes = [s for s in operation["responses"] if s.startswith("2")]
        assert successes == [success], f"{method.upper()} {path}: {successes}"
        content = operation["responses"][success].get("content", {})
        if schema_name is None:
            assert not content, f"{method.upper()} {path} answers {success} with a body"
        else:
            schema = content["application/json"]["schema"]
            assert schema == {"$ref": REF + schema_name}, f"{method.upper()} {path}: {schema}"


def test_errors_are_documented_with_the_envelope(document: dict[str, Any]) -> None:
    for method, _, path, operation in operations(document):
        for status in ERROR_STATUSES:
            response = operation["responses"].get(status)
            assert response, f"{method.upper()} {path} does not document {status}"
            assert response["description"], f"{method.upper()} {path} {status}"
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": REF + "ErrorEnvelope"}, f"{method.upper()} {path} {status}"

    envelope = component(document, "ErrorEnvelope")
    assert set(envelope["required"]) == {"errors", "traceId"}
    assert envelope["properties"]["errors"]["items"] == {"$ref": REF + "ErrorItem"}
    assert set(component(document, "ErrorItem")["required"]) == {"code", "title", "detail"}


def test_operations_need_a_bearer_token(document: dict[str, Any]) -> None:
    schemes = document["components"].get("securitySchemes", {})
    bearer = [
        name
        for name, scheme in schemes.items()
        if scheme.get("type") == "http" and scheme.get("scheme", "").lower() == "bearer"
    ]
    assert bearer, f"no HTTP bearer security scheme in {schemes}"
    for method, _, path, operation in operations(document):
        assert operation.get("security") == [{bearer[0]: []}], f"{method.upper()} {path}"


def test_enums(document: dict[str, Any]) -> None:
    levels, origins = {"tenant", "user"}, {"api", "automations", "management-console"}
    webhook = component(document, "Webhook")["properties"]
    assert enum_of(document, webhook["level"]) == levels
    assert enum_of(document, webhook["origin"]) == origins
    for name in ("WebhookCreate", "WebhookReplace"):
        assert enum_of(document, component(document, name)["properties"]["level"]) == levels
    assert enum_of(document, component(document, "WebhookCreate")["properties"]["origin"]) == (
        origins
    )
    levels_item = component(document, "EventTypeInfo")["properties"]["levels"]["items"]
    assert enum_of(document, levels_item) == levels

    delivery = component(document, "Delivery")["properties"]
    assert enum_of(document, delivery["status"]) == {"success", "fail"}
    patch_op = component(document, "PatchOperation")["properties"]["op"]
    assert enum_of(document, patch_op) == {"add", "remove", "replace"}

    for prefix in PREFIXES:
        webhooks = {
            p["name"]: p for p in document["paths"][f"{prefix}/webhooks"]["get"]["parameters"]
        }
        assert enum_of(document, webhooks["level"]["schema"]) == levels
        deliveries = document["paths"][f"{prefix}/webhooks/{{id}}/deliveries"]["get"]
        status = {p["name"]: p for p in deliveries["parameters"]}["status"]
        assert enum_of(document, status["schema"]) == {"success", "fail"}


def test_secret_is_write_only(document: dict[str, Any]) -> None:
    for name in ("WebhookCreate", "WebhookReplace"):
        assert component(document, name)["properties"]["secret"].get("writeOnly") is True
    webhook = component(document, "Webhook")["properties"]
    assert "secret" not in webhook and "secretKeyAdded" in webhook
