"""GraphQL documents: which operation a request runs, and how big and deep it is.

A small tokenizer and recursive-descent parser for the executable part of the GraphQL grammar
(operations, fragments, selections, arguments, variables, directives); schema definitions are
skipped. ``graphql_stats(document, operation_name)`` gives, for the operation that runs:

* ``operation_name``, ``operation_type`` (``query``, ``mutation``, ``subscription``);
* ``fields`` — every field selected, ``__typename`` included, an aliased field once;
* ``top_level_fields`` — the fields of the operation's own selection set;
* ``depth`` — the deepest field, top-level fields being at depth 1;
* ``complexity`` — the sum over all fields of their depth, so a field costs more the more
  lists it may sit inside (``{ a { b { c } } }`` → 1 + 2 + 3 = 6). Without the schema the
  parser cannot tell lists from objects, and nesting is the best stand-in for fan-out;
* ``variables`` — the names the operation declares.

These are the probe's formulas (injected_js/probe.js ``gqlStats``), so a document without
fragments gets the same figures from both. Where they differ, this parser is the one that
follows the spec: a fragment spread counts the fragment's fields where it is spread, at that
depth and as many times as it is spread (the probe, which only scans tokens, counts them once
where the fragment is defined), and only the selected operation counts. Fragment figures are
computed once per fragment, so a document that spreads fragments into each other exponentially
costs linear time. ``graphql_stats`` never raises: a document it cannot read gives None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

MAX_DOCUMENT = 200_000  # characters; a bigger "document" is not a query anyone wrote
MAX_NESTING = 200  # selection-set and value nesting the parser follows before giving up

_TOKEN = re.compile(
    r"""
      (?P<skip>[\s,\ufeff]+|\#[^\n\r]*)
    | (?P<block>\"\"\"(?:\\\"\"\"|[^"]|"(?!""))*\"\"\")
    | (?P<string>"(?:\\.|[^"\\\n])*")
    | (?P<spread>\.\.\.)
    | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<punct>[!$&()\:=@\[\]{|}])
    """,
    re.VERBOSE,
)


class GraphQLSyntaxError(ValueError):
    """The document is not GraphQL the parser can read."""


def tokenize(source: str) -> list[str]:
    """Tokens, without whitespace, commas and comments; strings as a single ``"`` token."""
    out: list[str] = []
    pos = 0
    n = len(source)
    match = _TOKEN.match
    while pos < n:
        m = match(source, pos)
        if m is None:
            raise GraphQLSyntaxError(f"unexpected character {source[pos]!r} at offset {pos}")
        kind = m.lastgroup
        if kind in ("string", "block"):
            out.append('"')
        elif kind != "skip":
            out.append(m.group(0))
        pos = m.end()
    return out


@dataclass
class _Selection:
    """A selection set: its fields (with their own selection sets) and fragment spreads."""

    fields: list[_Selection | None] = field(default_factory=list)  # None: a leaf field
    spreads: list[str] = field(default_factory=list)


@dataclass
class _Operation:
    type: str
    name: str | None
    variables: list[str]
    selection: _Selection


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.t = tokens
        self.i = 0

    def peek(self, offset: int = 0) -> str | None:
        j = self.i + offset
        return self.t[j] if j < len(self.t) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise GraphQLSyntaxError(f"expected {expected or 'a token'}, found {token!r}")
        self.i += 1
        return token

    def name(self) -> str:
        token = self.take()
        if not (token[0].isalpha() or token[0] == "_"):
            raise GraphQLSyntaxError(f"expected a name, found {token!r}")
        return token

    def document(self) -> tuple[list[_Operation], dict[str, _Selection]]:
        operations: list[_Operation] = []
        fragments: dict[str, _Selection] = {}
        while self.peek() is not None:
            token = self.peek()
            if token == '"':  # a description, before a type system definition
                self.take()
            elif token == "{":
                operations.append(_Operation("query", None, [], self.selection_set(0)))
            elif token in ("query", "mutation", "subscription"):
                operations.append(self.operation())
            elif token == "fragment":
                self.take()
                fragment_name = self.name()
                self.take("on")
                self.name()
                self.directives()
                fragments[fragment_name] = self.selection_set(0)
            elif token in ("schema", "scalar", "type", "interface", "union", "enum", "input",
                           "directive", "extend"):  # fmt: skip
                self.skip_definition()
            else:
                raise GraphQLSyntaxError(f"unexpected {token!r} at the top of the document")
        return operations, fragments

    def operation(self) -> _Operation:
        op_type = self.take()
        op_name = None
        if self.peek() not in ("(", "@", "{"):
            op_name = self.name()
        variables: list[str] = []
        if self.peek() == "(":
            self.take()
            while self.peek() != ")":
                self.take("$")
                variables.append(self.name())
                self.take(":")
                self.type_ref()
                if self.peek() == "=":
                    self.take()
                    self.value(0)
                self.directives()
            self.take(")")
        self.directives()
        return _Operation(op_type, op_name, variables, self.selection_set(0))

    def type_ref(self) -> None:
        if self.peek() == "[":
            self.take()
            self.type_ref()
            self.take("]")
        else:
            self.name()
        if self.peek() == "!":
            self.take()

    def value(self, nesting: int) -> None:
        if nesting > MAX_NESTING:
            raise GraphQLSyntaxError("values nested too deeply")
        token = self.take()
        if token == "$":
            self.name()
        elif token == "[":
            while self.peek() != "]":
                self.value(nesting + 1)
            self.take("]")
        elif token == "{":
            while self.peek() != "}":
                self.name()
                self.take(":")
                self.value(nesting + 1)
            self.take("}")
        elif token in ("(", ")", ":", "=", "@", "!", "|", "&", "]", "}", "..."):
            raise GraphQLSyntaxError(f"expected a value, found {token!r}")
        # else a string, a number, a boolean, null or an enum value: one token

    def arguments(self) -> None:
        if self.peek() == "(":
            self.take()
            while self.peek() != ")":
                self.name()
                self.take(":")
                self.value(0)
            self.take(")")

    def directives(self) -> None:
        while self.peek() == "@":
            self.take()
            self.name()
            self.arguments()

    def selection_set(self, nesting: int) -> _Selection:
        if nesting > MAX_NESTING:
            raise GraphQLSyntaxError("selections nested too deeply")
        self.take("{")
        selection = _Selection()
        while self.peek() != "}":
            if self.peek() is None:
                raise GraphQLSyntaxError("a selection set is not closed")
            if self.peek() == "...":
                self.take()
                if self.peek() == "on" or self.peek() in ("@", "{"):
                    if self.peek() == "on":
                        self.take()
                        self.name()
                    self.directives()
                    inline = self.selection_set(nesting + 1)
                    # an inline fragment's fields belong to the enclosing selection set
                    selection.fields.extend(inline.fields)
                    selection.spreads.extend(inline.spreads)
                else:
                    selection.spreads.append(self.name())
                    self.directives()
                continue
            self.name()
            if self.peek() == ":":  # an alias; the field's name follows
                self.take()
                self.name()
            self.arguments()
            self.directives()
            child = self.selection_set(nesting + 1) if self.peek() == "{" else None
            selection.fields.append(child)
        self.take("}")
        return selection

    def skip_definition(self) -> None:
        # Type system definitions never run; skip to the end of their braces (if any).
        self.take()
        depth = 0
        while self.peek() is not None:
            token = self.take()
            if token == "{":
                depth += 1
            elif token == "}":
                depth -= 1
                if depth == 0:
                    return
            elif depth == 0 and self.peek() in (
                "schema", "scalar", "type", "interface", "union", "enum", "input", "directive",
                "extend", "query", "mutation", "subscription", "fragment",
            ):  # fmt: skip
                return


