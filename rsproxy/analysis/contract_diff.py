"""What changed between two inferred contracts of one endpoint, and whether it breaks clients.

The catalog stage infers each endpoint's contract as JSON Schemas merged across samples
(rsproxy/analysis/schema.py). Comparing two sessions' contracts field by field tells an agent
what an API change did: ``$.user.email`` removed from a response, ``$.items[].price`` turned from
integer to string, a request field that became required.

A schema is flattened to one entry per field path — ``$`` the body, ``.name`` a property,
``[]`` an array's items, ``{}`` a map's values — holding the types it allows, whether it is
required, and its string format. Two flattenings are then compared path by path; a field added
or removed is reported once, not once per field beneath it.

Whether a change is *breaking* depends on the direction data flows. A response is read by the
client, so removing a field, making it optional or nullable, or changing its type breaks
readers; adding a field does not. A request is written by the client, so a new required field or
a narrowed type breaks writers; a removed or loosened field does not.

Contracts are inferred from what was seen: a field that looks optional may only have been
absent from the few samples of one session. Each change carries the sample counts so a reader
can weigh it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from rsproxy.analysis.schema import Schema, _split

Direction = Literal["request", "response"]


@dataclass(frozen=True)
class Field:
    types: frozenset[str]  # "any" when the schema allows anything
    required: bool
    format: str | None


def flatten(schema: Schema | None) -> dict[str, Field]:
    """Every field path of ``schema`` with what it allows."""
    out: dict[str, Field] = {}
    if schema is not None:
        _walk(schema, "$", True, out)
    return out


def _walk(schema: Schema, path: str, required: bool, out: dict[str, Field]) -> None:
    parts = _split(schema)
    if parts is None:
        out[path] = Field(frozenset({"any"}), required, None)
        return
    string = parts.get("string") or {}
    out[path] = Field(frozenset(parts), required, string.get("format"))
    obj = parts.get("object")
    if obj is not None:
        needed = set(obj.get("required", ()))
        for key, sub in (obj.get("properties") or {}).items():
            if isinstance(sub, dict):
                _walk(sub, f"{path}.{key}", key in needed, out)
        values = obj.get("additionalProperties")
        if isinstance(values, dict):
            _walk(values, f"{path}{{}}", False, out)
    array = parts.get("array")
    if array is not None and isinstance(array.get("items"), dict):
        _walk(array["items"], f"{path}[]", True, out)


def _under(path: str, roots: set[str]) -> bool:
    """Whether ``path`` lies beneath one of ``roots`` (so its change is already told)."""
    return any(path.startswith(root) and path[len(root)] in ".[{" for root in roots if path != root)


def _types(field: Field) -> str:
    return " | ".join(sorted(field.types))


def diff(before: Schema | None, after: Schema | None, direction: Direction) -> list[dict[str, Any]]:
    """The field changes from ``before`` to ``after``, each with ``breaking`` for ``direction``.

    A side without a schema (no JSON body seen) tells nothing, so nothing is compared."""
    if before is None or after is None:
        return []
    old, new = flatten(before), flatten(after)
    response = direction == "response"
    changes: list[dict[str, Any]] = []
    added = {p for p in new if p not in old}
    removed = {p for p in old if p not in new}
    for path in sorted(added):
        if _under(path, added):
            continue
        field = new[path]
        changes.append(
            {
                "path": path,
                "change": "added",
                "detail": f"new {'required' if field.required else 'optional'} field "
                f"({_types(field)})",
                "breaking": not response and field.required,
            }
        )
    for path in sorted(removed):
        if _under(path, removed):
            continue
        field = old[path]
        changes.append(
            {
                "path": path,
                "change": "removed",
                "detail": f"field no longer seen (was {_types(field)})",
                "breaking": response and field.required,
            }
        )
    for path in sorted(old.keys() & new.keys()):
        a, b = old[path], new[path]
        if a.types != b.types:
            gained, lost = b.types - a.types, a.types - b.types
            if gained == {"null"} and not lost:
                change, breaking = "nullable", response
            elif lost == {"null"} and not gained:
                change, breaking = "not_nullable", not response
            elif "any" in b.types:
                change, breaking = "loosened", response
            else:
                # integer → number widens for a reader of numbers; anything else is a new type.
                widened = lost == {"integer"} and gained == {"number"}
                change = "widened" if widened else "type_changed"
                breaking = response if widened else True
            changes.append(
                {
                    "path": path,
                    "change": change,
                    "detail": f"{_types(a)} → {_types(b)}",
                    "breaking": breaking,
                }
            )
        if a.required != b.required:
            made_required = b.required
            changes.append(
                {
                    "path": path,
                    "change": "required" if made_required else "optional",
                    "detail": "now always present" if made_required else "now sometimes absent",
                    "breaking": (not response) if made_required else response,
                }
            )
        if a.format != b.format and a.types == b.types and "string" in b.types:
            changes.append(
                {
                    "path": path,
                    "change": "format_changed",
                    "detail": f"format {a.format or 'none'} → {b.format or 'none'}",
                    "breaking": response and a.format is not None,
                }
            )
    return changes
