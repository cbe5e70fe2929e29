"""JSON Schema inference from JSON samples, and the merge that folds samples into one contract.

``infer(value)`` describes one sample; ``merge(a, b)`` is the least schema both ``a`` and ``b``
fit, so a contract is the merge of every sample seen, in any order (merge is a join:
commutative, associative and idempotent — folding in a sample already seen changes nothing,
which is why a caller may skip repeated bodies). What the merge decides:

* required vs optional — an object key is required when every sample of that object had it; a
  key absent from one sample (including an empty ``{}``) is optional;
* nullable — ``null`` seen beside a type gives a type list: ``{"type": ["string", "null"]}``;
* unions — several types give a type list when at most one of them carries keywords (an
  object's properties, an array's items, a string's format), else ``anyOf`` with one branch per
  type;
* integer vs number — ``integer`` widens to ``number`` once a non-integral number is seen;
* arrays — items are merged item-wise (an array of objects with differing keys gives one item
  object whose keys are required only when every item had them); an empty array tells nothing
  about its items;
* maps — an object whose keys are all ids (``{"42": {...}, "43": {...}}``) is a map, described
  by ``additionalProperties``, not a property per id;
* string formats — ``date-time``, ``date``, ``email``, ``uuid``, ``uri``, claimed only when the
  text is exactly that (RFC 3339 with an offset, a real calendar date, ...) in every sample.

Size and cost are bounded: ``Limits`` caps the depth, the properties kept per object, the array
items looked at per sample and the nodes made per sample; beyond a cap a value is described as
``{}`` (anything) or left out, never walked. ``SchemaAccumulator`` keeps a running schema and its
sample count, and its state is plain JSON so it survives a restart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

Schema = dict[str, Any]

# The order types are listed in a type list or anyOf, so equal contracts print alike.
_TYPE_ORDER = ("object", "array", "string", "integer", "number", "boolean", "null")
_RANK = {name: n for n, name in enumerate(_TYPE_ORDER)}
# Keywords that belong to one type when a schema is split by type.
_OBJECT_KEYWORDS = ("properties", "required", "additionalProperties")
# Types whose schema is only {"type": ...}: nothing to merge beyond the type itself.
_PLAIN = frozenset({"integer", "number", "boolean", "null"})


@dataclass(frozen=True)
class Limits:
    """Caps that keep one schema small and one sample cheap, whatever the body holds."""

    max_depth: int = 12  # nesting below this is described as {} (anything)
    max_properties: int = 200  # keys kept per object; later keys are left out
    max_array_items: int = 20  # items of one array inferred per sample (the first ones)
    max_nodes: int = 2_000  # schema nodes made for one sample; past it, values become {}


DEFAULT_LIMITS = Limits()


# ---- string formats ----------------------------------------------------------------------------

_DATE = re.compile(r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])\Z")
_DATE_TIME = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])[Tt](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    r"(?:\.\d{1,9})?(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)\Z"
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\Z"
)
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@]+(?:[/?#][^\s]*)?\Z")
# Map keys: numbers, UUIDs, Mongo ObjectIds and long hex hashes; never words.
_ID_KEY = re.compile(
    r"(?:\d+|[0-9a-f]{16,64}"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\Z"
)
_INTEGER_TEXT = re.compile(r"-?(?:0|[1-9]\d{0,17})\Z")
_NUMBER_TEXT = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?\Z")


def string_format(text: str) -> str | None:
    """The JSON Schema format ``text`` is an exact instance of, or None.

    Conservative on purpose: a format claimed wrongly would make valid responses fail a
    generated client's validation, while a missing one costs nothing. Cheap tests on length and
    a telling character come first, so most strings never reach a regular expression.
    """
    n = len(text)
    if n < 6 or n > 2048:
        return None
    if n == 10 and text[4] == "-" and _DATE.match(text):
        try:
            date.fromisoformat(text)
        except ValueError:
            return None  # 2024-02-30
        return "date"
    if 20 <= n <= 35 and text[4] == "-" and _DATE_TIME.match(text):
        try:
            datetime.fromisoformat(text[:10])
        except ValueError:
            return None
        return "date-time"
    if n == 36 and text[8] == "-" and _UUID.match(text):
        return "uuid"
    if "@" in text:
        return "email" if n <= 254 and _EMAIL.match(text) else None
    if "://" in text and _URI.match(text):
        return "uri"
    return None


def _string(text: str) -> Schema:
    fmt = string_format(text)
    return {"type": "string", "format": fmt} if fmt else {"type": "string"}


def infer_text(text: str) -> Schema:
    """The schema of a value that travels as text (a query or form field, a path parameter):
    integer, number or boolean when the text is exactly one, else a string (with its format)."""
    if _INTEGER_TEXT.match(text):
        return {"type": "integer"}
    if _NUMBER_TEXT.match(text):
        return {"type": "number"}
    if text in ("true", "false"):
        return {"type": "boolean"}
    return _string(text)


# ---- inference -----------------------------------------------------------------------------------


class _Budget:
    __slots__ = ("left",)

    def __init__(self, nodes: int) -> None:
        self.left = nodes


def infer(value: Any, limits: Limits = DEFAULT_LIMITS) -> Schema:
    """The schema of one JSON value (as ``json.loads`` returns it)."""
    return _infer(value, limits, 0, _Budget(limits.max_nodes))


def _infer(value: Any, limits: Limits, depth: int, budget: _Budget) -> Schema:
    budget.left -= 1
    if budget.left < 0:
        return {}
    # Dispatch on the exact type: json.loads makes only these, and `type(x) is` is the cheapest
    # test (bool is checked apart from int: True is an int to Python, a boolean to JSON).
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is int:
        return {"type": "integer"}
    if kind is bool:
        return {"type": "boolean"}
    if value is None:
        return {"type": "null"}
    if kind is float:
        # 10.0 is written by a serializer that holds a float: the field is a number.
        return {"type": "number"}
    if depth >= limits.max_depth:
        return {}
    if kind is dict:
        if value and all(_ID_KEY.match(key) for key in value):
            values: Schema | None = None
            for item in list(value.values())[: limits.max_array_items]:
                schema = _infer(item, limits, depth + 1, budget)
                values = schema if values is None else merge(values, schema, limits)
            return {"type": "object", "additionalProperties": values}
        properties: Schema = {}
        cap = limits.max_properties
        for key, item in value.items():
            if len(properties) >= cap:
                break
            properties[key] = _infer(item, limits, depth + 1, budget)
        if not properties:
            return {"type": "object"}
        return {"type": "object", "properties": properties, "required": list(properties)}
    if kind is list:
        items: Schema | None = None
        for item in value[: limits.max_array_items]:
            schema = _infer(item, limits, depth + 1, budget)
            items = schema if items is None else merge(items, schema, limits)
        return {"type": "array"} if items is None else {"type": "array", "items": items}
    return {}  # not a JSON value


# ---- merging -------------------------------------------------------------------------------------


def merge(a: Schema, b: Schema, limits: Limits = DEFAULT_LIMITS) -> Schema:
    """The least schema both ``a`` and ``b`` accept (as this module builds schemas)."""
    if a is b or a == b:
        return a
    kind_a, kind_b = a.get("type"), b.get("type")
    # The common cases, without splitting and joining: two schemas of one type (two objects),
    # and a plain scalar already allowed by a type list (["string", "null"] and "null").
    if kind_a == kind_b and kind_a.__class__ is str:
        return _merge_part(kind_a, a, b, limits)
    if kind_a.__class__ is list and len(b) == 1 and kind_b in _PLAIN and kind_b in kind_a:
        return a
    parts_a, parts_b = _split(a), _split(b)
    if parts_a is None or parts_b is None:
        return {}  # one side accepts anything, so the merge does
    parts: dict[str, Schema] = {}
    for name in _TYPE_ORDER:
        x, y = parts_a.get(name), parts_b.get(name)
        if x is not None and y is not None:
            parts[name] = _merge_part(name, x, y, limits)
        elif x is not None or y is not None:
            parts[name] = x if x is not None else y  # type: ignore[assignment]
    return _join(parts)


def _split(schema: Schema) -> dict[str, Schema] | None:
    """One single-type schema per type the schema allows; None when it allows anything."""
    if "anyOf" in schema:
        out: dict[str, Schema] = {}
        for branch in schema["anyOf"]:
            parts = _split(branch)
            if parts is None:
                return None
            out.update(parts)  # branches are single-typed and distinct, as _join makes them
        return out
    kind = schema.get("type")
    if kind is None:
        return None
    if isinstance(kind, str):
        return {kind: schema}
    out = {}
    for name in kind:
        part: Schema = {"type": name}
        if name == "object":
            part.update((k, schema[k]) for k in _OBJECT_KEYWORDS if k in schema)
        elif name == "array" and "items" in schema:
            part["items"] = schema["items"]
        elif name == "string" and "format" in schema:
            part["format"] = schema["format"]
        out[name] = part
    return out


def _merge_part(name: str, x: Schema, y: Schema, limits: Limits) -> Schema:
    if x == y:
        return x
    if name == "object":
        return _merge_objects(x, y, limits)
    if name == "array":
        if "items" not in x:
            return y
        if "items" not in y:
            return x
        return {"type": "array", "items": merge(x["items"], y["items"], limits)}
    if name == "string":
        return x if x.get("format") == y.get("format") else {"type": "string"}
    return x


def _merge_objects(x: Schema, y: Schema, limits: Limits) -> Schema:
    map_x, map_y = "additionalProperties" in x, "additionalProperties" in y
    if map_x or map_y:
        # A map on either side: every value, named or not, describes the map's values.
        values: Schema | None = None
        for side in (x, y):
            found = [side["additionalProperties"]] if "additionalProperties" in side else []
            for schema in [*found, *side.get("properties", {}).values()]:
                if isinstance(schema, dict):
                    values = schema if values is None else merge(values, schema, limits)
        return {"type": "object", "additionalProperties": values if values is not None else {}}
    props_x: Schema = x.get("properties", {})
    props_y: Schema = y.get("properties", {})
    properties: Schema = {}
    for key, schema in props_x.items():
        other = props_y.get(key)
        properties[key] = schema if other is None else merge(schema, other, limits)
    for key, schema in props_y.items():
        if key not in properties and len(properties) < limits.max_properties:
            properties[key] = schema
    required_y = set(y.get("required", ()))
    required = [key for key in x.get("required", ()) if key in required_y]
    out: Schema = {"type": "object"}
    if properties:
        out["properties"] = properties
    if required:
        out["required"] = required
    return out


def _join(parts: dict[str, Schema]) -> Schema:
    """One schema from single-type parts: a plain schema, a type list, or anyOf."""
    if "integer" in parts and "number" in parts:
        del parts["integer"]  # every integer is a number
    nullable = parts.pop("null", None) is not None
    names = sorted(parts, key=_RANK.__getitem__)
    if not names:
        return {"type": "null"}
    if len(names) == 1:
        only = parts[names[0]]
        return {**only, "type": [names[0], "null"]} if nullable else only
    types = [*names, "null"] if nullable else names
    with_keywords = [parts[n] for n in names if len(parts[n]) > 1]
    if len(with_keywords) <= 1:
        joined: Schema = {"type": types}
        for part in with_keywords:
            joined.update((k, v) for k, v in part.items() if k != "type")
        return joined
    branches = [parts[n] for n in names]
    if nullable:
        branches.append({"type": "null"})
    return {"anyOf": branches}


# ---- accumulating samples ------------------------------------------------------------------------


class SchemaAccumulator:
    """A running contract: the merge of every sample added, and how many were added.

    ``add`` infers and merges one value; ``add_schema`` merges a schema built elsewhere (a
    query string's fields). ``state()`` / ``from_state`` round-trip through plain JSON.
    """

    __slots__ = ("limits", "samples", "schema")

    def __init__(
        self, schema: Schema | None = None, samples: int = 0, limits: Limits = DEFAULT_LIMITS
    ) -> None:
        self.schema = schema
        self.samples = samples
        self.limits = limits

    def add(self, value: Any) -> bool:
        """Fold in one JSON value; True when the contract changed."""
        return self.add_schema(infer(value, self.limits))

    def add_schema(self, schema: Schema) -> bool:
        self.samples += 1
        if self.schema is None:
            self.schema = schema
            return True
        merged = merge(self.schema, schema, self.limits)
        if merged is self.schema:
            return False
        changed = merged != self.schema
        self.schema = merged
        return changed

    def merge_from(self, other: SchemaAccumulator) -> None:
        """Fold in another accumulator (two endpoints found to be one)."""
        if other.schema is not None:
            self.schema = (
                other.schema
                if self.schema is None
                else merge(self.schema, other.schema, self.limits)
            )
        self.samples += other.samples

    def state(self) -> dict[str, Any]:
        return {"schema": self.schema, "samples": self.samples}

    @classmethod
    def from_state(
        cls, state: dict[str, Any] | None, limits: Limits = DEFAULT_LIMITS
    ) -> SchemaAccumulator:
        if not state:
            return cls(limits=limits)
        return cls(state.get("schema"), int(state.get("samples") or 0), limits)


def object_of_texts(fields: Mapping[str, str | list[str]]) -> Schema:
    """The schema of a query string or form as one object sample: every field it has is
    required in this sample (a later sample without it makes it optional); a repeated field is
    an array."""
    properties: Schema = {}
    for name, value in fields.items():
        if isinstance(value, list):
            items: Schema | None = None
            for text in value:
                schema = infer_text(text)
                items = schema if items is None else merge(items, schema)
            properties[name] = {"type": "array", "items": items or {}}
        else:
            properties[name] = infer_text(value)
    if not properties:
        return {"type": "object"}
    return {"type": "object", "properties": properties, "required": list(properties)}
