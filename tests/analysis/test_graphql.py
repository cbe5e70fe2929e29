"""GraphQL parsing (rsproxy/analysis/graphql.py): operation, fields, depth and complexity.

The figures follow the probe's formulas; for documents without fragments the probe's own
``gqlStats`` (run from injected_js/probe.js with Node) must give the same numbers, so a page's
``graphql`` events and the proxy's ``http`` events agree.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rsproxy.analysis.graphql import GraphQLSyntaxError, graphql_stats, parse, tokenize

PROBE_JS = Path(__file__).resolve().parents[2] / "injected_js" / "probe.js"

WITHOUT_FRAGMENTS: list[tuple[str, str | None]] = [
    ("{ viewer { login } }", None),
    (
        "mutation AddTodo($text: String!) {\n  addTodo(input: {text: $text}) {\n"
        "    todo: item { id }\n    ok @include(if: true)\n  }\n}",
        "AddTodo",
    ),
    (
        '# a comment { with braces }\nquery Search($q: String = "}{", $n: Int = 10) {\n'
        '  search(query: $q, first: $n, filter: {tags: ["a", "b"], nested: {deep: [1, 2]}}) {\n'
        "    totalCount\n    edges { cursor node { id __typename title } }\n"
        "    pageInfo { hasNextPage endCursor }\n  }\n  me { id }\n}",
        "Search",
    ),
    ("subscription OnMessage { messageAdded(room: 1) { id text author { name } } }", None),
]


def _probe_stats(documents: list[tuple[str, str | None]]) -> list[dict[str, Any]]:
    source = PROBE_JS.read_text()
    match = re.search(r"  function gqlStats\(src, opName\) \{.*?\n  \}\n", source, re.DOTALL)
    assert match, "gqlStats not found in injected_js/probe.js"
    script = (
        match.group(0)
        + f"\nconst docs = {json.dumps(documents)};\n"
        + "console.log(JSON.stringify(docs.map(([d, o]) => gqlStats(d, o))));"
    )
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is needed to run the probe's JS")
def test_same_figures_as_the_probe_without_fragments() -> None:
    for (document, name), probe in zip(
        WITHOUT_FRAGMENTS, _probe_stats(WITHOUT_FRAGMENTS), strict=True
    ):
        ours = graphql_stats(document, name)
        assert ours is not None
        assert (
            ours["operation_name"],
            ours["operation_type"],
            ours["fields"],
            ours["depth"],
            ours["complexity"],
        ) == (
            probe["operation_name"],
            probe["operation_type"],
            probe["field_count"],
            probe["depth"],
            probe["complexity"],
        ), document


def test_query_with_variables_arguments_and_aliases() -> None:
    stats = parse(WITHOUT_FRAGMENTS[2][0], "Search")
    assert stats == {
        "operation_name": "Search",
        "operation_type": "query",
        # search, totalCount, edges, cursor, node, id, __typename, title, pageInfo,
        # hasNextPage, endCursor, me, id
        "fields": 13,
        "top_level_fields": 2,
        "depth": 4,
        # depth 1: search, me; 2: totalCount, edges, pageInfo, id; 3: cursor, node,
        # hasNextPage, endCursor; 4: id, __typename, title
        "complexity": 2 * 1 + 4 * 2 + 4 * 3 + 3 * 4,
        "variables": ["q", "n"],
    }


def test_fragments_count_where_they_are_spread() -> None:
    document = """
    query GetUser($id: ID!) {
      user(id: $id) {
        id
        ...UserBits
        friends(first: 10) { ...UserBits }
        ... on Admin { permissions }
      }
    }
    fragment UserBits on User { name avatar(size: 64) { url } }
    """
    stats = parse(document)
    # user(1), id(2), friends(2), permissions(2: an inline fragment adds no depth)
    # UserBits at depth 2: name(2), avatar(2), url(3); again under friends: (3), (3), (4)
    assert stats["fields"] == 4 + 3 + 3
    assert stats["depth"] == 4
    assert stats["complexity"] == (1 + 2 + 2 + 2) + (2 + 2 + 3) + (3 + 3 + 4)
    assert stats["top_level_fields"] == 1


def test_exponential_fragment_spreads_cost_linear_time() -> None:
    # Each level spreads the one below twice: 2**40 fields if expanded naively.
    levels = 40
    fragments = [
        f"fragment F{i} on T {{ a: f{i} {{ ...F{i + 1} }} b: g{i} {{ ...F{i + 1} }} }}"
        for i in range(levels)
    ]
    fragments.append(f"fragment F{levels} on T {{ leaf }}")
    document = "query Bomb { root { ...F0 } }\n" + "\n".join(fragments)
    stats = parse(document)
    assert stats["fields"] == 1 + sum(2**i for i in range(1, levels + 1)) + 2**levels
    assert stats["depth"] == levels + 2


def test_operation_selection() -> None:
    """Only the operation that runs counts (the probe counts every operation's fields)."""
    document = "query A { a } mutation B { b { c } } { anonymous }"
    assert parse(document)["operation_name"] == "A"
    chosen = parse(document, "B")
    assert (chosen["operation_type"], chosen["fields"], chosen["depth"]) == ("mutation", 2, 2)
    # an unknown name: the first operation, under the name the client sent
    assert parse(document, "Missing")["fields"] == 1
    assert parse("{ a { b } }")["operation_type"] == "query"


def test_schema_definitions_are_skipped() -> None:
    document = 'type Query { user(id: ID!): User } """doc""" scalar Date query Q { user { id } }'
    assert parse(document)["fields"] == 2


def test_strings_and_comments_hide_their_braces() -> None:
    assert tokenize('{ a(x: "}{") # }\n b }') == ["{", "a", "(", "x", ":", '"', ")", "b", "}"]
    block = '{ a(x: """ a " quote and \\""" and } """) }'
    assert parse(block)["fields"] == 1


@pytest.mark.parametrize(
    "document",
    ["", "{", "{ a(x: ) }", "query { a ", "}", "fragment F on T { a }", "{ a } extra", "\x00"],
)
def test_bad_documents_give_none(document: str) -> None:
    with pytest.raises(GraphQLSyntaxError):
        parse(document)
    assert graphql_stats(document) is None


def test_deep_nesting_does_not_blow_the_stack() -> None:
    assert graphql_stats("{ a " * 5_000 + "}" * 5_000) is None
    assert graphql_stats("{ a(x: " + "[" * 5_000 + "]" * 5_000 + ") }") is None
    assert graphql_stats(123) is None  # type: ignore[arg-type]
