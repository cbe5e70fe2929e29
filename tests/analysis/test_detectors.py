"""The issue detectors (rsproxy/analysis/detectors.py), one event at a time.

Each detector must fire just over its threshold and not at it, keep one finding per key however
often the problem repeats (count, first/last seen, capped evidence), respect its window, and keep
bounded state. Events are built the way the proxy and the probe make them; normalize's fields
(``path_template``, SQL ``fingerprint``...) are left out unless a test is about them, so the
fallbacks are what is tested.
"""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from rsproxy.analysis.detectors import (
    DETECTORS,
    DetectorName,
    Detectors,
    Finding,
    Findings,
    ResponseShapes,
    Thresholds,
    error_key,
    finding_id,
    is_api_call,
    page_of,
    similar_keys,
    sql_fields,
    template_of,
)
from rsproxy.events import Event
from rsproxy.testing import make_event, make_http_event

T0 = 1_700_000_000_000.0


def _http(
    path: str = "/api/items/1",
    *,
    ts: float = T0,
    method: str = "GET",
    status: int | None = 200,
    page: str | None = "page1",
    body: Any = None,
    ctype: str = "application/json",
    auth: str = "none",
    total_ms: float = 5.0,
    headers: tuple[tuple[str, str], ...] = (),
    **extra: Any,
) -> Event:
    request_headers = [["host", "127.0.0.1:3000"], *map(list, headers)]
    if page is not None:
        request_headers.append(["x-rsproxy-request-id", f"{page}-{int(ts)}"])
    event = make_http_event(
        method=method,
        path=path,
        url=f"http://127.0.0.1:3000{path}",
        status=status,
        request_headers=request_headers,
        response_content_type=ctype,
        response_body=json.dumps(body) if body is not None else '{"id": 1}',
        auth=auth,
        timings={"ttfb_ms": 1.0, "total_ms": total_ms},
        **extra,
    )
    event.ts = ts
    return event


def _probe(kind: str, ts: float = T0, page_id: str = "page1", **data: Any) -> Event:
    event = make_event(kind, **data)
    event.ts, event.source, event.page_id = ts, "probe", page_id
    return event


def _sql(text: str, ts: float = T0, **data: Any) -> Event:
    event = make_event("sql", text=text, **data)
    event.ts, event.source = ts, "tap"
    return event


def _run(events: list[Event], **thresholds: Any) -> Detectors:
    detectors = Detectors(Thresholds(**thresholds))
    for event in events:
        detectors.observe(event)
    detectors.finish()
    return detectors


def _found(detectors: Detectors, detector: str | None = None) -> list[Finding]:
    return [f for f in detectors.findings if detector is None or f.detector == detector]


def _one(detectors: Detectors, detector: str) -> Finding:
    found = _found(detectors, detector)
    assert len(found) == 1, [(f.detector, f.key) for f in _found(detectors)]
    return found[0]


# ---- payload helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/api/users/42", "/api/users/{id}"),
        ("/api/users/42/orders/7", "/api/users/{id}/orders/{id}"),
        ("/api/o/9f1c2d3e-0b1a-4c5d-8e9f-0a1b2c3d4e5f", "/api/o/{id}"),
        ("/api/o/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/api/o/{id}"),
        ("/api/o/507f1f77bcf86cd799439011", "/api/o/{id}"),
        ("/api/user-preferences", "/api/user-preferences"),
        ("/api/users/deadbeefcafe", "/api/users/deadbeefcafe"),  # short hex: could be a word
        ("/", "/"),
    ],
)
def test_template_fallback_replaces_id_segments_only(path: str, template: str) -> None:
    assert template_of({"path": path}) == template


def test_template_prefers_normalizes_template() -> None:
    assert template_of({"path": "/r/acme/web", "path_template": "/r/{owner}/{repo}"}) == (
        "/r/{owner}/{repo}"
    )


