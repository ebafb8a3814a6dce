"""What an audit row names: the fields a change touched, and which action it was."""

import pytest

from hookstream_common.audit import changed_fields, update_action

BEFORE = {
    "name": "hook",
    "url": "https://a.example.com/",
    "eventTypes": ["com.qlik.v1.app.created"],
    "enabled": True,
    "headers": {},
    "encryptedHeaders": {"X-Key": "old"},
    "secret": "s" * 40,
}


def test_only_the_fields_whose_values_differ_are_named_sorted() -> None:
    after = BEFORE | {"url": "https://b.example.com/", "eventTypes": ["com.qlik.v1.app.deleted"]}
    assert changed_fields(BEFORE, after) == ["eventTypes", "url"]
    assert changed_fields(BEFORE, dict(BEFORE)) == []


def test_values_never_leave_only_names() -> None:
    after = BEFORE | {"encryptedHeaders": {"X-Key": "new"}, "secret": "n" * 40}
    changed = changed_fields(BEFORE, after)
    assert changed == ["encryptedHeaders", "secret"]
    assert not {"old", "new", "s" * 40, "n" * 40} & set(changed)


def test_an_empty_value_is_the_same_as_an_absent_one() -> None:
    assert changed_fields({"headers": {}, "filter": None}, {"description": ""}) == []
    assert changed_fields({}, {"enabled": False}) == ["enabled"]


def test_a_create_names_every_field_it_set() -> None:
    assert changed_fields({}, BEFORE) == sorted(set(BEFORE) - {"headers"})


@pytest.mark.parametrize(
    ("changed", "enabled", "action"),
    [
        (["enabled"], False, "disable"),
        (["enabled", "url"], True, "enable"),
        (["secret"], True, "rotateSecret"),
        (["secret", "secretRotationGraceSeconds"], False, "rotateSecret"),
        (["name", "secret"], True, "update"),
        (["name", "url"], True, "update"),
        ([], True, "update"),
    ],
)
def test_the_action_is_the_most_telling_effect(
    changed: list[str], enabled: bool, action: str
) -> None:
    assert update_action(changed, enabled) == action