@dataclass
class _Figures:
    """Fields of a selection set, the sum of their depths and the deepest, counted from 1."""

    fields: int = 0
    depth_sum: int = 0
    depth: int = 0


class _Counter:
    def __init__(self, fragments: dict[str, _Selection]) -> None:
        self.fragments = fragments
        self.memo: dict[str, _Figures] = {}
        self.visiting: set[str] = set()

    def figures(self, selection: _Selection, nesting: int = 0) -> _Figures:
        """Figures of a selection set whose fields sit at depth 1."""
        if nesting > MAX_NESTING:
            raise GraphQLSyntaxError("fragments nested too deeply")
        out = _Figures()
        for child in selection.fields:
            out.fields += 1
            out.depth_sum += 1
            out.depth = max(out.depth, 1)
            if child is not None:
                self._add(out, self.figures(child, nesting + 1), shift=1)
        for name in selection.spreads:
            fragment = self.fragment(name, nesting)
            if fragment is not None:
                self._add(out, fragment, shift=0)
        return out

    def fragment(self, name: str, nesting: int) -> _Figures | None:
        if name in self.memo:
            return self.memo[name]
        selection = self.fragments.get(name)
        if selection is None or name in self.visiting:
            return None  # unknown, or spread into itself (invalid GraphQL): counted as empty
        self.visiting.add(name)
        try:
            figures = self.figures(selection, nesting + 1)
        finally:
            self.visiting.discard(name)
        self.memo[name] = figures
        return figures

    @staticmethod
    def _add(out: _Figures, inner: _Figures, shift: int) -> None:
        # inner's fields sit ``shift`` levels below out's depth-1 fields
        out.fields += inner.fields
        out.depth_sum += inner.depth_sum + shift * inner.fields
        if inner.fields:
            out.depth = max(out.depth, inner.depth + shift)


def parse(document: str, operation_name: str | None = None) -> dict[str, Any]:
    """The figures of the operation that runs; raises GraphQLSyntaxError."""
    if len(document) > MAX_DOCUMENT:
        raise GraphQLSyntaxError(f"document of {len(document)} characters is too long")
    operations, fragments = _Parser(tokenize(document)).document()
    if not operations:
        raise GraphQLSyntaxError("the document has no operation")
    chosen = operations[0]
    if operation_name:
        chosen = next((op for op in operations if op.name == operation_name), chosen)
    figures = _Counter(fragments).figures(chosen.selection)
    return {
        "operation_name": operation_name or chosen.name,
        "operation_type": chosen.type,
        "fields": figures.fields,
        "top_level_fields": len(chosen.selection.fields)
        + sum(len(fragments[s].fields) for s in chosen.selection.spreads if s in fragments),
        "depth": figures.depth,
        "complexity": figures.depth_sum,
        "variables": chosen.variables,
    }


def graphql_stats(document: str, operation_name: str | None = None) -> dict[str, Any] | None:
    """``parse`` that never raises (None for a document it cannot read), cached per document.
    The result is shared between calls: copy it before changing it."""
    if not isinstance(document, str) or not isinstance(operation_name, (str, type(None))):
        return None
    return _cached_stats(document, operation_name)


@lru_cache(maxsize=2048)  # thread-safe: the pipeline worker and report threads share it
def _cached_stats(document: str, operation_name: str | None) -> dict[str, Any] | None:
    try:
        return parse(document, operation_name)
    except (GraphQLSyntaxError, RecursionError):
        return None