def test_api_calls_exclude_documents_assets_streams_and_preflights() -> None:
    assert is_api_call({"path": "/api/x", "response_content_type": "application/json"}, "GET")
    assert is_api_call({"path": "/api/x", "response_content_type": None}, "DELETE")
    assert not is_api_call({"path": "/", "response_content_type": "text/html"}, "GET")
    assert not is_api_call({"path": "/assets/app.js", "response_content_type": None}, "GET")
    assert not is_api_call({"path": "/logo", "response_content_type": "image/png"}, "GET")
    assert not is_api_call({"path": "/sse", "response_content_type": "text/event-stream"}, "GET")
    assert not is_api_call({"path": "/api/x"}, "OPTIONS")
    assert not is_api_call({"path": "/ws", "websocket": True}, "GET")
    assert not is_api_call(
        {"path": "/locales/en.json", "response_content_type": "application/json"}, "GET"
    )


def test_page_of_reads_the_probe_request_id_then_the_referer() -> None:
    assert page_of({"request_headers": [["X-Rsproxy-Request-Id", "ab12-7"]]}) == "page:ab12"
    assert page_of({"request_headers": [["referer", "http://h/cart?x=1"]]}) == "http://h/cart"
    assert page_of({"request_headers": []}) == ""


def test_error_key_masks_what_varies() -> None:
    assert error_key("item 42 failed (0x1f)") == error_key("item 43 failed (0xff)")
    assert error_key("item 42 failed") != error_key("order 42 failed")


def test_response_shapes_tell_optional_fields_from_inconsistencies() -> None:
    first = {"id": 1, "name": "a", "email": None}
    shapes = ResponseShapes(first, "e1", json.dumps(first))
    assert shapes.first == "{id: number, name: string, email: null}"
    # nullable, optional and extra keys: a normal contract
    assert shapes.difference({"id": 2, "name": "b", "email": "b@x"}) is None
    assert shapes.difference({"id": 3, "name": None}) is None
    assert shapes.difference({"id": 4, "name": "d", "tags": ["x"]}) is None
    # a key renamed: missing where every earlier answer had it, a similar new key instead
    assert shapes.difference({"id": 5, "fullName": "e"}) == {"renamed": {"name": "fullName"}}
    # a key's type changed
    assert shapes.difference({"id": "6", "name": "f"}) == {
        "changed_types": {"id": {"was": "number", "now": "string"}}
    }
    assert shapes.difference([1]) == {"type": {"was": "object", "now": "array"}}


def test_response_shapes_of_arrays_and_unrelated_keys() -> None:
    items = ResponseShapes([], "e1", "[]")
    assert items.difference([1, 2]) is None  # the first item type seen
    assert items.difference([]) is None
    assert items.difference(["a"]) == {"item_type": {"was": "number", "now": "string"}}
    # a key dropped and an unrelated one added: two optional fields, not a rename
    shapes = ResponseShapes({"id": 1, "email": "x"}, "e1", "")
    assert shapes.difference({"id": 2, "tags": []}) is None


@pytest.mark.parametrize(
    ("a", "b", "similar"),
    [("name", "fullName", True), ("user_id", "userId", True), ("email", "emailAddress", True),
     ("email", "tags", False), ("id", "uuid", False)],
)  # fmt: skip
def test_similar_keys(a: str, b: str, similar: bool) -> None:
    assert similar_keys(a, b) is similar


def test_sql_fields_fall_back_to_a_light_parse() -> None:
    _, fingerprint, stype, tables, star = sql_fields(
        {
            "text": "SELECT * FROM public.users u JOIN orders o ON o.uid = u.id WHERE u.id IN (1, 2, 3) AND name = 'x'"
        }
    )
    assert fingerprint == (
        "SELECT * FROM public.users u JOIN orders o ON o.uid = u.id WHERE u.id IN (?) AND name = ?"
    )
    assert (stype, tables, star) == ("select", ["public.users", "orders"], True)
    assert sql_fields({"text": "select count(*) from t"})[4] is False
    # normalize's fields win
    given = {"text": "x", "fingerprint": "F", "statement_type": "insert", "tables": ["t"]}
    assert sql_fields({**given, "select_star": False})[1:] == ("F", "insert", ["t"], False)


# ---- findings -------------------------------------------------------------------------------------


def _occur(findings: Findings, event: Event, key: str = "k") -> Finding | None:
    evidence = (event.id,)
    return findings.hit("d", key, event, evidence) or findings.new(
        "d", key, event, evidence, severity="low", title="t", suggestion="s"
    )


