"""The catalog reports (rsproxy/reports/catalog.py) over a real DuckDB store.

A session is run through the real ``catalog`` and ``persist`` stages, with known latencies,
statuses and bodies, so every figure the reports give (calls, rates, p50/p95, status counts,
error samples, last seen/success), read from ``endpoint_figures`` or counted from the ``http``
table, and every contract they read from ``endpoints`` can be checked exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from rsproxy import reports
from rsproxy.errors import ReportError
from rsproxy.events import Event
from rsproxy.pipeline.engine import Pipeline
from rsproxy.pipeline.spec import parse_spec
from rsproxy.pipeline.stage import StageContext
from rsproxy.store import SessionInfo, Store
from rsproxy.testing import make_http_event

SID = "a" * 32
T0 = 1_700_000_000_000.0


def http(
    ts: float,
    path: str,
    template: str,
    *,
    total_ms: float,
    status: int | None = 200,
    service: str = "app",
    host: str = "127.0.0.1",
    **overrides: Any,
) -> Event:
    body = overrides.pop("body", None)
    data: dict[str, Any] = {
        "path": path,
        "path_template": template,
        "service": service,
        "host": host,
        "url": f"http://{host}:3000{path}",
        "status": status,
        "timings": {"total_ms": total_ms},
        "response_body": json.dumps(body) if body is not None else None,
    }
    data.update(overrides)
    event = make_http_event(**data)
    event.ts = ts
    event.session_id = SID
    return event


def traffic() -> list[Event]:
    events = []
    # GET /api/users/{userId}: 10 calls, 10..100 ms, two 404s, bearer; email nullable, bio optional
    for n in range(10):
        missing = n in (3, 9)
        body = (
            {"error": "no such user"}
            if missing
            else {
                "id": n,
                "email": None if n % 2 else f"u{n}@example.com",
                **({"bio": "x"} if n == 0 else {}),
            }
        )
        events.append(
            http(
                T0 + n * 1000,
                f"/api/users/{n}",
                "/api/users/{userId}",
                total_ms=10.0 * (n + 1),
                status=404 if missing else 200,
                body=body,
                auth="bearer",
                path_params={"userId": str(n)},
            )
        )
    # POST /api/orders: 4 calls, a 500 and a dropped connection
    for n, status in enumerate([201, 500, 201, None]):
        events.append(
            http(
                T0 + 20_000 + n * 1000,
                "/api/orders",
                "/api/orders",
                total_ms=50.0,
                status=status,
                method="POST",
                body={"id": n} if status == 201 else ({"error": "db down"} if status else None),
                error="connection reset" if status is None else None,
                request_body=json.dumps({"sku": "a", "qty": n}),
                request_content_type="application/json",
                request_size=20,
                request_headers=[["x-api-key", "[REDACTED]"], ["content-type", "application/json"]],
                auth="api_key_header",
            )
        )
    # a third-party service the app calls
    events.append(
        http(
            T0 + 30_000,
            "/v1/charges",
            "/v1/charges",
            total_ms=300.0,
            service="stripe",
            host="api.stripe.com",
            method="POST",
            body={"id": "ch_1", "amount": 100},
            auth="bearer",
        )
    )
    return events


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store.duckdb")
    s.start_session(
        SessionInfo(
            id=SID,
            project="t",
            source="proxy",
            target="http://127.0.0.1:3000",
            started_ms=T0,
            git_commit="0123456789abcdef",
        )
    )
    spec = parse_spec("version: 1\nstages:\n  - type: catalog\n  - type: persist\n", "t")
    pipeline = Pipeline(spec, StageContext("t", SID, s))
    pipeline.run(traffic())
    pipeline.close()
    try:
        yield s
    finally:
        s.close()


def run(store: Store, name: str, **params: Any) -> Any:
    return reports.run(name, reports.ReportContext(store), params)


def by_key(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["key"]: e for e in answer["endpoints"]}


# ---- catalog ------------------------------------------------------------------------------------


def test_catalog_figures(store: Store) -> None:
    answer = run(store, "catalog")
    assert answer["session"] == SID and answer["count"] == 3
    assert answer["services"] == ["app", "stripe"]
    assert [e["key"] for e in answer["endpoints"]] == [
        "app POST /api/orders",
        "app GET /api/users/{userId}",
        "stripe POST /v1/charges",
    ]
    users = by_key(answer)["app GET /api/users/{userId}"]
    assert users["calls"] == 10
    assert users["success_rate"] == 0.8
    assert users["error_rate"] == 0.0 and users["client_error_rate"] == 0.2
    assert users["p50_ms"] == 55.0  # quantile_cont of 10, 20, ..., 100
    assert users["p95_ms"] == 95.5
    assert users["status_codes"] == {"200": 8, "404": 2}
    assert users["first_seen"] == T0 and users["last_seen"] == T0 + 9000
    assert users["last_success"] == T0 + 8000  # the last call (n=9) was a 404
    assert users["auth"] == {"bearer": 10}
    assert users["hosts"] == ["127.0.0.1"]
    assert users["origins"] == ["http://127.0.0.1:3000"]
    assert [s["status"] for s in users["error_samples"]] == [404, 404]
    assert json.loads(users["error_samples"][0]["body"]) == {"error": "no such user"}

    orders = by_key(answer)["app POST /api/orders"]
    assert orders["calls"] == 4
    assert orders["success_rate"] == 0.5 and orders["error_rate"] == 0.5
    assert orders["status_codes"] == {"201": 2, "500": 1, "none": 1}
    errors = orders["error_samples"]
    assert [e["status"] for e in errors] == [None, 500]  # newest first
    assert errors[0]["error"] == "connection reset"
    assert orders["auth_names"] == {"api_key_header": ["x-api-key"]}
    assert orders["sample_request"]["status"] == 201


@pytest.mark.parametrize("name", ["catalog", "service_map", "api_health"])
def test_stored_figures_answer_as_counting_the_http_rows_does(store: Store, name: str) -> None:
    assert store.query("SELECT count(*) AS n FROM endpoint_figures")[0]["n"] == 3
    from_figures = run(store, name)
    # A store written before figures were kept: the reports count the http rows instead.
    store.query("DELETE FROM endpoint_figures")
    assert run(store, name) == from_figures


def test_catalog_contracts_are_the_merged_schemas(store: Store) -> None:
    users = by_key(run(store, "catalog"))["app GET /api/users/{userId}"]
    contract = users["contract"]
    ok = contract["responses"]["200"]
    assert ok["samples"] == 8 and ok["count"] == 8
    assert ok["schema"] == {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": ["string", "null"], "format": "email"},
            "bio": {"type": "string"},
        },
        "required": ["id", "email"],
    }
    assert contract["responses"]["404"]["schema"]["required"] == ["error"]
    assert contract["path_params"]["schema"]["properties"] == {"userId": {"type": "integer"}}
    assert contract["request"] is None
    orders = by_key(run(store, "catalog"))["app POST /api/orders"]["contract"]
    assert orders["request"]["required"] is True
    assert orders["request"]["schema"] == {
        "type": "object",
        "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
        "required": ["sku", "qty"],
    }


def test_catalog_filters(store: Store) -> None:
    assert [e["key"] for e in run(store, "catalog", service="stripe")["endpoints"]] == [
        "stripe POST /v1/charges"
    ]
    assert [e["key"] for e in run(store, "catalog", method="get")["endpoints"]] == [
        "app GET /api/users/{userId}"
    ]
    assert [e["key"] for e in run(store, "catalog", path="orders")["endpoints"]] == [
        "app POST /api/orders"
    ]
    limited = run(store, "catalog", limit=1, contracts=False, error_samples=0)
    assert limited["count"] == 3 and limited["truncated"] and len(limited["endpoints"]) == 1
    assert "contract" not in limited["endpoints"][0]
    assert "error_samples" not in limited["endpoints"][0]


def test_bad_parameters_and_unknown_names_are_clear_errors(store: Store) -> None:
    with pytest.raises(ReportError, match=r"no service 'strpe'.*services: app, stripe"):
        run(store, "catalog", service="strpe")
    with pytest.raises(ReportError, match=r"bad parameters for report 'catalog'.*error_samples"):
        run(store, "catalog", error_samples=-1)
    with pytest.raises(ReportError, match="Valid parameters"):
        run(store, "catalog", colour="red")
    with pytest.raises(ReportError, match="no session 'zzzz'"):
        run(store, "catalog", session="zzzz")


def test_a_session_without_catalog_says_why(store: Store) -> None:
    other = "b" * 32
    store.start_session(
        SessionInfo(id=other, project="t", source="proxy", target=None, started_ms=T0 + 1)
    )
    event = http(T0 + 5, "/api/x", "/api/x", total_ms=1.0)
    event.session_id = other
    store.write_events([event])
    answer = run(store, "catalog")  # "current" without a daemon: the latest session
    assert answer["session"] == other and answer["endpoints"] == []
    assert "catalog stage was not in its pipeline" in answer["notes"][0]


# ---- service map and health ----------------------------------------------------------------------


def test_service_map(store: Store) -> None:
    answer = run(store, "service_map")
    services = {s["service"]: s for s in answer["services"]}
    assert [s["service"] for s in answer["services"]] == ["app", "stripe"]
    assert services["app"]["endpoints"] == 2 and services["app"]["calls"] == 14
    assert services["app"]["error_rate"] == round(2 / 14, 4)
    assert services["app"]["auth"] == ["api_key_header", "bearer"]
    assert services["stripe"]["hosts"] == ["api.stripe.com"]
    assert services["stripe"]["p95_ms"] == 300.0
    with pytest.raises(ReportError, match="no service 'nope'"):
        run(store, "service_map", service="nope")


def test_api_health_classes_endpoints_worst_first(store: Store) -> None:
    answer = run(store, "api_health", slow_ms=200)
    health = {e["key"]: (e["health"], e["reasons"]) for e in answer["endpoints"]}
    assert health == {
        "app POST /api/orders": ("failing", ["50% server errors or no response"]),
        "stripe POST /v1/charges": ("degraded", ["p95 300 ms > 200 ms"]),
        "app GET /api/users/{userId}": ("healthy", []),
    }
    assert answer["endpoints"][0]["key"] == "app POST /api/orders"
    assert answer["summary"] == {"failing": 1, "degraded": 1, "healthy": 1}


# ---- OpenAPI, docs, cURL -------------------------------------------------------------------------


def test_openapi_of_the_session_validates_and_carries_the_contracts(store: Store) -> None:
    doc = run(store, "openapi")
    validate(doc)
    assert doc["info"]["version"] == "0123456789ab"
    assert "http://127.0.0.1:3000" in doc["info"]["description"]
    assert doc["servers"] == [{"url": "http://127.0.0.1:3000"}]
    get_user = doc["paths"]["/api/users/{userId}"]["get"]
    assert get_user["parameters"][0] == {
        "name": "userId",
        "in": "path",
        "required": True,
        "schema": {"type": "integer"},
    }
    assert get_user["responses"]["200"]["content"]["application/json"]["schema"]["required"] == [
        "id",
        "email",
    ]
    assert get_user["security"] == [{"bearerAuth": []}]
    charge = doc["paths"]["/v1/charges"]["post"]
    assert charge["servers"] == [{"url": "http://api.stripe.com:3000"}]
    only_stripe = run(store, "openapi", service="stripe", title="Stripe calls")
    validate(only_stripe)
    assert list(only_stripe["paths"]) == ["/v1/charges"]
    assert only_stripe["info"]["title"] == "Stripe calls"


def test_api_docs(store: Store) -> None:
    answer = run(store, "api_docs")
    assert answer["endpoints"] == 3
    text = answer["markdown"]
    assert "### `GET /api/users/{userId}`" in text
    assert "| `email` | string (email) \\| null | yes |" in text
    assert "- 500 (event" in text and "connection reset" in text


def test_curl_finds_the_endpoint_by_key_method_and_path_or_literal_path(store: Store) -> None:
    for name in ("app POST /api/orders", "POST /api/orders", "/api/orders"):
        answer = run(store, "curl", endpoint=name)
        assert answer["endpoint"] == "app POST /api/orders"
        assert answer["command"].startswith("curl -X POST http://127.0.0.1:3000/api/orders")
        assert "-H 'x-api-key: [REDACTED]'" in answer["command"]
        assert '--data-raw \'{"sku": "a", "qty": 0}\'' in answer["command"]
    literal = run(store, "curl", endpoint="GET /api/users/42?x=1")
    assert literal["endpoint"] == "app GET /api/users/{userId}"
    assert literal["status"] == 200
    with pytest.raises(ReportError, match="no endpoint matches 'GET /nothing'"):
        run(store, "curl", endpoint="GET /nothing")
    with pytest.raises(ReportError, match="endpoint"):
        run(store, "curl")


def test_curl_names_an_ambiguous_endpoint(store: Store) -> None:
    event = http(T0 + 40_000, "/api/orders", "/api/orders", total_ms=1.0)  # GET beside POST
    spec = parse_spec("version: 1\nstages:\n  - type: catalog\n  - type: persist\n", "t")
    pipeline = Pipeline(spec, StageContext("t", SID, store))
    pipeline.run([event])
    pipeline.close()
    with pytest.raises(ReportError, match="matches 2 endpoints"):
        run(store, "curl", endpoint="/api/orders")


def test_the_live_session_after_clear_events_counts_only_what_came_since(store: Store) -> None:
    ctx = reports.ReportContext(store, current_session=SID, cleared_ms=T0 + 5_500)
    answer = reports.run("catalog", ctx, {})
    endpoints = by_key(answer)
    # /api/users/{userId} calls 6..9 and everything after; nothing of /api/orders is older
    assert endpoints["app GET /api/users/{userId}"]["calls"] == 4
    assert endpoints["app POST /api/orders"]["calls"] == 4
    # read from the store with no daemon (no live session), nothing is cut
    assert by_key(run(store, "catalog", session=SID))["app GET /api/users/{userId}"]["calls"] == 10
    cleared_all = reports.ReportContext(store, current_session=SID, cleared_ms=T0 + 99_000)
    assert reports.run("catalog", cleared_all, {})["endpoints"] == []
