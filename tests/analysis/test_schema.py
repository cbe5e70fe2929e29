"""JSON Schema inference and merging (rsproxy/analysis/schema.py).

Each rule of the merge is pinned with the smallest samples that show it, and two properties are
checked over a varied set of real-looking API bodies: every sample validates against the
merged schema (with format checking), and the merge does not depend on the order samples
arrive in.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from rsproxy.analysis.schema import (
    Limits,
    SchemaAccumulator,
    infer,
    infer_text,
    merge,
    object_of_texts,
    string_format,
)


def contract(*samples: Any, limits: Limits | None = None) -> dict[str, Any]:
    acc = SchemaAccumulator(limits=limits or Limits())
    for sample in samples:
        acc.add(sample)
    assert acc.samples == len(samples)
    assert acc.schema is not None
    return acc.schema


def canonical(schema: Any) -> Any:
    """The schema with property order and required order ignored (they follow arrival order)."""
    if isinstance(schema, dict):
        out = {k: canonical(v) for k, v in schema.items()}
        if "required" in out:
            out["required"] = sorted(out["required"])
        if "properties" in out:
            out["properties"] = dict(sorted(out["properties"].items()))
        return out
    if isinstance(schema, list):
        return [canonical(v) for v in schema]
    return schema


# ---- one sample ------------------------------------------------------------------------------


def test_scalars_get_their_json_types() -> None:
    assert infer(None) == {"type": "null"}
    assert infer(True) == {"type": "boolean"}
    assert infer(False) == {"type": "boolean"}
    assert infer(0) == {"type": "integer"}
    assert infer(-12) == {"type": "integer"}
    assert infer(1.5) == {"type": "number"}
    # 10.0 comes from a serializer holding a float: that field is a number, not an integer
    assert infer(json.loads("10.0")) == {"type": "number"}
    assert infer("plain") == {"type": "string"}


def test_an_object_requires_every_key_it_has() -> None:
    assert infer({"id": 1, "name": "a"}) == {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
        "required": ["id", "name"],
    }
    assert infer({}) == {"type": "object"}


def test_an_array_merges_its_items_and_an_empty_one_says_nothing_about_them() -> None:
    assert infer([1, 2, 3]) == {"type": "array", "items": {"type": "integer"}}
    assert infer([]) == {"type": "array"}
    assert infer([1, 2.5]) == {"type": "array", "items": {"type": "number"}}


# ---- required, optional, nullable --------------------------------------------------------------


def test_a_key_missing_from_one_sample_is_optional() -> None:
    schema = contract({"id": 1, "nickname": "x"}, {"id": 2})
    assert schema["required"] == ["id"]
    assert schema["properties"]["nickname"] == {"type": "string"}


def test_an_empty_object_makes_every_key_optional() -> None:
    schema = contract({"a": 1}, {})
    assert "required" not in schema
    assert schema["properties"] == {"a": {"type": "integer"}}


def test_null_beside_a_type_makes_it_nullable_not_optional() -> None:
    schema = contract({"email": "a@b.co"}, {"email": None})
    assert schema["required"] == ["email"]
    assert schema["properties"]["email"] == {"type": ["string", "null"], "format": "email"}


def test_a_field_that_is_only_ever_null_stays_null() -> None:
    assert contract({"x": None}, {"x": None})["properties"]["x"] == {"type": "null"}


def test_nullable_and_optional_at_once() -> None:
    schema = contract({"id": 1, "bio": None}, {"id": 2, "bio": "hi"}, {"id": 3})
    assert schema["required"] == ["id"]
    assert schema["properties"]["bio"] == {"type": ["string", "null"]}


# ---- numbers and unions --------------------------------------------------------------------------


@pytest.mark.parametrize("order", [(1, 2.5), (2.5, 1)])
def test_integer_widens_to_number_in_either_order(order: tuple[Any, Any]) -> None:
    assert contract(*({"price": v} for v in order))["properties"]["price"] == {"type": "number"}


def test_integer_number_and_null_give_a_nullable_number() -> None:
    schema = contract({"n": 1}, {"n": None}, {"n": 0.5})
    assert schema["properties"]["n"] == {"type": ["number", "null"]}


def test_different_scalar_types_give_a_type_list_in_a_fixed_order() -> None:
    assert contract("a", 1, None, True) == {"type": ["string", "integer", "boolean", "null"]}
    assert contract(True, None, 1, "a") == {"type": ["string", "integer", "boolean", "null"]}


def test_one_structured_type_beside_scalars_keeps_its_keywords_in_a_type_list() -> None:
    schema = contract({"a": 1}, "text")
    assert schema == {
        "type": ["object", "string"],
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
    }


def test_object_and_array_become_any_of_with_null_as_its_own_branch() -> None:
    schema = contract({"a": 1}, [1], None)
    assert schema == {
        "anyOf": [
            {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            {"type": "array", "items": {"type": "integer"}},
            {"type": "null"},
        ]
    }
    # and it keeps merging: a second object joins the object branch
    acc = SchemaAccumulator(schema, 3)
    acc.add({"b": "x"})
    assert acc.schema == {
        "anyOf": [
            {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
            },
            {"type": "array", "items": {"type": "integer"}},
            {"type": "null"},
        ]
    }


# ---- arrays of objects ---------------------------------------------------------------------------


def test_array_items_with_differing_keys_merge_item_wise() -> None:
    schema = infer(
        [
            {"id": 1, "tag": "a"},
            {"id": 2, "tag": None, "extra": {"deep": 1}},
            {"id": 3.5},
        ]
    )
    assert schema == {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "id": {"type": "number"},
                "tag": {"type": ["string", "null"]},
                "extra": {
                    "type": "object",
                    "properties": {"deep": {"type": "integer"}},
                    "required": ["deep"],
                },
            },
            "required": ["id"],
        },
    }


def test_arrays_across_samples_merge_and_an_empty_array_does_not_make_item_keys_optional() -> None:
    schema = contract({"items": []}, {"items": [{"a": 1, "b": 2}]}, {"items": [{"a": 3}]})
    items = schema["properties"]["items"]
    assert items["items"]["required"] == ["a"]
    assert set(items["items"]["properties"]) == {"a", "b"}


# ---- maps ----------------------------------------------------------------------------------------


def test_an_object_keyed_by_ids_is_a_map_not_a_property_per_id() -> None:
    schema = contract(
        {"byId": {"17": {"name": "a"}, "18": {"name": "b", "x": 1}}},
        {"byId": {"6f1c2a3b-0000-4000-8000-000000000001": {"name": "c"}}},
    )
    assert schema["properties"]["byId"] == {
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "x": {"type": "integer"}},
            "required": ["name"],
        },
    }


def test_words_as_keys_are_properties() -> None:
    assert "properties" in infer({"draft": 1, "published": 2})


# ---- string formats ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("2024-05-01T12:30:00Z", "date-time"),
        ("2024-05-01T12:30:00.123+02:00", "date-time"),
        ("2024-05-01", "date"),
        ("someone@example.com", "email"),
        ("6F1C2A3B-0000-4000-8000-00000000000A", "uuid"),
        ("https://example.com/a?b=c", "uri"),
        ("ftp://files.example.org", "uri"),
        # look alike, but are not exactly the format: no format is claimed
        ("2024-05-01T12:30:00", None),  # no offset: not RFC 3339
        ("2024-02-30", None),  # not a day of the calendar
        ("2024-13-01", None),
        ("2024-05-01 12:30", None),
        ("not an email@", None),
        ("a@b", None),
        ("/relative/path", None),
        ("example.com", None),
        ("6f1c2a3b00004000800000000000000a", None),
        ("hello", None),
        ("", None),
    ],
)
def test_string_formats_are_claimed_only_when_exact(text: str, fmt: str | None) -> None:
    assert string_format(text) == fmt
    assert infer(text) == ({"type": "string", "format": fmt} if fmt else {"type": "string"})


def test_a_format_survives_only_if_every_sample_has_it() -> None:
    assert contract("2024-05-01", "2024-06-01") == {"type": "string", "format": "date"}
    assert contract("2024-05-01", "2024-06-01T00:00:00Z") == {"type": "string"}
    assert contract("a@b.co", "") == {"type": "string"}


def test_text_values_are_typed_by_what_they_spell() -> None:
    assert infer_text("42") == {"type": "integer"}
    assert infer_text("-3") == {"type": "integer"}
    assert infer_text("0") == {"type": "integer"}
    assert infer_text("007") == {"type": "string"}  # a leading zero: a code, not a number
    assert infer_text("2.50") == {"type": "number"}
    assert infer_text("true") == {"type": "boolean"}
    assert infer_text("2024-05-01") == {"type": "string", "format": "date"}
    assert infer_text("") == {"type": "string"}


def test_a_query_string_becomes_an_object_sample_and_a_repeated_field_an_array() -> None:
    sample = object_of_texts({"page": "2", "tag": ["a", "b"], "q": ""})
    assert sample == {
        "type": "object",
        "properties": {
            "page": {"type": "integer"},
            "tag": {"type": "array", "items": {"type": "string"}},
            "q": {"type": "string"},
        },
        "required": ["page", "tag", "q"],
    }
    assert object_of_texts({}) == {"type": "object"}
    acc = SchemaAccumulator()
    acc.add_schema(object_of_texts({"page": "1"}))
    acc.add_schema(object_of_texts({}))
    assert acc.schema == {"type": "object", "properties": {"page": {"type": "integer"}}}


# ---- bounds --------------------------------------------------------------------------------------


def test_depth_is_capped() -> None:
    nested: Any = "leaf"
    for _ in range(50):
        nested = {"child": nested}
    schema = infer(nested, Limits(max_depth=3))
    assert schema["properties"]["child"]["properties"]["child"]["properties"]["child"] == {}
    assert len(json.dumps(schema)) < 300


def test_properties_per_object_are_capped_within_a_sample_and_across_samples() -> None:
    limits = Limits(max_properties=3)
    one = infer({f"k{i}": i for i in range(10)}, limits)
    assert list(one["properties"]) == ["k0", "k1", "k2"]
    merged = contract({"a": 1, "b": 1, "c": 1}, {"d": 1, "e": 1}, limits=limits)
    assert list(merged["properties"]) == ["a", "b", "c"]
    assert "required" not in merged


def test_array_items_looked_at_per_sample_are_capped() -> None:
    schema = infer([1] * 5 + ["late"], Limits(max_array_items=5))
    assert schema == {"type": "array", "items": {"type": "integer"}}


def test_nodes_per_sample_are_capped() -> None:
    body = {"rows": [{f"c{i}": {"v": i} for i in range(20)} for _ in range(20)]}
    schema = infer(body, Limits(max_nodes=30))
    assert len(json.dumps(schema)) < 2_000


def test_any_absorbs_everything_it_meets() -> None:
    assert merge({}, {"type": "string"}) == {}
    assert merge({"type": "object"}, {}) == {}


# ---- the merge as a whole ------------------------------------------------------------------------

SAMPLES: list[Any] = [
    {
        "id": 1,
        "email": "ann@example.com",
        "name": "Ann",
        "created_at": "2024-05-01T10:00:00Z",
        "score": 3,
        "tags": ["a"],
        "address": {"city": "Oslo", "zip": "0150"},
        "orders": [{"id": 10, "total": 12.5, "items": [{"sku": "x", "qty": 1}]}],
    },
    {
        "id": 2,
        "email": None,
        "name": "Bob",
        "created_at": "2024-05-02T11:00:00+01:00",
        "score": 4.5,
        "tags": [],
        "orders": [],
        "nickname": "bobby",
    },
    {
        "id": 3,
        "email": "cy@example.org",
        "name": None,
        "created_at": "2024-05-03T12:00:00Z",
        "score": None,
        "tags": ["b", "c"],
        "address": None,
        "orders": [{"id": 11, "total": 3, "coupon": None}, {"id": 12, "total": 4, "coupon": "X"}],
        "links": {"self": "https://api.example.com/users/3"},
    },
    {
        "id": 4,
        "email": "dee@example.net",
        "name": "Dee",
        "created_at": "2024-05-04T12:00:00Z",
        "tags": ["d"],
        "orders": [{"id": 13, "total": 1, "items": []}],
        "meta": {"42": {"seen": True}, "43": {"seen": False, "at": "2024-05-04"}},
    },
]


def test_the_merged_contract_of_varied_bodies_is_exact() -> None:
    schema = contract(*SAMPLES)
    assert canonical(schema) == canonical(
        {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "email": {"type": ["string", "null"], "format": "email"},
                "name": {"type": ["string", "null"]},
                "created_at": {"type": "string", "format": "date-time"},
                "score": {"type": ["number", "null"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "address": {
                    "type": ["object", "null"],
                    "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                    "required": ["city", "zip"],
                },
                "orders": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "integer"},
                            "total": {"type": "number"},
                            "items": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "sku": {"type": "string"},
                                        "qty": {"type": "integer"},
                                    },
                                    "required": ["sku", "qty"],
                                },
                            },
                            "coupon": {"type": ["string", "null"]},
                        },
                        "required": ["id", "total"],
                    },
                },
                "nickname": {"type": "string"},
                "links": {
                    "type": "object",
                    "properties": {"self": {"type": "string", "format": "uri"}},
                    "required": ["self"],
                },
                "meta": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {
                            "seen": {"type": "boolean"},
                            "at": {"type": "string", "format": "date"},
                        },
                        "required": ["seen"],
                    },
                },
            },
            "required": ["id", "email", "name", "created_at", "tags", "orders"],
        }
    )


def test_every_sample_validates_against_the_merged_contract() -> None:
    schema = contract(*SAMPLES)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    for sample in SAMPLES:
        assert not list(validator.iter_errors(sample)), sample
    # and it still says something: a wrong type or a missing required key fails
    assert list(validator.iter_errors({**SAMPLES[0], "id": "1"}))
    assert list(validator.iter_errors({k: v for k, v in SAMPLES[0].items() if k != "name"}))


def test_the_merge_does_not_depend_on_arrival_order() -> None:
    expected = canonical(contract(*SAMPLES))
    for order in itertools.permutations(SAMPLES):
        assert canonical(contract(*order)) == expected


def test_merge_is_idempotent_and_a_repeated_sample_changes_nothing() -> None:
    acc = SchemaAccumulator()
    assert acc.add(SAMPLES[0]) is True
    assert acc.add(SAMPLES[1]) is True
    before = json.dumps(acc.schema, sort_keys=True)
    assert acc.add(SAMPLES[0]) is False
    assert acc.add(SAMPLES[1]) is False
    assert json.dumps(acc.schema, sort_keys=True) == before
    assert acc.samples == 4
    schema = acc.schema
    assert merge(schema, schema) is schema


def test_state_round_trips_through_json_and_keeps_merging() -> None:
    acc = SchemaAccumulator()
    acc.add(SAMPLES[0])
    acc.add(SAMPLES[1])
    restored = SchemaAccumulator.from_state(json.loads(json.dumps(acc.state())))
    assert restored.samples == 2 and restored.schema == acc.schema
    restored.add(SAMPLES[2])
    acc.add(SAMPLES[2])
    assert restored.schema == acc.schema
    assert SchemaAccumulator.from_state(None).schema is None


def test_accumulators_merge_into_one() -> None:
    left, right = SchemaAccumulator(), SchemaAccumulator()
    left.add({"a": 1})
    right.add({"a": 2.5, "b": None})
    right.add({"a": 3})
    left.merge_from(right)
    assert left.samples == 3
    assert left.schema == {
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "null"}},
        "required": ["a"],
    }