def test_findings_are_deduplicated_and_keep_first_and_latest_evidence() -> None:
    findings = Findings(max_evidence=4)
    events = [_probe("console", ts=T0 + i) for i in range(10)]
    for event in events[1:]:
        _occur(findings, event)
    _occur(findings, events[0])  # late: an earlier timestamp moves first_seen back
    assert len(findings) == 1
    finding = findings.get("d", "k")
    assert finding is not None and finding.id == finding_id("d", "k")
    assert finding.count == 10
    assert (finding.first_seen, finding.last_seen) == (T0, T0 + 9)
    assert finding.evidence == [events[1].id, events[2].id, events[9].id, events[0].id]
    assert [f for f, _ in findings.take_new()] == [finding]
    assert findings.take_new() == []
    assert findings.take_changed() == [finding]
    assert findings.take_changed() == []


def test_a_finding_row_round_trips_and_is_explained_from_its_details() -> None:
    findings = Findings()
    findings.explainers["d"] = lambda f: f"seen {f.count} times, worst {f.details['worst']}"
    finding = _occur(findings, _probe("console"))
    assert finding is not None
    finding.details["worst"] = 3
    _occur(findings, _probe("console", ts=T0 + 1))
    row = finding.row("s1")
    assert row["data"]["explanation"] == "seen 2 times, worst 3"
    back = Finding.from_row({**row, "data": json.dumps(row["data"])}, cap=20)
    assert back.row("s1") == row
    restored = Findings()
    restored.explainers["d"] = findings.explainers["d"]
    restored.restore([back])
    assert _occur(restored, _probe("console", ts=T0 + 2)) is back and back.count == 3
    assert back.data()["explanation"] == "seen 3 times, worst 3"


def test_findings_are_capped() -> None:
    findings = Findings(limit=3)
    for n in range(5):
        _occur(findings, _probe("console"), key=str(n))
    assert len(findings) == 3 and findings.dropped == 2


# ---- HTTP -----------------------------------------------------------------------------------------


def test_failed_requests_grouped_per_template_and_status() -> None:
    d = _run(
        [
            _http("/api/items/1", status=500),
            _http("/api/items/2", status=500, ts=T0 + 50_000),
            _http("/api/items/3", status=404),
            _http("/api/items/4", status=200),
            _http("/api/items/5", status=304),
            _http("/api/items/6", status=399),
        ]
    )
    found = {f.key: f for f in _found(d, "failed_request")}
    assert set(found) == {"GET /api/items/{id} 500", "GET /api/items/{id} 404"}
    server = found["GET /api/items/{id} 500"]
    assert (server.severity, server.count, len(server.evidence)) == ("high", 2, 2)
    assert (server.first_seen, server.last_seen) == (T0, T0 + 50_000)
    assert found["GET /api/items/{id} 404"].severity == "medium"
    assert "404" in found["GET /api/items/{id} 404"].title


def test_no_response_is_high_unless_the_client_went_away() -> None:
    refused = _http("/api/a", status=None, error="Connection refused")
    left = _http("/api/b", status=None, error="Client disconnected.")
    d = _run([refused, left])
    finding = _one(d, "failed_request")
    assert finding.key == "GET /api/a no response" and finding.severity == "high"


def test_slow_requests_over_the_limit_only() -> None:
    d = _run(
        [
            _http("/api/a", total_ms=3000),
            _http("/api/b", total_ms=3000.5),
            _http("/api/b", total_ms=4200),
            # a stream is slow by its first byte only
            _http("/sse", total_ms=60_000, ctype="text/event-stream", streamed=True),
        ]
    )
    finding = _one(d, "slow_request")
    assert finding.key == "GET /api/b" and finding.count == 2
    assert finding.details["worst_ms"] == 4200


def _reads(
    n: int, *, gap: float, page: str | None = "page1", start: float = T0, **kw: Any
) -> list[Event]:
    return [_http(f"/api/items/{i}", ts=start + i * gap, page=page, **kw) for i in range(n)]


