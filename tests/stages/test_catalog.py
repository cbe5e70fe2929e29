"""The ``catalog`` stage (rsproxy/stages/catalog.py), on events shaped as capture and normalize
leave them, with a real DuckDB store where rows are written.

What is checked: which exchanges count as API endpoints; the contracts per status code, of the
request body, the query string and the path parameters; auth patterns by name and never by
value (with the real ``redact`` stage in front); the sample request; skipping of bodies that
cannot be trusted; the sampling schedule; folding of refined templates; the rows written, when,
and how a new stage instance picks them up; and failure isolation in the engine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rsproxy.analysis.figures import Figures
from rsproxy.events import Event
from rsproxy.pipeline.engine import Pipeline
from rsproxy.pipeline.spec import parse_spec
from rsproxy.pipeline.stage import StageContext
from rsproxy.stages.catalog import Catalog, CatalogConfig, endpoint_key
from rsproxy.store import Store
from rsproxy.testing import make_event, make_http_event

SESSION = "test-session"


def http(path: str, template: str | None = None, **overrides: Any) -> Event:
    """An http event as normalize leaves it: service ``app`` and a template."""
    data: dict[str, Any] = {
        "path": path,
        "url": f"http://127.0.0.1:3000{path}",
        "query": "",
        "path_template": template or path,
        "service": "app",
    }
    data.update(overrides)
    if isinstance(data.get("response_body"), (dict, list)):
        data["response_body"] = json.dumps(data["response_body"])
    if isinstance(data.get("request_body"), (dict, list)):
        data["request_body"] = json.dumps(data["request_body"])
        data.setdefault("request_content_type", "application/json")
        data.setdefault("request_size", len(data["request_body"]))
    return make_http_event(**data)


def stage(store: Store | None = None, **config: Any) -> Catalog:
    return Catalog(CatalogConfig(**config), StageContext("test", SESSION, store))


def run(catalog: Catalog, *events: Event) -> list[Event]:
    failures: list[tuple[Event, BaseException]] = []
    out = catalog.process(list(events), lambda e, exc: failures.append((e, exc)) is None)
    assert not failures, failures
    return out


def endpoints(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """Each endpoint's ``endpoints.data``, by key, as the stage would write it."""
    session = catalog._sessions.get(SESSION)
    return {} if session is None else {e.key: e.data() for e in session.endpoints.values()}


def one(catalog: Catalog) -> dict[str, Any]:
    found = endpoints(catalog)
    assert len(found) == 1, list(found)
    return next(iter(found.values()))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store.duckdb")
    try:
        yield s
    finally:
        s.close()


def stored(store: Store) -> dict[str, dict[str, Any]]:
    rows = store.query("SELECT * FROM endpoints WHERE session_id = ?", [SESSION])
    return {r["key"]: {**r, "data": json.loads(r["data"])} for r in rows}


# ---- what counts as an endpoint ---------------------------------------------------------------


def test_endpoints_are_keyed_by_service_method_and_template() -> None:
    catalog = stage()
    events = [
        http("/api/users/1", "/api/users/{userId}"),
        http("/api/users/2", "/api/users/{userId}"),
        http("/api/users/2", "/api/users/{userId}", method="DELETE", status=204),
        http("/v1/charges", service="stripe", host="api.stripe.com"),
        make_event("console", level="log", message="hi"),
    ]
    out = run(catalog, *events)
    assert out == events  # the stage never drops or changes an event
    assert sorted(endpoints(catalog)) == [
        "app DELETE /api/users/{userId}",
        "app GET /api/users/{userId}",
        "stripe GET /v1/charges",
    ]
    assert endpoints(catalog)["app GET /api/users/{userId}"]["seen"] == 2


def test_without_normalize_the_host_and_literal_path_stand_in() -> None:
    catalog = stage()
    run(catalog, make_http_event(path="/api/users/42"))
    assert list(endpoints(catalog)) == ["127.0.0.1 GET /api/users/42"]


