"""The ``issues`` report (rsproxy/reports/issues.py) and ``rsproxy issues`` over a real store.

Findings are made the way a live session makes them: events through a pipeline of ``detect`` and
``persist`` into DuckDB. The report must sort by severity then count, filter by severity and
detector, cap with ``limit`` while telling the total, describe the evidence events, resolve page
ids to the pages' URLs, keep sessions apart, and honour ``clear_events`` for the live session.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rsproxy import reports
from rsproxy.cli import app
from rsproxy.errors import ReportError
from rsproxy.events import Event
from rsproxy.pipeline.engine import Pipeline
from rsproxy.pipeline.spec import parse_spec
from rsproxy.pipeline.stage import StageContext
from rsproxy.store import SessionInfo, Store
from rsproxy.testing import make_event, make_http_event

T0 = time.time() * 1000 - 60_000
A, B = "a" * 32, "b" * 32


def _session(store: Store, sid: str, started: float) -> None:
    store.start_session(
        SessionInfo(id=sid, project="shop", source="proxy", target=None, started_ms=started)
    )


def _capture(store: Store, sid: str, events: list[Event]) -> None:
    spec = parse_spec("version: 1\nstages:\n  - type: detect\n  - type: persist\n", "<test>")
    pipeline = Pipeline(spec, StageContext("shop", sid, store))
    for event in events:
        event.session_id = sid
    pipeline.run(events)
    pipeline.close()


def _http(path: str, status: int, ts: float, total_ms: float = 4.0) -> Event:
    event = make_http_event(path=path, status=status, timings={"total_ms": total_ms})
    event.ts = ts
    return event


def _probe(kind: str, ts: float, page_id: str = "page1", **data: Any) -> Event:
    event = make_event(kind, **data)
    event.ts, event.source, event.page_id = ts, "probe", page_id
    return event


def _shop(store: Store) -> None:
    """Session A: a 500 (twice), a 404 (three times), slow requests, error spam, a long task."""
    _session(store, A, T0)
    events = [
        _probe("page_view", T0, url="http://127.0.0.1:8080/cart", navigation="load"),
        _http("/api/cart/1", 500, T0 + 1),
        _http("/api/cart/2", 500, T0 + 2),
        *[_http(f"/api/img/{n}", 404, T0 + 10 + n) for n in range(3)],
        _http("/api/report", 200, T0 + 20, total_ms=4500),
        *[_probe("console", T0 + 30 + n, level="error", message="sync failed") for n in range(7)],
        _probe("long_task", T0 + 40, duration_ms=180),
    ]
    _capture(store, A, events)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store.duckdb")
    try:
        yield s
    finally:
        s.close()


def _run(store: Store, current: str | None = None, **params: Any) -> Any:
    return reports.run("issues", reports.ReportContext(store, current_session=current), params)


def test_issues_sorted_by_severity_then_count(store: Store) -> None:
    _shop(store)
    answer = _run(store, session=A)
    assert answer["session"] == A and answer["total"] == answer["returned"] == 5
    assert answer["by_severity"] == {"high": 1, "medium": 4, "low": 0}
    order = [(i["severity"], i["detector"], i["count"]) for i in answer["issues"]]
    assert order[0] == ("high", "failed_request", 2)
    assert order[1] == ("medium", "failed_request", 3)  # the 404s: medium, the most frequent
    assert [o[0] for o in order] == ["high", "medium", "medium", "medium", "medium"]
    counts = [o[2] for o in order[1:]]
    assert counts == sorted(counts, reverse=True)
    for issue in answer["issues"]:
        assert issue["title"] and issue["explanation"] and issue["suggestion"]
        assert issue["evidence"] and issue["key"]


def test_evidence_is_described_and_pages_resolved(store: Store) -> None:
    _shop(store)
    issues = {i["detector"] + " " + i["key"]: i for i in _run(store, session=A)["issues"]}
    server = issues["failed_request GET /api/cart/{id} 500"]
    assert [e["summary"] for e in server["evidence_events"]] == [
        "GET /api/cart/1 -> 500 (4 ms)",
        "GET /api/cart/2 -> 500 (4 ms)",
    ]
    spam = issues["console_error_spam sync failed"]
    assert len(spam["evidence"]) == 7 and len(spam["evidence_events"]) == 3
    assert spam["evidence_events"][0]["summary"] == "error: sync failed"
    assert spam["pages"] == ["http://127.0.0.1:8080/cart"]
    task = issues["long_task main-thread"]
    assert task["evidence_events"][0]["summary"] == "task of 180 ms"
    assert task["details"]["worst_ms"] == 180
    none = _run(store, session=A, evidence_events=0)["issues"]
    assert all(i["evidence_events"] == [] and i["evidence"] for i in none)


def test_filters_and_limit(store: Store) -> None:
    _shop(store)
    high = _run(store, session=A, severity="high")
    assert [i["severity"] for i in high["issues"]] == ["high"] and high["total"] == 1
    both = _run(store, session=A, severity=["high", "medium"], detector="failed_request")
    assert [i["count"] for i in both["issues"]] == [2, 3]
    comma = _run(store, session=A, detector="slow_request,long_task")
    assert {i["detector"] for i in comma["issues"]} == {"slow_request", "long_task"}
    capped = _run(store, session=A, limit=2)
    assert capped["total"] == 5 and capped["returned"] == 2
    assert [i["severity"] for i in capped["issues"]] == ["high", "medium"]


def test_bad_parameters_say_what_is_valid(store: Store) -> None:
    _shop(store)
    with pytest.raises(ReportError, match=r"detector\.0.*slow_request"):
        _run(store, session=A, detector="slowness")
    with pytest.raises(ReportError, match="severity"):
        _run(store, session=A, severity="urgent")


def test_sessions_are_kept_apart_and_clear_hides_older_issues(store: Store) -> None:
    _shop(store)
    _session(store, B, T0 + 1000)
    _capture(store, B, [_http("/api/other", 502, T0 + 5000)])
    latest = _run(store)  # no daemon: current means the latest session
    assert latest["session"] == B
    assert [i["key"] for i in latest["issues"]] == ["GET /api/other 502"]
    assert _run(store, session="latest-1")["total"] == 5
    cleared = reports.ReportContext(store, current_session=B, cleared_ms=T0 + 6000)
    assert reports.run("issues", cleared, {})["issues"] == []
    assert reports.run("issues", cleared, {"session": A})["total"] == 5  # not the live one


def test_cli_prints_issues_readably_and_as_json(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store.open(home / "projects" / "shop" / "rsproxy.duckdb")
    try:
        _shop(store)
    finally:
        store.close()
    runner = CliRunner()
    env = {"RSPROXY_HOME": str(home)}
    result = runner.invoke(app, ["issues", "--project", "shop"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"session {A}: 5 issue(s), 1 high, 4 medium"
    assert "HIGH    GET /api/cart/{id} fails with 500" in result.output
    assert "evidence" in result.output and "GET /api/cart/1 -> 500 (4 ms)" in result.output
    assert "fix: " in result.output and "pages: http://127.0.0.1:8080/cart" in result.output

    only = runner.invoke(
        app, ["issues", "--project", "shop", "--json", "--severity", "high"], env=env
    )
    assert only.exit_code == 0, only.output
    assert '"total": 1' in only.output

    bad = runner.invoke(app, ["issues", "--project", "shop", "--detector", "nope"], env=env)
    assert bad.exit_code == 1 and "slow_request" in bad.output


def test_cli_says_when_there_is_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store.open(home / "projects" / "quiet" / "rsproxy.duckdb")
    try:
        _session(store, A, T0)
        _capture(store, A, [_http("/api/ok", 200, T0)])
    finally:
        store.close()
    result = CliRunner().invoke(
        app, ["issues", "--project", "quiet"], env={"RSPROXY_HOME": str(home)}
    )
    assert result.exit_code == 0 and result.output.strip() == f"session {A}: no issues found"
