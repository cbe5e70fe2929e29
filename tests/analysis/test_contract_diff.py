"""Contract changes between two inferred schemas, and which of them break clients."""

from __future__ import annotations

from typing import Any

from rsproxy.analysis.contract_diff import diff, flatten
from rsproxy.analysis.schema import infer, merge


def _schema(*samples: Any) -> dict[str, Any]:
    schema = infer(samples[0])
    for sample in samples[1:]:
        schema = merge(schema, infer(sample))
    return schema


def _changes(before: Any, after: Any, direction: str = "response") -> dict[tuple[str, str], bool]:
    found = diff(before, after, direction)  # type: ignore[arg-type]
    return {(c["path"], c["change"]): c["breaking"] for c in found}


def test_flatten_names_properties_items_and_map_values() -> None:
    schema = _schema({"id": 1, "tags": ["a"], "by_id": {"17": {"n": 1}}, "note": None})
    paths = flatten(schema)
    assert set(paths) == {
        "$",
        "$.id",
        "$.tags",
        "$.tags[]",
        "$.by_id",
        "$.by_id{}",
        "$.by_id{}.n",
        "$.note",
    }
    assert paths["$.id"].types == frozenset({"integer"}) and paths["$.id"].required


def test_identical_contracts_have_no_changes() -> None:
    schema = _schema({"id": 1, "name": "a"}, {"id": 2, "name": None})
    assert diff(schema, schema, "response") == []


def test_response_changes_that_break_readers_and_those_that_do_not() -> None:
    before = _schema({"id": 1, "name": "a", "price": 3, "owner": {"id": 1, "email": "a@b.io"}})
    after = _schema(
        {"id": 1, "name": None, "price": 3.5, "extra": True},
        {"id": 2, "name": "b", "price": 3, "extra": False},
    )
    assert _changes(before, after) == {
        ("$.extra", "added"): False,
        ("$.owner", "removed"): True,  # reported once, not again for owner.id and owner.email
        ("$.name", "nullable"): True,
        ("$.price", "widened"): True,
    }


def test_a_field_that_became_optional_breaks_readers_but_not_writers() -> None:
    before = _schema({"id": 1, "note": "x"})
    after = _schema({"id": 1, "note": "x"}, {"id": 2})
    assert _changes(before, after, "response") == {("$.note", "optional"): True}
    assert _changes(before, after, "request") == {("$.note", "optional"): False}


def test_a_new_required_request_field_breaks_writers() -> None:
    before = _schema({"items": [{"sku": "a"}]})
    after = _schema({"items": [{"sku": "a", "qty": 1}], "currency": "EUR"})
    assert _changes(before, after, "request") == {
        ("$.currency", "added"): True,
        ("$.items[].qty", "added"): True,
    }
    assert _changes(before, after, "response") == {
        ("$.currency", "added"): False,
        ("$.items[].qty", "added"): False,
    }


def test_a_retyped_field_breaks_both_directions() -> None:
    before, after = _schema({"score": 1}), _schema({"score": "1"})
    assert _changes(before, after, "response") == {("$.score", "type_changed"): True}
    assert _changes(before, after, "request") == {("$.score", "type_changed"): True}


def test_a_lost_string_format_is_told() -> None:
    before = _schema({"at": "2024-05-01T10:00:00Z"})
    after = _schema({"at": "2024-05-01T10:00:00Z"}, {"at": "yesterday"})
    assert _changes(before, after) == {("$.at", "format_changed"): True}


def test_a_side_without_a_body_tells_nothing() -> None:
    assert diff(None, _schema({"a": 1}), "response") == []
    assert diff(_schema({"a": 1}), None, "request") == []