@pytest.mark.parametrize(
    "event",
    [
        http("/static/app.js", response_content_type="text/javascript"),
        http("/assets/logo", response_content_type="image/png"),
        http("/fonts/a.woff2", response_content_type=None),
        http("/style.css", response_content_type="text/css; charset=utf-8"),
        http("/products", response_content_type="text/html; charset=utf-8"),
        http("/__rsproxy/probe.js"),
        http("/@vite/client"),
        http("/ws", websocket=True, status=101),
        http(
            "/api/x",
            method="OPTIONS",
            status=204,
            request_headers=[["access-control-request-method", "POST"]],
        ),
    ],
    ids=["script", "image", "font-by-extension", "css", "page", "rsproxy", "vite", "ws", "cors"],
)
def test_pages_static_assets_dev_server_internals_and_preflights_are_not_endpoints(
    event: Event,
) -> None:
    catalog = stage()
    run(catalog, event)
    assert endpoints(catalog) == {}


def test_pages_and_static_assets_can_be_asked_for() -> None:
    catalog = stage(include_pages=True, include_static=True)
    run(
        catalog,
        http("/products", response_content_type="text/html"),
        http("/static/app.js", response_content_type="text/javascript"),
    )
    assert sorted(endpoints(catalog)) == ["app GET /products", "app GET /static/app.js"]


def test_a_form_posted_to_a_page_is_an_endpoint_even_if_it_answers_html() -> None:
    catalog = stage()
    run(
        catalog,
        http(
            "/login",
            method="POST",
            status=200,
            response_content_type="text/html",
            request_body="user=ann&remember=1",
            request_content_type="application/x-www-form-urlencoded",
            request_size=19,
        ),
    )
    data = one(catalog)
    assert data["request"]["media_type"] == "application/x-www-form-urlencoded"
    assert data["request"]["schema"] == {
        "type": "object",
        "properties": {"user": {"type": "string"}, "remember": {"type": "integer"}},
        "required": ["user", "remember"],
    }


def test_sources_can_be_limited() -> None:
    catalog = stage(sources=["replay"])
    proxied = http("/api/a")
    replayed = http("/api/b")
    replayed.source = "replay"
    run(catalog, proxied, replayed)
    assert list(endpoints(catalog)) == ["app GET /api/b"]


def test_endpoints_beyond_the_cap_are_counted_not_kept() -> None:
    catalog = stage(max_endpoints=2)
    run(catalog, *(http(f"/api/thing{i}") for i in range(5)))
    assert len(endpoints(catalog)) == 2
    assert catalog._sessions[SESSION].overflow == 3


# ---- contracts -----------------------------------------------------------------------------------


def test_response_contracts_per_status_code_with_optional_and_nullable_fields() -> None:
    catalog = stage()
    run(
        catalog,
        http("/api/users/1", "/api/users/{userId}", response_body={"id": 1, "email": "a@b.co"}),
        http("/api/users/2", "/api/users/{userId}", response_body={"id": 2, "email": None}),
        http(
            "/api/users/3",
            "/api/users/{userId}",
            response_body={"id": 3, "email": "c@d.io", "bio": "x"},
        ),
        http(
            "/api/users/9",
            "/api/users/{userId}",
            status=404,
            response_content_type="application/problem+json",
            response_body={"error": "not found"},
        ),
    )
    data = one(catalog)
    ok = data["responses"]["200"]
    assert ok["count"] == 3 and ok["content_types"] == ["application/json"]
    assert ok["body"]["samples"] == 3
    assert ok["body"]["schema"] == {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": ["string", "null"], "format": "email"},
            "bio": {"type": "string"},
        },
        "required": ["id", "email"],
    }
    assert ok["body"]["example"] == {"id": 1, "email": "a@b.co"}
    missing = data["responses"]["404"]
    assert missing["content_types"] == ["application/problem+json"]
    assert missing["body"]["media_type"] == "application/problem+json"
    assert missing["body"]["schema"]["required"] == ["error"]
    assert data["response_content_types"] == ["application/json", "application/problem+json"]


