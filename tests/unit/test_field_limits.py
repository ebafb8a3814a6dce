"""Every string a client sends has a maximum, in the OpenAPI document and in validation."""

from typing import Any

import pytest
from pydantic import ValidationError

from hookstream_api.schemas import PatchOperation, WebhookCreate, WebhookReplace
from hookstream_api.settings import ApiSettings
from hookstream_api.validation import InvalidInput, check_owner_id
from hookstream_common.webhook_fields import (
    MAX_DESCRIPTION,
    MAX_EVENT_TYPE,
    MAX_EVENT_TYPES,
    MAX_FILTER,
    MAX_HEADER_NAME,
    MAX_HEADER_VALUE,
    MAX_HEADERS,
    MAX_NAME,
    MAX_OWNER_ID,
    MAX_URL,
)
from hookstream_dev import openapi

REF = "#/components/schemas/"
GOOD = {"name": "n", "url": "https://hooks.example.com/", "eventTypes": ["com.qlik.v1.app.created"]}


def strings_without_maximum(document: dict[str, Any], schema: dict[str, Any], at: str) -> list[str]:
    """Where a string schema, reached through refs, unions, items and maps, has no maxLength."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(REF)
        return strings_without_maximum(document, document["components"]["schemas"][name], at)
    found = []
    if schema.get("type") == "string" and not (
        "maxLength" in schema or "enum" in schema or schema.get("format") == "date-time"
    ):
        found.append(at)
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            found += strings_without_maximum(document, option, at)
    for key in ("items", "additionalProperties", "propertyNames"):
        if isinstance(schema.get(key), dict):
            found += strings_without_maximum(document, schema[key], f"{at}.{key}")
    for name, child in schema.get("properties", {}).items():
        found += strings_without_maximum(document, child, f"{at}.{name}")
    return found


def test_every_string_a_client_sends_has_a_documented_maximum() -> None:
    document = openapi.build_document()
    unbounded = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "path":  # ids: a UUID or a 404
                    at = f"{where} ?{parameter['name']}"
                    unbounded += strings_without_maximum(document, parameter["schema"], at)
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                unbounded += strings_without_maximum(document, body["schema"], f"{where} body")
    assert unbounded == []


def test_query_parameters_at_their_maximum_fit_in_the_url_limit() -> None:
    """So a parameter one character too long is a 400 that names it, not a 414."""
    document = openapi.build_document()
    url_limit = ApiSettings.model_fields["max_url_bytes"].default
    for path, item in document["paths"].items():
        for method, operation in item.items():
            query = [p for p in operation.get("parameters", []) if p["in"] == "query"]
            longest = len(path) + 1 + 36 * path.count("{")  # ids are UUIDs
            for parameter in query:
                longest += len(parameter["name"]) + 2 + widest_value(document, parameter["schema"])
            assert longest < url_limit, f"{method.upper()} {path}: {longest} bytes"


def widest_value(document: dict[str, Any], schema: dict[str, Any]) -> int:
    """The longest value a query parameter's schema allows, in URL bytes (ASCII)."""
    if "$ref" in schema:
        return widest_value(
            document, document["components"]["schemas"][schema["$ref"].removeprefix(REF)]
        )
    if "anyOf" in schema:
        return max(widest_value(document, option) for option in schema["anyOf"])
    if "enum" in schema:
        return max(len(str(value)) for value in schema["enum"])
    if schema.get("format") == "date-time":
        return len("2026-11-28T08:00:00.000000+00:00")
    return schema.get("maxLength", 5)  # numbers, booleans, null


def test_lists_and_maps_have_a_documented_maximum() -> None:
    document = openapi.build_document()
    for model in ("WebhookCreate", "WebhookReplace"):
        properties = document["components"]["schemas"][model]["properties"]
        assert properties["eventTypes"]["maxItems"] == MAX_EVENT_TYPES
        assert properties["headers"]["maxProperties"] == MAX_HEADERS
        assert properties["encryptedHeaders"]["maxProperties"] == MAX_HEADERS
    patch = document["paths"]["/api/v1/webhooks/{id}"]["patch"]["requestBody"]
    assert patch["content"]["application/json"]["schema"]["maxItems"] == 100


@pytest.mark.parametrize(
    ("field", "longest"),
    [
        ("name", "n" * MAX_NAME),
        ("description", "d" * MAX_DESCRIPTION),
        ("url", "https://hooks.example.com/" + "p" * (MAX_URL - 26)),
        ("ownerId", "o" * MAX_OWNER_ID),
        ("filter", "f" * MAX_FILTER),
        ("secret", "s" * 64),
        ("eventTypes", ["e" * MAX_EVENT_TYPE] * MAX_EVENT_TYPES),
        ("headers", {"h" * MAX_HEADER_NAME: "v" * MAX_HEADER_VALUE}),
        ("encryptedHeaders", {f"X-{i}": "v" for i in range(MAX_HEADERS)}),
    ],
)
def test_each_field_takes_its_maximum_and_not_one_more(field: str, longest: Any) -> None:
    for model in (WebhookCreate, WebhookReplace):
        model.model_validate({**GOOD, field: longest})
        with pytest.raises(ValidationError, match=field):
            model.model_validate({**GOOD, field: one_more(longest)})


def one_more(value: Any) -> Any:
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return [*value, value[0]]
    if len(value) == 1:
        [(name, text)] = value.items()
        return {name: text + "x"}
    return {**value, "X-extra": "v"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "a\x00b"),
        ("name", "line\nbreak"),
        ("description", "nul \x00"),
        ("url", "https://hooks.example.com/a b"),
        ("ownerId", "u\x1b"),
        ("filter", 'id eq "\x01"'),
        ("secret", "s" * 31 + "\x7f"),
        ("eventTypes", ["com.qlik.v1.app created"]),
        ("headers", {"X Bad": "v"}),
        ("headers", {"X-Ok": "v\r\nInjected: 1"}),
        ("encryptedHeaders", {"X-Ok": "\x00"}),
        ("name", "\ud800"),
    ],
)
def test_control_characters_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=field):
        WebhookCreate.model_validate({**GOOD, field: value})


def test_multi_line_text_keeps_tabs_and_line_breaks() -> None:
    body = {**GOOD, "description": "a\tb\r\nc", "filter": 'id eq "a"\n'}
    webhook = WebhookCreate.model_validate(body)
    assert (webhook.description, webhook.filter) == ("a\tb\r\nc", 'id eq "a"\n')


def test_patch_pointer_is_bounded() -> None:
    PatchOperation.model_validate({"op": "replace", "path": "/" + "p" * 511, "value": 1})
    with pytest.raises(ValidationError):
        PatchOperation.model_validate({"op": "replace", "path": "/" + "p" * 512, "value": 1})


def test_owner_id_from_the_token_is_checked_too() -> None:
    check_owner_id("u" * MAX_OWNER_ID)
    with pytest.raises(InvalidInput, match="ownerId"):
        check_owner_id("u" * (MAX_OWNER_ID + 1))
    with pytest.raises(InvalidInput, match="control"):
        check_owner_id("u\x00")