def test_n_plus_one_requests_fire_over_the_threshold_within_the_window() -> None:
    assert _found(_run(_reads(5, gap=100)), "n_plus_one_requests") == []
    d = _run(_reads(6, gap=100))
    finding = _one(d, "n_plus_one_requests")
    assert finding.key == "GET /api/items/{id}" and finding.count == 1
    assert len(finding.evidence) == 6
    assert finding.details["page_ids"] == ["page1"]


def test_n_plus_one_requests_window_and_pages() -> None:
    # six calls spread over 2.5 s: never more than five in 2 s
    assert _found(_run(_reads(6, gap=500)), "n_plus_one_requests") == []
    # six exactly 2 s apart end to end: the window includes both ends
    assert len(_found(_run(_reads(6, gap=400)), "n_plus_one_requests")) == 1
    # three on each of two pages
    two_pages = _reads(3, gap=10, page="a") + _reads(3, gap=10, page="b", start=T0 + 1)
    assert _found(_run(two_pages), "n_plus_one_requests") == []
    # from no known page (no probe request id, no Referer): not "per page", not counted
    assert _found(_run(_reads(20, gap=10, page=None)), "n_plus_one_requests") == []
    # the Referer tells the page when the probe's request id is missing
    referred = _reads(6, gap=10, page=None, headers=(("referer", "http://h/list?p=2"),))
    assert _one(_run(referred), "n_plus_one_requests").key == "GET /api/items/{id}"


def test_n_plus_one_counts_bursts_not_calls() -> None:
    events = _reads(9, gap=10) + _reads(7, gap=10, start=T0 + 10_000)
    finding = _one(_run(events), "n_plus_one_requests")
    assert finding.count == 2
    assert finding.details["largest_burst"] == 9


def test_n_plus_one_ignores_assets_and_writes() -> None:
    assets = [_http(f"/img/{i}.png", ts=T0 + i, ctype="image/png") for i in range(10)]
    writes = _reads(8, gap=10, method="POST")
    assert _found(_run(assets + writes), "n_plus_one_requests") == []


def test_n_plus_one_uses_the_template_not_the_url() -> None:
    events = [
        _http(f"/api/posts/post-{word}", ts=T0 + i, path_template="/api/posts/{slug}")
        for i, word in enumerate("abcdef")
    ]
    assert _one(_run(events), "n_plus_one_requests").key == "GET /api/posts/{slug}"


def test_write_amplification_over_http() -> None:
    def writes(n: int, **kw: Any) -> list[Event]:
        return [_http(f"/api/settings/s{i}", ts=T0 + i * 50, method="POST", **kw) for i in range(n)]

    assert _found(_run(writes(10)), "write_amplification") == []
    finding = _one(_run(writes(11)), "write_amplification")
    assert finding.key == "http 127.0.0.1" and finding.details["largest_burst"] == 11
    assert finding.details["targets"] == [f"POST /api/settings/s{i}" for i in range(11)]
    assert _found(_run(writes(20, service="google-analytics")), "write_amplification") == []
    assert _found(_run(writes(11)), "n_plus_one_requests") == []


def test_api_inconsistency_compares_shapes_per_endpoint_and_status() -> None:
    same = [
        _http("/api/p/1", body={"id": 1, "name": "a", "email": None}),
        _http("/api/p/2", body={"id": 2, "name": "b", "email": "b@x"}),
        _http("/api/p/3", body={"id": 3, "name": "c"}),  # email left out: optional
        _http("/api/p/4", status=404, body={"error": "nope"}),  # another status
    ]
    assert _found(_run(same), "api_inconsistency") == []
    renamed = _http("/api/p/5", body={"id": 5, "fullName": "d", "email": None}, ts=T0 + 5)
    again = _http("/api/p/6", body={"id": 6, "fullName": "e", "email": None}, ts=T0 + 6)
    d = _run([*same, renamed, again])
    finding = _one(d, "api_inconsistency")
    assert finding.key == "GET /api/p/{id} 200"
    assert finding.count == 1  # after the rename, fullName is simply what it answers
    assert finding.evidence == [same[0].id, renamed.id]
    (variant,) = finding.details["variants"]
    assert variant == {"example": renamed.id, "renamed": {"name": "fullName"}}
    assert "name became fullName" in finding.data()["explanation"]