def test_request_body_query_and_path_parameter_contracts() -> None:
    catalog = stage()
    run(
        catalog,
        http(
            "/api/users/7/orders",
            "/api/users/{userId}/orders",
            method="POST",
            status=201,
            query="draft=true&page=1",
            path_params={"userId": "7"},
            request_body={"items": [{"sku": "a", "qty": 1}], "note": None},
        ),
        http(
            "/api/users/8/orders",
            "/api/users/{userId}/orders",
            method="POST",
            status=201,
            query="page=2",
            path_params={"userId": "8"},
            request_body={"items": [{"sku": "b", "qty": 2, "gift": True}]},
        ),
    )
    data = one(catalog)
    assert data["request_bodies"] == 2
    assert data["request"]["schema"] == {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "sku": {"type": "string"},
                        "qty": {"type": "integer"},
                        "gift": {"type": "boolean"},
                    },
                    "required": ["sku", "qty"],
                },
            },
            "note": {"type": "null"},
        },
        "required": ["items"],
    }
    assert data["query"]["schema"] == {
        "type": "object",
        "properties": {"draft": {"type": "boolean"}, "page": {"type": "integer"}},
        "required": ["page"],
    }
    assert data["path_params"]["schema"] == {
        "type": "object",
        "properties": {"userId": {"type": "integer"}},
        "required": ["userId"],
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {"response_body_truncated": True},
        {"response_body_encoding": "base64"},
        {"response_content_type": "text/plain"},
    ],
    ids=["truncated", "base64", "not-json"],
)
def test_bodies_that_cannot_be_trusted_are_not_samples(overrides: dict[str, Any]) -> None:
    catalog = stage()
    run(
        catalog,
        http("/api/a", response_body={"id": 1}),
        http("/api/a", response_body='{"id": 2, "extra": "cut sh', **overrides),
    )
    body = one(catalog)["responses"]["200"]["body"]
    assert body["samples"] == 1
    assert body["schema"]["properties"] == {"id": {"type": "integer"}}


def test_a_body_that_is_not_json_after_all_is_skipped() -> None:
    catalog = stage()
    run(catalog, http("/api/a", response_body="{not json"), http("/api/a", response_body=[1]))
    body = one(catalog)["responses"]["200"]["body"]
    assert body["samples"] == 1 and body["schema"] == {
        "type": "array",
        "items": {"type": "integer"},
    }


def test_a_json_body_without_a_content_type_is_still_a_sample() -> None:
    catalog = stage()
    run(catalog, http("/api/a", response_content_type=None, response_body={"ok": True}))
    body = one(catalog)["responses"]["200"]["body"]
    assert body["schema"]["properties"] == {"ok": {"type": "boolean"}}


def test_an_exchange_without_response_is_counted_apart() -> None:
    catalog = stage()
    run(catalog, http("/api/a", status=None, error="connection refused", response_body=None))
    data = one(catalog)
    assert data["no_response"] == 1 and data["responses"] == {}


# ---- auth ----------------------------------------------------------------------------------------

SECRET = "s3cr3t-value-never-stored"


def test_auth_patterns_are_kept_by_name_never_by_value(store: Store) -> None:
    spec = parse_spec(
        "version: 1\nstages:\n  - type: redact\n  - type: catalog\n  - type: persist\n", "t"
    )
    pipeline = Pipeline(spec, StageContext("test", SESSION, store))
    events = [
        http("/api/a", auth="bearer", request_headers=[["Authorization", f"Bearer {SECRET}"]]),
        http("/api/a", auth="api_key_header", request_headers=[["X-API-Key", SECRET]]),
        http("/api/a", auth="api_key_query", query=f"api_key={SECRET}&page=1"),
        http(
            "/api/a", auth="cookie", request_headers=[["Cookie", f"theme=dark; sessionid={SECRET}"]]
        ),
        http(
            "/api/a",
            auth="authorization_other",
            request_headers=[["Authorization", f"Digest {SECRET}"]],
        ),
        http("/api/a", auth="none"),
    ]
    for event in events:
        event.session_id = SESSION
        event.data["url"] = f"http://127.0.0.1:3000/api/a?{event.data['query']}"
    pipeline.run(events)
    pipeline.close()
    (row,) = stored(store).values()
    data = row["data"]
    assert data["auth"] == [
        "bearer",
        "api_key_header",
        "api_key_query",
        "cookie",
        "authorization_other",
        "none",
    ]
    assert data["auth_names"] == {
        "api_key_header": ["x-api-key"],
        "api_key_query": ["api_key"],
        "cookie": ["sessionid"],
        "authorization_other": ["Digest"],
    }
    assert SECRET not in json.dumps(data)
    assert SECRET not in json.dumps(store.query("SELECT * FROM endpoints"), default=str)


