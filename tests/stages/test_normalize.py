"""The ``normalize`` stage (rsproxy/stages/normalize.py), alone, with persist, and end to end.

Unit tests drive the stage with events shaped like the capture addon's and the probe's.
The end-to-end tests put a real ``rsproxy start`` in front of fixtures/apps/ids_api.py, send it
traffic (an httpx load script, and a page in Chromium), and read back what the store holds:
the right template for every id kind, for literal siblings and nested ids, and for a parameter
that only reveals itself after several samples, with the earlier rows rewritten to it.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from rsproxy.errors import PipelineValidationError
from rsproxy.events import Event
from rsproxy.pipeline.engine import Pipeline
from rsproxy.pipeline.spec import default_pipeline_path, load_spec, parse_spec
from rsproxy.pipeline.stage import StageContext
from rsproxy.stages.normalize import Normalize, NormalizeConfig, sniff_content_type
from rsproxy.store import SessionInfo, Store
from rsproxy.testing import DaemonProcess, LoopbackServer, load_fixture, make_event, make_http_event

IDS_API_PY = Path(__file__).resolve().parents[2] / "fixtures" / "apps" / "ids_api.py"


def _stage(**config: Any) -> Normalize:
    config.setdefault("warm_start", "off")
    return Normalize(NormalizeConfig(**config), StageContext("test", "s1"))


def _proxied(path: str, method: str = "GET", **data: Any) -> Event:
    """An http event as the capture addon makes it: target 127.0.0.1:3000, proxy at :8080."""
    event = make_http_event(
        method=method,
        path=path,
        url=f"http://127.0.0.1:3000{path}",
        request_headers=[["Host", "127.0.0.1:8080"], ["accept", "*/*"]],
        **data,
    )
    event.source = "proxy"
    event.session_id = "s1"  # the session of the store fixture below
    return event


def _resource(url: str, method: str = "GET") -> Event:
    event = make_event("resource", initiator="fetch", method=method, url=url, status=200)
    event.source = "probe"
    event.session_id = "s1"
    return event


def _never_fails(event: Event, exc: BaseException) -> bool:
    raise AssertionError(f"normalize failed on {event.kind}: {exc!r}")


def _run(stage: Normalize, *events: Event) -> list[Event]:
    return stage.process(list(events), _never_fails)


# ---- templates and services -----------------------------------------------------------------


def test_proxied_requests_are_the_app_with_templates_and_params() -> None:
    [event] = _run(_stage(), _proxied("/api/users/42/orders/7"))
    data = event.data
    assert data["service"] == "app"
    assert data["path_template"] == "/api/users/{userId}/orders/{orderId}"
    assert data["path_params"] == {"userId": "42", "orderId": "7"}
    assert "template_refined_from" not in data


def test_probe_resources_are_matched_to_the_app_by_the_proxy_address() -> None:
    stage = _stage()
    _run(stage, _proxied("/"))  # the page itself teaches the proxy's address (Host header)
    same, other, stripe, local = _run(
        stage,
        _resource("http://127.0.0.1:8080/api/orders/9?x=1"),
        _resource("https://cdn.example.net/lib/42.js"),
        _resource("https://api.stripe.com/v1/customers/cus_NffrFeUfNV2Hib", "POST"),
        _resource("http://localhost:9000/api/items/3"),
    )
    assert (same.data["service"], same.data["path_template"]) == ("app", "/api/orders/{orderId}")
    assert (other.data["service"], other.data["path_template"]) == (
        "cdn.example.net",
        "/lib/{libId}.js",
    )
    assert (stripe.data["service"], stripe.data["path_template"]) == (
        "stripe",
        "/v1/customers/{customerId}",
    )
    assert local.data["service"] == "localhost:9000"
    summary = make_event("resource", initiator="summary", count=3)
    assert "path_template" not in _run(stage, summary)[0].data


def test_configured_app_hosts_and_replayed_same_origin_requests() -> None:
    stage = _stage(app_hosts=["api.myapp.test"])
    replayed = make_http_event(
        host="api.myapp.test", port=443, path="/v1/me", url="https://api.myapp.test/v1/me"
    )
    replayed.source = "replay"
    page = make_http_event(
        host="shop.example.com",
        port=443,
        path="/",
        request_headers=[["sec-fetch-site", "none"], ["sec-fetch-dest", "document"]],
    )
    page.source = "replay"
    xhr = make_http_event(
        host="shop.example.com",
        port=443,
        path="/api/cart",
        request_headers=[["sec-fetch-site", "same-origin"], ["sec-fetch-dest", "empty"]],
    )
    xhr.source = "replay"
    analytics = make_http_event(
        host="www.google-analytics.com",
        port=443,
        path="/g/collect",
        request_headers=[["sec-fetch-site", "cross-site"], ["origin", "https://shop.example.com"]],
    )
    analytics.source = "replay"
    # a server-side tap fetching someone's HTML page does not make that site the app
    tapped = make_http_event(
        host="docs.example.org",
        port=443,
        path="/guide",
        status=200,
        response_content_type="text/html; charset=utf-8",
    )
    tapped.source = "tap"
    out = _run(stage, replayed, page, xhr, analytics, tapped)
    assert [e.data["service"] for e in out] == [
        "app",
        "app",
        "app",
        "google-analytics",
        "docs.example.org",
    ]


def test_pinned_templates_and_threshold_from_config() -> None:
    stage = _stage(templates=["/api/v1/{tenant}/items"], high_cardinality_threshold=2)
    pinned = _run(stage, _proxied("/api/v1/acme/items"))[0]
    assert pinned.data["path_template"] == "/api/v1/{tenant}/items"
    assert pinned.data["path_params"] == {"tenant": "acme"}
    templates = [
        e.data["path_template"]
        for e in _run(stage, *(_proxied(f"/tags/{w}") for w in ("red", "green", "blue")))
    ]
    assert templates == ["/tags/red", "/tags/green", "/tags/{tagId}"]


def test_the_folding_event_carries_the_templates_it_replaces() -> None:
    stage = _stage()
    slugs = ["intro", "setup", "usage", "api", "faq", "cli", "auth", "hooks", "themes", "more"]
    events = _run(stage, *(_proxied(f"/docs/{s}") for s in slugs))
    refined = [e for e in events if "template_refined_from" in e.data]
    assert len(refined) == 1
    assert refined[0].data["path_template"] == "/docs/{docId}"
    assert sorted(refined[0].data["template_refined_from"]) == sorted(
        f"/docs/{s}" for s in slugs[:8]
    )
    assert [e.data["path_template"] for e in events[8:]] == ["/docs/{docId}"] * 2


# ---- GraphQL, PostgREST, SQL, content types ---------------------------------------------------


def test_graphql_requests_are_parsed() -> None:
    stage = _stage()
    post = _proxied(
        "/graphql",
        "POST",
        request_body=json.dumps(
            {"query": "query Me { me { id name } }", "operationName": "Me", "variables": {}}
        ),
        request_content_type="application/json",
    )
    batch = _proxied(
        "/graphql",
        "POST",
        request_body=json.dumps([{"query": "{ a }"}, {"query": "mutation M { b { c } }"}]),
    )
    get = _proxied("/graphql", query="query=%7B%20viewer%20%7B%20login%20%7D%20%7D")
    raw = _proxied(
        "/graphql",
        "POST",
        request_body="query Q { x { y } }",
        request_content_type="application/graphql",
    )
    not_graphql = _proxied("/api/search", "POST", request_body='{"query": "shoes"}')
    broken = _proxied("/graphql", "POST", request_body='{"query": "{ unclosed "}')
    out = _run(stage, post, batch, get, raw, not_graphql, broken)
    assert out[0].data["graphql"] == {
        "operation_name": "Me",
        "operation_type": "query",
        "fields": 3,
        "top_level_fields": 1,
        "depth": 2,
        "complexity": 5,
        "variables": [],
    }
    assert out[1].data["graphql"]["batch"] == 2 and out[1].data["graphql"]["fields"] == 1
    assert out[2].data["graphql"]["fields"] == 2
    assert out[3].data["graphql"]["operation_name"] == "Q"
    assert "graphql" not in out[4].data and "graphql" not in out[5].data
    assert out[5].data["path_template"] == "/graphql"


def test_postgrest_requests_become_sql() -> None:
    event = make_http_event(
        host="abcdefgh.supabase.co",
        port=443,
        path="/rest/v1/users",
        query="select=id,name&age=gte.18&order=name.asc&limit=10",
        url="https://abcdefgh.supabase.co/rest/v1/users?select=id,name&age=gte.18&order=name.asc&limit=10",
    )
    event.source = "replay"
    [out] = _run(_stage(), event)
    assert out.data["service"] == "supabase"
    assert (
        out.data["sql"] == "SELECT id, name FROM users WHERE age >= 18 ORDER BY name ASC LIMIT 10"
    )
    assert out.data["tables"] == ["users"]


def test_sql_events_get_fingerprints() -> None:
    stage = _stage()
    pg = make_event(
        "sql", text="SELECT * FROM users WHERE id = $1", duration_ms=2.5, db_system="postgresql"
    )
    mysql = make_event(
        "sql", text="SELECT `a` FROM `t` WHERE b IN (1,2) LIMIT 5, 10", dialect="mariadb"
    )
    junk = make_event("sql", text="not ) sql (")
    no_text = make_event("sql", rows=3)
    out = _run(stage, pg, mysql, junk, no_text)
    assert {
        k: out[0].data[k] for k in ("fingerprint", "statement_type", "tables", "select_star")
    } == {
        "fingerprint": "SELECT * FROM users WHERE id = ?",
        "statement_type": "select",
        "tables": ["users"],
        "select_star": True,
    }
    assert out[1].data["fingerprint"] == "SELECT `a` FROM `t` WHERE b IN (?) LIMIT ? OFFSET ?"
    assert isinstance(out[2].data["fingerprint"], str)
    assert "fingerprint" not in out[3].data


def test_sql_events_take_the_first_field_that_names_a_known_system() -> None:
    text = "SELECT `a` FROM `t` LIMIT 5, 10"
    named = make_event("sql", text=text, dialect="nosuchdb", engine="mariadb", database="pg")
    out = _run(_stage(), named, make_event("sql", text=text, dialect="mysql"))
    assert out[0].data["fingerprint"] == out[1].data["fingerprint"]
    assert out[0].data["fingerprint"] == "SELECT `a` FROM `t` LIMIT ? OFFSET ?"


def test_graphql_events_keep_the_probes_figures_and_get_missing_ones() -> None:
    stage = _stage()
    probe = make_event(
        "graphql", operation_name="GetUser", field_count=8, depth=3, complexity=15,
        url="http://127.0.0.1:8080/graphql",
    )  # fmt: skip
    replayed = make_event(
        "graphql", query="query Q { a { b } }", url="https://api.github.com/graphql"
    )
    out = _run(stage, probe, replayed)
    assert (out[0].data["field_count"], out[0].data["complexity"]) == (8, 15)
    assert out[1].data["service"] == "github"
    assert (out[1].data["operation_name"], out[1].data["field_count"], out[1].data["depth"]) == (
        "Q",
        2,
        2,
    )


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(40)).decode()


@pytest.mark.parametrize(
    ("body", "encoding", "expected"),
    [
        ('{"a": 1}', "text", "application/json"),
        ('{"a": [1, 2, {"cut short', "text", "application/json"),
        ('{"a": 1}\n{"a": 2}\n', "text", "application/x-ndjson"),
        ("<!DOCTYPE html><html><body>x</body></html>", "text", "text/html"),
        ('<?xml version="1.0"?><feed/>', "text", "application/xml"),
        ('<svg xmlns="http://www.w3.org/2000/svg"></svg>', "text", "image/svg+xml"),
        ("name=alice&age=30", "text", "application/x-www-form-urlencoded"),
        ("just some words", "text", "text/plain"),
        (PNG, "base64", "image/png"),
        ("", "text", None),
    ],
)
def test_content_type_sniffing(body: str, encoding: str, expected: str | None) -> None:
    assert sniff_content_type(body, encoding) == expected


def test_sniffing_fills_only_missing_content_types() -> None:
    stage = _stage()
    missing = _proxied("/api/x", response_content_type=None, response_body='[{"id": 1}]')
    given = _proxied("/api/y", response_content_type="text/plain", response_body='{"id": 1}')
    posted = _proxied("/api/z", "POST", request_body="a=1&b=2", request_content_type=None)
    out = _run(stage, missing, given, posted)
    assert out[0].data["response_content_type"] == "application/json"
    assert out[1].data["response_content_type"] == "text/plain"
    assert out[2].data["request_content_type"] == "application/x-www-form-urlencoded"
    off = _stage(sniff_content_types=False)
    kept = _run(off, _proxied("/api/x", response_content_type=None, response_body="{}"))[0]
    assert kept.data["response_content_type"] is None


def test_bad_input_never_raises_and_keeps_the_rest() -> None:
    stage = _stage()
    odd = [
        make_event("http", method=None, path=None, url=None),
        make_event("http", method="GET", host=None, path=None, url="http://x.test/a/42"),
        make_event("http", method=7, host="h", port="80", path="/q/42", request_headers=None),
        make_event("http", method="GET", path="/no/host/7"),
        make_event("http", host="h", path="/g", request_body={"not": "a string"}, query=5),
        make_event("http", host="h", path="/g", request_body="{", request_headers=[]),
        make_event("resource", url=12),
        make_event("sql", text=None),
        make_event("graphql", query=["x"]),
        make_event("console", message="untouched"),
    ]
    for event in odd:
        event.source = "replay"
    out = _run(stage, *odd)
    assert len(out) == len(odd)
    assert out[1].data["path_template"] == "/a/{aId}"
    assert out[2].data["path_template"] == "/q/{qId}"
    assert out[3].data["path_template"] == "/no/host/{hostId}"


def test_config_is_validated_with_places() -> None:
    with pytest.raises(PipelineValidationError) as caught:
        parse_spec(
            "version: 1\nstages:\n  - type: normalize\n    templates: ['api/x']\n"
            "    high_cardinality_threshold: 0\n    colour: red\n",
            "p.yaml",
        )
    text = str(caught.value)
    assert "stages[0] (normalize)" in text
    assert "high_cardinality_threshold: must be >= 2" in text
    assert "'api/x' is not a template" in text
    assert "colour: unknown key" in text


def test_the_default_pipeline_normalizes_after_redacting() -> None:
    types = load_spec(default_pipeline_path()).stage_types()
    assert types.index("redact") < types.index("normalize") < types.index("persist")
    example = parse_spec("version: 1\nstages:\n" + Normalize.example, "example")
    assert example.stage_types() == ["normalize"]


# ---- with the store: persist's rewrite and the warm start -------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "store.duckdb")
    opened.start_session(
        SessionInfo(
            id="s1",
            project="test",
            source="proxy",
            target=":3000",
            started_ms=0,
            meta={"proxy_url": "http://127.0.0.1:8080"},
        )
    )
    try:
        yield opened
    finally:
        opened.close()


def _pipeline(store: Store, session: str = "s1", extra: str = "") -> Pipeline:
    spec = parse_spec(
        f"version: 1\nstages:\n  - type: normalize\n{extra}  - type: persist\n", "test"
    )
    return Pipeline(spec, StageContext("test", session, store))


def _stored_templates(store: Store, session: str = "s1") -> dict[str, str]:
    rows = store.query(
        "SELECT path, path_template FROM http WHERE session_id = ? ORDER BY ts", [session]
    )
    return {r["path"]: r["path_template"] for r in rows}


def test_a_refinement_rewrites_the_stored_rows(store: Store) -> None:
    slugs = ["intro", "setup", "usage", "api", "faq", "cli", "auth", "hooks", "themes", "more"]
    pipeline = _pipeline(store)
    # Two batches: the first five rows are stored under literal templates ...
    pipeline.run([_proxied(f"/docs/{s}") for s in slugs[:5]])
    assert _stored_templates(store) == {f"/docs/{s}": f"/docs/{s}" for s in slugs[:5]}
    # ... rows of another method, another session and another host that must not move
    pipeline.run([_proxied("/docs/intro", "DELETE")])
    other = make_http_event(host="docs.example.com", port=443, path="/docs/intro")
    other.source, other.session_id = "replay", "s1"
    pipeline.run([other])
    earlier = _proxied("/docs/intro")
    earlier.session_id = "s0"
    _pipeline(store, session="s0").run([earlier])
    # ... until the position proves itself a parameter: all of them point at the new template
    pipeline.run([_proxied(f"/docs/{s}") for s in slugs[5:]])
    rows = store.query("SELECT method, host, path, path_template FROM http WHERE session_id = 's1'")
    for row in rows:
        if row["method"] == "GET" and row["host"] == "127.0.0.1":
            assert row["path_template"] == "/docs/{docId}", row
        else:
            assert row["path_template"] == row["path"], row
    assert _stored_templates(store, "s0") == {"/docs/intro": "/docs/intro"}
    [extra] = store.query(
        "SELECT extra FROM http WHERE session_id = 's1' AND extra LIKE '%template_refined_from%'"
    )
    assert sorted(json.loads(extra["extra"])["template_refined_from"]) == sorted(
        f"/docs/{s}" for s in slugs[:8]
    )


def test_a_fold_rewrites_every_template_it_changed_at_once(store: Store) -> None:
    pipeline = _pipeline(store, extra="    high_cardinality_threshold: 3\n")
    pipeline.run([_proxied(f"/p/{w}/{page}") for w in "abc" for page in ("view", "edit")])
    [folding] = pipeline.run([_proxied("/p/d/view")])
    assert folding.data["template_refinements"] == {
        "/p/{pId}/view": ["/p/a/view", "/p/b/view", "/p/c/view"],
        "/p/{pId}/edit": ["/p/a/edit", "/p/b/edit", "/p/c/edit"],
    }
    # the edit rows point at their new template before any new edit request comes by
    assert set(_stored_templates(store).values()) == {"/p/{pId}/view", "/p/{pId}/edit"}


def test_a_probe_refinement_rewrites_the_proxys_rows(store: Store) -> None:
    """The probe's view of a request (the proxy's address) and the proxy's own (the target's)
    are one app: a fold first seen on a resource event rewrites the http rows too."""
    pipeline = _pipeline(store, extra="    high_cardinality_threshold: 2\n")
    pipeline.run([_proxied("/t/red"), _proxied("/t/green")])
    pipeline.run([_resource("http://127.0.0.1:8080/t/blue")])
    assert set(_stored_templates(store).values()) == {"/t/{tId}"}


def test_warm_start_relearns_after_a_hot_reload(store: Store) -> None:
    slugs = ["intro", "setup", "usage", "api", "faq", "cli", "auth", "hooks", "themes"]
    _pipeline(store).run([_proxied(f"/docs/{s}") for s in slugs])
    reloaded = _pipeline(store)  # a pipeline edit builds new stages with empty memories
    [event] = reloaded.run([_proxied("/docs/brand-new-page")])
    assert event.data["path_template"] == "/docs/{docId}"
    # the session's proxy address, read from the store, makes probe events the app at once
    [resource] = reloaded.run([_resource("http://127.0.0.1:8080/docs/x")])
    assert resource.data["service"] == "app"
    cold = _pipeline(store, extra="    warm_start: 'off'\n")
    assert cold.run([_proxied("/docs/brand-new-page")])[0].data["path_template"] == (
        "/docs/brand-new-page"
    )


# ---- end to end: a real daemon, real traffic --------------------------------------------------


@pytest.fixture(scope="module")
def ids_api() -> ModuleType:
    return load_fixture(IDS_API_PY)


@pytest.fixture(scope="module")
def third_party(ids_api: ModuleType) -> Iterator[LoopbackServer]:
    with LoopbackServer(ids_api.app) as server:
        yield server


@pytest.fixture(scope="module")
def upstream(ids_api: ModuleType, third_party: LoopbackServer) -> Iterator[LoopbackServer]:
    random.seed(4)
    urls = [maker() for maker in ids_api.MAKERS.values()]
    urls += ["/api/users", "/api/user-preferences", f"{third_party.url}/api/orders/77"]
    with LoopbackServer(lambda: ids_api.app(urls)) as server:
        server.page_urls = urls  # type: ignore[attr-defined]
        yield server


@pytest.fixture
def daemon(tmp_path: Path, upstream: LoopbackServer) -> Iterator[DaemonProcess]:
    with DaemonProcess(tmp_path / "home", "--target", f":{upstream.port}", project="ids") as d:
        yield d


def _templates_by_path(events: list[dict[str, Any]]) -> dict[str, str]:
    return {e["data"]["path"]: e["data"]["path_template"] for e in events}


def _get_all(client: httpx.Client, paths: list[str]) -> None:
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)


def test_templates_over_recorded_traffic(daemon: DaemonProcess, ids_api: ModuleType) -> None:
    expected: dict[str, str] = {}
    routes = ids_api.ROUTES
    for route, maker in ids_api.MAKERS.items():
        for _ in range(3):
            expected[maker()] = routes[route]
    for literal in ("/api/users", "/api/orders", "/api/products", "/api/user-preferences"):
        expected[literal] = literal
    early_docs = [f"/docs/{slug}" for slug in ids_api.DOC_SLUGS[:5]]
    with httpx.Client(base_url=daemon.proxy_url, timeout=10, trust_env=False) as client:
        _get_all(client, [*expected, *expected])  # each twice: repeats must not change anything
        _get_all(client, early_docs)
        events = daemon.wait_for_events(
            lambda evs: len(evs) >= 2 * len(expected) + len(early_docs), kind="http"
        )
        stored = _templates_by_path(events)
        for path, template in expected.items():
            assert stored[path] == template, path
        assert {e["data"]["service"] for e in events} == {"app"}
        # five slugs are not yet a parameter: literal siblings, as far as anyone can tell
        for path in early_docs:
            assert stored[path] == path

        # More samples: the slugs and the owner/repo pairs reveal themselves as parameters.
        late_docs = [f"/docs/{slug}" for slug in ids_api.DOC_SLUGS[5:]]
        repos = [
            f"/api/repos/{owner}/{repo}"
            for owner, repo in zip(ids_api.OWNERS, ids_api.REPOS, strict=False)
        ]
        _get_all(client, [*late_docs, *repos])
    total = 2 * len(expected) + len(early_docs) + len(late_docs) + len(repos)

    def settled(evs: list[dict[str, Any]]) -> bool:
        # Persist commits a batch, then rewrites the earlier rows a refinement changed: wait for
        # the rewrite too (a failure still fails, with the rows seen last).
        if len(evs) < total:
            return False
        templates = _templates_by_path(evs)
        return all(templates[p] == "/docs/{docId}" for p in early_docs) and (
            templates[repos[0]] == "/api/repos/{owner}/{repo}"
        )

    events = daemon.wait_for_events(settled, kind="http")
    stored = _templates_by_path(events)
    for path in early_docs + late_docs:
        assert stored[path] == "/docs/{docId}", path  # early rows rewritten by persist
    assert stored[repos[-1]] == "/api/repos/{owner}/{repo}"
    assert stored[repos[0]] == "/api/repos/{owner}/{repo}"  # rewritten too
    by_path = {e["data"]["path"]: e["data"] for e in events}
    assert by_path[repos[-1]]["path_params"] == {
        "owner": ids_api.OWNERS[len(repos) - 1],
        "repo": ids_api.REPOS[len(repos) - 1],
    }
    folded = [e["data"] for e in events if e["data"].get("template_refined_from")]
    assert {d["path_template"] for d in folded} == {"/docs/{docId}", "/api/repos/{owner}/{repo}"}
    docs_fold = next(d for d in folded if d["path_template"] == "/docs/{docId}")
    assert set(early_docs) <= set(docs_fold["template_refined_from"])
    # the literal siblings were never folded, however many other values came by
    for literal in ("/api/users", "/api/orders", "/api/products", "/api/user-preferences"):
        assert stored[literal] == literal


@pytest.mark.browser
def test_templates_in_chromium(
    daemon: DaemonProcess, upstream: LoopbackServer, ids_api: ModuleType, page: Any
) -> None:
    page.goto(daemon.proxy_url + "/")
    results = page.evaluate("window.runCalls()")
    urls: list[str] = upstream.page_urls  # type: ignore[attr-defined]
    assert [r["status"] for r in results] == [200] * len(urls)
    same_origin = [u for u in urls if u.startswith("/")]
    # the template each URL should get, by the route the app's own router matched
    route_of = {r["url"]: r["body"]["route"] for r in results}
    expected = {url: ids_api.ROUTES[route_of[url]] for url in same_origin}

    http = daemon.wait_for_events(
        lambda evs: set(same_origin) <= {e["data"]["path"] for e in evs}, kind="http"
    )
    stored = _templates_by_path(http)
    for url, template in expected.items():
        assert stored[url] == template, url

    # The probe saw the same calls from the page: same templates, and the app as their service.
    page_id = page.evaluate("window.__rsproxy.page_id")
    resources = daemon.wait_for_events(
        lambda evs: (
            len([e for e in evs if e["page_id"] == page_id and e["data"].get("url")]) >= len(urls)
        ),
        kind="resource",
    )
    seen = {
        e["data"]["url"]: e["data"]
        for e in resources
        if e["page_id"] == page_id and e["data"].get("url")
    }
    for url, template in expected.items():
        data = seen[daemon.proxy_url + url]
        assert (data["service"], data["path_template"]) == ("app", template), url
    cross = seen[urls[-1]]  # the API on another origin, called cross-origin
    assert cross["service"] == f"127.0.0.1:{urls[-1].split(':')[2].split('/')[0]}"
    assert cross["path_template"] == "/api/orders/{orderId}"