def test_api_inconsistency_counts_each_answer_of_a_changed_type() -> None:
    events = [_http(f"/api/p/{n}", body={"id": n if n < 2 else str(n)}) for n in range(5)]
    finding = _one(_run(events), "api_inconsistency")
    assert finding.count == 3 and len(finding.details["variants"]) == 1  # one kind of change


def test_an_identical_answer_is_judged_like_the_last_one() -> None:
    body = {"id": "x"}
    events = [_http("/api/p/1", body={"id": 1})] + [_http("/api/p/1", body=body) for _ in range(4)]
    assert _one(_run(events), "api_inconsistency").count == 4


def test_a_settled_endpoint_is_sampled_until_it_differs() -> None:
    settled = [_http(f"/api/p/{n}", ts=T0 + n, body={"id": n}) for n in range(100)]
    changed = [_http(f"/api/p/{n}", ts=T0 + n, body={"id": str(n)}) for n in range(100, 124)]
    finding = _one(_run(settled + changed), "api_inconsistency")
    # answers 101 to 124: one in 8 is looked at (104) until one differs; then every one is
    assert finding.count == 124 - 104 + 1
    assert finding.evidence[:2] == [settled[0].id, changed[3].id]


def test_api_inconsistency_skips_truncated_and_non_json_bodies() -> None:
    events = [
        _http("/api/p/1", body={"id": 1}),
        _http("/api/p/2", body={"other": 1}, response_body_truncated=True),
        _http("/api/p/3", body={"other": 1}, ctype="text/plain"),
    ]
    assert _found(_run(events), "api_inconsistency") == []


def test_auth_mismatch_after_credentials_were_used() -> None:
    d = _run(
        [
            _http("/api/login", method="POST", ts=T0),  # before any token: fine
            _http("/api/public", ts=T0 + 1),  # before any token: fine
            _http("/api/account", auth="bearer", ts=T0 + 2),
            _http("/api/auth/refresh", ts=T0 + 3),  # renewing the token: fine
            _http("/assets/app.js", ctype="text/javascript", ts=T0 + 4),  # not an API call
            _http("/api/cart", auth="cookie", ts=T0 + 5),  # a credential too
            _http("/api/orders", ts=T0 + 6),
            _http("/api/orders", ts=T0 + 7),
        ]
    )
    finding = _one(d, "auth_mismatch")
    assert finding.key == "127.0.0.1" and finding.count == 2
    assert finding.details["authenticated"] == {"GET /api/account": "bearer"}
    assert finding.details["unauthenticated"] == ["GET /api/orders"]


def test_auth_consistent_services_have_no_mismatch() -> None:
    events = [
        _http("/api/a", auth="bearer"),
        _http("/api/b", auth="bearer", ts=T0 + 1),
        _http("/collect", ts=T0 + 2, service="google-analytics"),  # another service
        _http("/api/c", ts=T0 - 1),  # earlier than the first credential
    ]
    assert _found(_run(events), "auth_mismatch") == []


# ---- console --------------------------------------------------------------------------------------


def _errors(n: int, gap: float, message: str = "cart sync failed", **kw: Any) -> list[Event]:
    return [
        _probe("console", ts=T0 + i * gap, level="error", message=message, **kw) for i in range(n)
    ]


def test_console_error_spam() -> None:
    assert _found(_run(_errors(5, 100)), "console_error_spam") == []
    finding = _one(_run(_errors(6, 100)), "console_error_spam")
    assert finding.count == 1 and len(finding.evidence) == 6
    assert finding.details["message"] == "cart sync failed"
    # six over 12.5 s: never more than five in 10 s
    assert _found(_run(_errors(6, 2500)), "console_error_spam") == []
    # warnings are not errors
    warnings = [_probe("console", ts=T0 + i, level="warn", message="w") for i in range(9)]
    assert _found(_run(warnings), "console_error_spam") == []


def test_console_error_spam_groups_messages_that_differ_in_numbers_and_counts_uncaught() -> None:
    events = [
        _probe("console", ts=T0 + i, level="error", message=f"item {i} failed") for i in range(3)
    ] + [
        _probe("error", ts=T0 + 10 + i, type="error", message=f"item {i} failed") for i in range(3)
    ]
    finding = _one(_run(events), "console_error_spam")
    assert finding.key == "item # failed"