def test_an_authorization_value_without_a_scheme_is_never_taken_for_a_name() -> None:
    catalog = stage()
    run(
        catalog,
        http("/api/a", auth="authorization_other", request_headers=[["Authorization", SECRET]]),
    )
    data = one(catalog)
    assert data["auth"] == ["authorization_other"]
    assert data["auth_names"] == {}


# ---- the sample request --------------------------------------------------------------------------


def test_the_sample_request_is_the_first_success_without_connection_headers() -> None:
    catalog = stage()
    headers = [
        ["host", "127.0.0.1:3000"],
        ["content-length", "12"],
        ["accept-encoding", "gzip"],
        ["authorization", "Bearer [REDACTED]"],
        ["content-type", "application/json"],
    ]
    run(
        catalog,
        http("/api/a", method="POST", status=500, request_body={"n": 0}, request_headers=headers),
        http("/api/a", method="POST", status=201, request_body={"n": 1}, request_headers=headers),
        http("/api/a", method="POST", status=201, request_body={"n": 2}, request_headers=headers),
    )
    sample = one(catalog)["sample_request"]
    assert sample["status"] == 201
    assert json.loads(sample["body"]) == {"n": 1}
    assert sample["headers"] == [
        ["authorization", "Bearer [REDACTED]"],
        ["content-type", "application/json"],
    ]
    assert sample["method"] == "POST" and sample["url"] == "http://127.0.0.1:3000/api/a"


def test_a_truncated_request_body_is_left_out_of_the_sample() -> None:
    catalog = stage()
    run(
        catalog,
        http(
            "/api/a",
            method="POST",
            request_body='{"a": "cut',
            request_body_truncated=True,
            request_size=999_999,
        ),
    )
    sample = one(catalog)["sample_request"]
    assert sample["body"] is None and sample["body_omitted"] == "truncated"


# ---- sampling ------------------------------------------------------------------------------------


def test_after_full_samples_only_one_body_in_sample_every_is_parsed() -> None:
    catalog = stage(full_samples=3, sample_every=4)
    # each body brings a key of its own, so which bodies were parsed shows in the contract
    run(catalog, *(http("/api/a", response_body={f"k{n}": n}) for n in range(1, 13)))
    body = one(catalog)["responses"]["200"]["body"]
    assert set(body["schema"]["properties"]) == {"k1", "k2", "k3", "k4", "k8", "k12"}
    assert body["samples"] == 6


def test_identical_bodies_are_parsed_once() -> None:
    catalog = stage()
    run(catalog, *(http("/api/a", response_body={"same": True}) for _ in range(50)))
    body = one(catalog)["responses"]["200"]["body"]
    assert body["samples"] == 1


def test_a_settled_contract_is_sampled_ever_more_rarely_until_it_changes() -> None:
    catalog = stage(full_samples=2, sample_every=2)
    events = [http("/api/a", response_body={"id": n}) for n in range(1, 41)]
    run(catalog, *events)
    endpoint = catalog._sessions[SESSION].endpoints[("app", "GET", "/api/a")]
    contract = endpoint.responses[200].body
    # first 2 parsed; then every 2nd until 2 in a row changed nothing, then every 4th, ...
    assert contract.step > 2
    parsed_before = contract.acc.samples
    assert parsed_before < 20
    # a change resets the pace
    n = endpoint.responses[200].count + 1
    while n % contract.step:
        run(catalog, http("/api/a", response_body={"id": n}))
        n += 1
    run(catalog, http("/api/a", response_body={"id": n, "new": "field"}))
    assert contract.step == 0
    assert "new" in contract.acc.schema["properties"]