# ---- page performance -----------------------------------------------------------------------------


def test_long_tasks_one_finding_with_the_worst() -> None:
    d = _run(
        [
            _probe("long_task", duration_ms=100),
            _probe("long_task", duration_ms=100.1, ts=T0 + 1),
            _probe("long_task", duration_ms=250, ts=T0 + 2, page_id="page2"),
        ]
    )
    finding = _one(d, "long_task")
    assert finding.count == 2 and finding.details["worst_ms"] == 250
    assert finding.details["page_ids"] == ["page1", "page2"]


def test_large_dom_mutations_per_target() -> None:
    d = _run(
        [
            _probe("dom_mutation", added_nodes=500, target="body > ul#a"),
            _probe("dom_mutation", added_nodes=501, target="body > ul#b"),
            _probe("dom_mutation", added_nodes=900, target="body > ul#b"),
        ]
    )
    finding = _one(d, "large_dom_mutation")
    assert finding.key == "body > ul#b" and finding.count == 2
    assert finding.details["largest"] == 900


@pytest.mark.parametrize(
    ("name", "limit", "over"),
    [("LCP", 4000, 4000.1), ("CLS", 0.25, 0.2501), ("INP", 500, 501), ("FCP", 3000, 3001),
     ("TTFB", 1800, 1800.1)],
)  # fmt: skip
def test_poor_web_vitals_at_googles_thresholds(name: str, limit: float, over: float) -> None:
    assert _found(_run([_probe("vital", name=name, value=limit)]), "poor_web_vital") == []
    finding = _one(_run([_probe("vital", name=name, value=over)]), "poor_web_vital")
    assert finding.key == name and finding.details["worst"] == over


def test_a_vital_reported_again_for_the_same_page_counts_once() -> None:
    d = _run(
        [
            _probe("vital", name="CLS", value=0.3),
            _probe("vital", name="CLS", value=0.4, ts=T0 + 1),
            _probe("vital", name="CLS", value=0.5, ts=T0 + 2, page_id="page2"),
            _probe("vital", name="XYZ", value=1e9, ts=T0 + 3),
        ]
    )
    finding = _one(d, "poor_web_vital")
    assert finding.count == 2 and finding.details["worst"] == 0.5


# ---- state and renders ----------------------------------------------------------------------------


def _updates(n: int, gap: float, store: str = "cart") -> list[Event]:
    return [
        _probe("state", ts=T0 + i * gap, library="redux", store=store, action="cart/add", diff={})
        for i in range(n)
    ]


def test_store_thrashing() -> None:
    assert _found(_run(_updates(10, 50)), "store_thrashing") == []
    finding = _one(_run(_updates(11, 50)), "store_thrashing")
    assert finding.key == "redux:cart" and finding.details["actions"] == ["cart/add"]
    # eleven over 1.5 s: never more than ten in one second
    assert _found(_run(_updates(11, 150)), "store_thrashing") == []
    assert _found(_run(_updates(6, 10) + _updates(6, 10, store="ui")), "store_thrashing") == []


def _render(component: str, ts: float = T0, page_id: str = "page1", **data: Any) -> Event:
    reasons = data.pop("reasons", {})
    renders = data.pop("renders", sum(reasons.values()))
    return _probe(
        "render", ts=ts, page_id=page_id, component=component, renders=renders,
        reasons=reasons, actual_duration_ms=1.0, changed_props=[],
        identical_props=data.pop("identical_props", 0),
        commit_components=data.pop("commit_components", 1), **data,
    )  # fmt: skip


def test_unnecessary_renders_count_identical_props_renders_caused_by_the_parent() -> None:
    assert _found(_run([_render("Row", reasons={"parent": 20})]), "unnecessary_renders") == []
    d = _run(
        [_render("Row", reasons={"parent": 10}), _render("Row", T0 + 600, reasons={"parent": 11})]
    )
    finding = _one(d, "unnecessary_renders")
    assert finding.key == "Row" and finding.count == 1 and len(finding.evidence) == 2
    # apart by more than the 2 s window
    apart = [
        _render("Row", reasons={"parent": 15}),
        _render("Row", T0 + 2500, reasons={"parent": 15}),
    ]
    assert _found(_run(apart), "unnecessary_renders") == []
    # identical props because its own state changed: a necessary render
    own = _render("Counter", reasons={"state": 30}, identical_props=30)
    assert _found(_run([own]), "unnecessary_renders") == []


def _cascade(n: int, ts: float = T0, trigger: str = "App", **trigger_reasons: int) -> list[Event]:
    """One probe report: ``trigger`` changed state and ``n`` children re-rendered with it."""
    commit = n + 1
    reasons = {"state": 1, **trigger_reasons}
    events = [_render(trigger, ts, reasons=reasons, commit_components=commit)]
    events += [
        _render(f"Child{i}", ts, reasons={"parent": 1}, commit_components=commit) for i in range(n)
    ]
    return events


def test_render_cascade_over_the_component_limit() -> None:
    assert _found(_run(_cascade(19)), "render_cascade") == []  # 20 re-renders
    finding = _one(_run(_cascade(20)), "render_cascade")  # 21 re-renders
    assert finding.key == "App" and finding.details["largest"] == 21
    assert finding.evidence  # the render events of the commit


def test_render_cascade_ignores_mounts() -> None:
    # a mount: everything new
    mount = [_render(f"C{i}", reasons={"mount": 1}, commit_components=40) for i in range(40)]
    assert _found(_run(mount), "render_cascade") == []
    # a route change: the router's state changes and mounts a new page of 40 components
    route = [_render("Router", reasons={"state": 1}, commit_components=45)]
    route += [_render(f"New{i}", reasons={"mount": 1}, commit_components=45) for i in range(40)]
    route += [_render(f"Old{i}", reasons={"parent": 1}, commit_components=45) for i in range(4)]
    assert _found(_run(route), "render_cascade") == []
    # the trigger mounted in the same report window: its commit size may be the mount's
    assert _found(_run(_cascade(30, mount=1)), "render_cascade") == []


def test_render_reports_are_grouped_per_page_and_report() -> None:
    # two reports 600 ms apart of 15 re-renders each: neither is a cascade of more than 20
    events = _cascade(14) + _cascade(14, ts=T0 + 600)
    assert _found(_run(events), "render_cascade") == []
    # a report stays open until it is complete: the stage closes it once it is a second old
    # (wall clock) or when the pipeline idles
    d = Detectors()
    for event in _cascade(25):
        d.observe(event)
    assert _found(d, "render_cascade") == []  # still open: the report may go on
    d.finish(older_than_ms=1000, now_ms=0)  # not old enough yet
    assert _found(d, "render_cascade") == []
    d.finish()
    assert len(_found(d, "render_cascade")) == 1


def test_render_cascade_deduplicated_per_trigger() -> None:
    d = _run(_cascade(25) + _cascade(25, ts=T0 + 5000) + _cascade(25, T0 + 9000, trigger="Cart"))
    found = {f.key: f.count for f in _found(d, "render_cascade")}
    assert found == {"App": 2, "Cart": 1}


# ---- SQL ------------------------------------------------------------------------------------------


def test_slow_queries_grouped_by_fingerprint() -> None:
    d = _run(
        [
            _sql("SELECT name FROM users WHERE id = 1", duration_ms=500),
            _sql("SELECT name FROM users WHERE id = 2", duration_ms=501),
            _sql("SELECT name FROM users WHERE id = 3", duration_ms=900),
        ]
    )
    finding = _one(d, "slow_query")
    assert finding.key == "SELECT name FROM users WHERE id = ?"
    assert finding.count == 2 and finding.details["worst_ms"] == 900


def _selects(n: int, gap: float, *, same: bool = False) -> list[Event]:
    return [
        _sql(f"SELECT name FROM users WHERE id = {1 if same else i}", ts=T0 + i * gap)
        for i in range(n)
    ]