# ---- refined templates ---------------------------------------------------------------------------


def test_endpoints_of_templates_folded_into_a_new_one_are_merged_and_their_rows_deleted(
    store: Store,
) -> None:
    catalog = stage(store)
    run(
        catalog,
        http("/api/teams/alpha", response_body={"id": "alpha", "size": 3}),
        http("/api/teams/beta", auth="bearer", response_body={"id": "beta", "size": None}),
    )
    catalog.flush()
    assert sorted(stored(store)) == ["app GET /api/teams/alpha", "app GET /api/teams/beta"]
    run(
        catalog,
        http(
            "/api/teams/gamma",
            "/api/teams/{teamId}",
            template_refined_from=["/api/teams/alpha", "/api/teams/beta"],
            response_body={"id": "gamma", "size": 5, "owner": "x"},
        ),
    )
    data = one(catalog)
    assert data["path_template"] == "/api/teams/{teamId}"
    assert sorted(data["merged_from"]) == ["/api/teams/alpha", "/api/teams/beta"]
    assert data["seen"] == 3 and data["responses"]["200"]["count"] == 3
    assert data["auth"] == ["none", "bearer"]
    schema = data["responses"]["200"]["body"]["schema"]
    assert schema["properties"]["size"] == {"type": ["integer", "null"]}
    assert schema["required"] == ["id", "size"]
    catalog.flush()
    assert list(stored(store)) == ["app GET /api/teams/{teamId}"]


# ---- writing and reloading -----------------------------------------------------------------------


def test_rows_are_written_on_flush_with_the_contracts_columns(store: Store) -> None:
    catalog = stage(store, write_interval_ms=60_000)
    run(catalog, http("/api/users/1", "/api/users/{userId}", response_body={"id": 1}))
    assert stored(store) == {}  # busy, and the interval has not passed
    catalog.flush()
    row = stored(store)[endpoint_key("app", "GET", "/api/users/{userId}")]
    assert (row["service"], row["host"], row["method"], row["path_template"]) == (
        "app",
        "127.0.0.1",
        "GET",
        "/api/users/{userId}",
    )
    assert row["data"]["responses"]["200"]["body"]["schema"]["required"] == ["id"]
    assert row["data"]["origins"] == ["http://127.0.0.1:3000"]


def test_while_busy_only_endpoints_with_news_are_written(store: Store) -> None:
    catalog = stage(store, write_interval_ms=0)
    run(catalog, http("/api/a", response_body={"id": 1}), http("/api/b", response_body={"id": 1}))
    first = {k: r["updated_ms"] for k, r in stored(store).items()}
    assert sorted(first) == ["app GET /api/a", "app GET /api/b"]
    # /api/a gains a status (news); /api/b only a repeat (counts): only /api/a is rewritten
    run(catalog, http("/api/a", status=404), http("/api/b", response_body={"id": 1}))
    second = {k: r for k, r in stored(store).items()}
    assert second["app GET /api/a"]["updated_ms"] > first["app GET /api/a"]
    assert second["app GET /api/b"]["updated_ms"] == first["app GET /api/b"]
    assert second["app GET /api/b"]["data"]["seen"] == 1
    catalog.flush()  # idle: the counts are written too
    assert stored(store)["app GET /api/b"]["data"]["seen"] == 2


def test_a_new_stage_instance_continues_from_the_stored_rows(store: Store) -> None:
    first = stage(store)
    run(first, http("/api/a", response_body={"id": 1, "name": "x"}))
    first.close()
    second = stage(store)  # a hot reload of the pipeline
    run(second, http("/api/a", response_body={"id": 2}))
    second.close()
    data = stored(store)["app GET /api/a"]["data"]
    assert data["seen"] == 2
    body = data["responses"]["200"]["body"]
    assert body["samples"] == 2
    assert body["schema"]["required"] == ["id"]  # "name" became optional across instances