def test_n_plus_one_queries_need_different_values() -> None:
    assert _found(_run(_selects(5, 10)), "n_plus_one_queries") == []
    finding = _one(_run(_selects(6, 10)), "n_plus_one_queries")
    assert finding.key == "users" and finding.count == 1 and len(finding.evidence) == 6
    assert _found(_run(_selects(12, 10, same=True)), "n_plus_one_queries") == []
    assert _found(_run(_selects(6, 500)), "n_plus_one_queries") == []  # 2.5 s


def test_n_plus_one_queries_counts_bursts() -> None:
    events = _selects(8, 10) + [
        _sql(f"SELECT name FROM users WHERE id = {i}", ts=T0 + 10_000 + i) for i in range(6)
    ]
    assert _one(_run(events), "n_plus_one_queries").count == 2


def test_select_star() -> None:
    d = _run(
        [
            _sql("SELECT * FROM users WHERE id = 1"),
            _sql("SELECT * FROM users WHERE id = 2"),
            _sql("SELECT count(*) FROM users"),
            _sql("SELECT id FROM users", select_star=False),
        ]
    )
    finding = _one(d, "select_star")
    assert finding.key == "SELECT * FROM users WHERE id = ?" and finding.count == 2
    assert finding.severity == "low" and finding.details["tables"] == ["users"]


def test_write_amplification_over_sql() -> None:
    def inserts(n: int) -> list[Event]:
        return [
            _sql(f"INSERT INTO audit (x) VALUES ({i})", ts=T0 + i, database="app") for i in range(n)
        ]

    assert _found(_run(inserts(10)), "write_amplification") == []
    finding = _one(_run(inserts(11)), "write_amplification")
    assert finding.key == "sql app.audit"


# ---- configuration and bounds ---------------------------------------------------------------------


def test_thresholds_are_configurable_and_must_be_positive() -> None:
    assert _found(_run(_reads(4, gap=10), n_plus_one_requests=3), "n_plus_one_requests")
    with pytest.raises(ValidationError, match="greater than 0"):
        Thresholds(slow_request_ms=0)
    with pytest.raises(ValidationError, match="Extra inputs"):
        Thresholds(slow_request=1)  # type: ignore[call-arg]


def test_disabled_detectors_do_not_run() -> None:
    d = Detectors(disabled=["failed_request"])
    d.observe(_http(status=500))
    d.observe(_http(total_ms=9999))
    assert {f.detector for f in d.findings} == {"slow_request"}


def test_every_detector_is_named_documented_and_explained() -> None:
    import rsproxy.analysis.detectors as module

    assert set(get_args(DetectorName)) == set(DETECTORS)
    doc = module.__doc__ or ""
    assert all(name in doc for name in DETECTORS)
    assert set(Detectors().findings.explainers) == set(DETECTORS)


def test_state_stays_bounded_under_a_flood_of_distinct_keys() -> None:
    d = Detectors()
    for i in range(20_000):
        d.observe(_http(f"/api/x{i}/{i}", ts=T0 + i, page=f"p{i}"))
        d.observe(_probe("state", ts=T0 + i, library="redux", store=f"s{i}", action="a"))
        d.observe(_sql(f"SELECT a FROM t{i} WHERE id = {i}", ts=T0 + i))
    assert len(d._n1_requests.groups) <= 4096
    assert len(d._stores.groups) <= 4096
    assert len(d._queries) <= 4096
    assert len(d._shapes) <= 4096
    assert len(d.findings) == 0


@pytest.mark.parametrize(
    "first",
    [
        '{"id": NaN, "name": "a"}',
        '{"id": 1e400, "name": "a"}',
        '{"id": 123456789012345678901234567890}',
    ],
)
def test_api_inconsistency_reads_json_the_quick_parser_refuses_or_reads_otherwise(
    first: str,
) -> None:
    # NaN and out-of-range numbers go to the json module; a huge integer comes back from
    # orjson as a float: a number all the same, so only the string is a change of type.
    events = [_http("/api/n/1"), _http("/api/n/2", ts=T0 + 1, body={"id": "7", "name": "b"})]
    events[0].data["response_body"] = first
    finding = _one(_run(events), "api_inconsistency")
    assert finding.details["variants"][0]["changed_types"] == {
        "id": {"was": "number", "now": "string"}
    }