def stored_figures(store: Store) -> dict[str, dict[str, Any]]:
    rows = store.query("SELECT key, data FROM endpoint_figures WHERE session_id = ?", [SESSION])
    return {r["key"]: Figures(json.loads(r["data"])).summary() for r in rows}


def test_figures_are_written_at_every_write_and_carried_across_instances(store: Store) -> None:
    first = stage(store, write_interval_ms=0)
    run(first, http("/api/a", response_body={"id": 1}, timings={"total_ms": 10.0}))
    # the second call brings no news for the contract, yet its figures are written while busy
    run(first, http("/api/a", status=404, timings={"total_ms": 30.0}))
    figures = stored_figures(store)["app GET /api/a"]
    assert (figures["calls"], figures["client_errors"], figures["p50"]) == (2, 1, 20.0)
    first.close()
    second = stage(store)  # a hot reload: it counts on from the stored figures
    run(second, http("/api/a", status=None, error="reset", timings={}))
    second.close()
    figures = stored_figures(store)["app GET /api/a"]
    assert figures["calls"] == 3 and figures["server_errors"] == 1
    assert figures["status_codes"] == {"200": 1, "404": 1, "none": 1}
    assert figures["timed"] == 2  # the dropped call had no latency


def test_a_page_answered_by_a_known_endpoint_is_a_call_not_a_sample() -> None:
    catalog = stage()
    run(
        catalog,
        http("/api/a", response_body={"id": 1}),
        http("/api/a", status=502, response_content_type="text/html", response_body="<h1>bad"),
        http("/static/app.css", response_content_type="text/css"),  # no endpoint to count in
    )
    endpoint = catalog._sessions[SESSION].endpoints[("app", "GET", "/api/a")]
    assert endpoint.figures is not None and endpoint.figures.summary()["status_codes"] == {
        "200": 1,
        "502": 1,
    }
    assert list(endpoints(catalog)) == ["app GET /api/a"]
    assert endpoints(catalog)["app GET /api/a"]["seen"] == 1


def test_folded_endpoints_figures_are_merged_and_their_rows_deleted(store: Store) -> None:
    catalog = stage(store)
    run(
        catalog,
        http("/api/teams/alpha", timings={"total_ms": 10.0}),
        http("/api/teams/beta", status=500, timings={"total_ms": 20.0}),
    )
    catalog.flush()
    assert sorted(stored_figures(store)) == ["app GET /api/teams/alpha", "app GET /api/teams/beta"]
    run(
        catalog,
        http(
            "/api/teams/gamma",
            "/api/teams/{teamId}",
            template_refined_from=["/api/teams/alpha", "/api/teams/beta"],
            timings={"total_ms": 30.0},
        ),
    )
    catalog.flush()
    figures = stored_figures(store)
    assert list(figures) == ["app GET /api/teams/{teamId}"]
    merged = figures["app GET /api/teams/{teamId}"]
    assert (merged["calls"], merged["server_errors"], merged["p50"]) == (3, 1, 20.0)


def test_an_endpoint_stored_without_figures_keeps_none(store: Store) -> None:
    first = stage(store)
    run(first, http("/api/a", response_body={"id": 1}))
    first.close()
    # as a store written before figures were kept
    store.query("DELETE FROM endpoint_figures")
    second = stage(store)
    run(second, http("/api/a"), http("/api/b"))
    second.close()
    # counting on from the middle would be wrong: /api/a has none, the new /api/b has its own
    assert list(stored_figures(store)) == ["app GET /api/b"]


def test_a_failing_event_is_isolated_and_passed_on(store: Store) -> None:
    spec = parse_spec("version: 1\nstages:\n  - type: catalog\n", "t")
    pipeline = Pipeline(spec, StageContext("test", SESSION, store))
    bad = http("/api/a")
    bad.data["path"] = 42  # not a path: the stage fails on this event only
    good = http("/api/b")
    out = pipeline.run([bad, good])
    assert out == [bad, good]
    assert pipeline.stats()["catalog"]["errors"] == 1
    pipeline.close()
    assert list(stored(store)) == ["app GET /api/b"]
