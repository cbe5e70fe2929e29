"""The sessions reports (rsproxy/reports/sessions.py) over a real DuckDB store.

Two sessions are written with known metrics; the diff must class each change by its thresholds:
what moved past both the relative and the absolute noise threshold, and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rsproxy import reports
from rsproxy.errors import ReportError
from rsproxy.events import Event
from rsproxy.store import SessionInfo, Store
from rsproxy.testing import make_http_event


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store.duckdb")
    yield s
    s.close()


def _session(store: Store, sid: str, started: float, commit: str | None = None) -> None:
    store.start_session(
        SessionInfo(
            id=sid, project="t", source="proxy", target=None, started_ms=started, git_commit=commit
        )
    )


def _http(sid: str, path: str, total_ms: float, status: int = 200) -> Event:
    event = make_http_event(
        path=path, path_template=path, status=status, timings={"total_ms": total_ms}
    )
    event.session_id = sid
    return event


def _probe(sid: str, kind: str, **data: Any) -> Event:
    return Event(kind=kind, data=data, source="probe", session_id=sid)


def _fill(
    store: Store, sid: str, *, slow: float, fail_orders: bool, renders: int, lcp: float, errors: int
) -> None:
    events: list[Event] = []
    for i in range(10):
        events.append(_http(sid, "/api/products/{productId}", slow + i * 0.1))
        events.append(_http(sid, "/api/users/{userId}/orders", 3.0, 500 if fail_orders else 200))
        events.append(_http(sid, "/api/health", 2.0 + (i % 3)))
    events.append(_probe(sid, "page_view", url="/", navigation="load"))
    events.append(_probe(sid, "page_view", url="/cart", navigation="push"))
    events.append(_probe(sid, "render", component="Cart", renders=renders, actual_duration_ms=1.0))
    events.append(_probe(sid, "render", component="Row", renders=4, actual_duration_ms=0.5))
    for _ in range(3):
        events.append(_probe(sid, "vital", name="LCP", value=lcp))
        events.append(_probe(sid, "vital", name="CLS", value=0.01))
    for _ in range(errors):
        events.append(_probe(sid, "console", level="error", message="cart total is NaN"))
    store.write_events(events)


def _run(store: Store, name: str, current: str | None = None, **params: Any) -> Any:
    return reports.run(name, reports.ReportContext(store, current_session=current), params)


def test_diff_classes_each_change_past_both_thresholds(store: Store) -> None:
    now = time.time() * 1000
    _session(store, "a" * 32, now - 60_000, commit="1111111aaaa")
    _session(store, "b" * 32, now, commit="2222222bbbb")
    _fill(store, "a" * 32, slow=5.0, fail_orders=False, renders=4, lcp=1200, errors=0)
    _fill(store, "b" * 32, slow=300.0, fail_orders=True, renders=40, lcp=1210, errors=3)

    diff = _run(store, "session_diff", a="latest-1", b="latest")
    assert diff["a"]["id"] == "a" * 32 and diff["b"]["id"] == "b" * 32
    assert diff["per_page_view"] is True
    regressions = {
        (c["area"], c["key"], c["metric"]) for c in diff["changes"] if c["change"] == "regression"
    }
    assert regressions == {
        ("endpoint", "GET /api/products/{productId}", "p50_ms"),
        ("endpoint", "GET /api/products/{productId}", "p95_ms"),
        ("endpoint", "GET /api/users/{userId}/orders", "error_rate"),
        ("component", "Cart", "renders_per_view"),
        ("console_error", "cart total is NaN", "per_view"),
    }
    # LCP moved 10 ms (under 50 ms), /api/health by a millisecond: unchanged, and not listed.
    assert all(c["key"] not in ("LCP", "GET /api/health") for c in diff["changes"])
    assert diff["counts"]["regression"] == 5 and "improvement" not in diff["counts"]
    products = next(c for c in diff["changes"] if c["metric"] == "p50_ms")
    assert products["a"] < 6 and products["b"] > 299 and products["samples"] == [10, 10]
    # Renders are per page view (2 views a side): 4/2 -> 40/2.
    cart = next(
        c for c in diff["changes"] if c["key"] == "Cart" and c["metric"].startswith("renders")
    )
    assert (cart["a"], cart["b"]) == (2.0, 20.0)

    # The other way round, the same changes are improvements, and the error is gone.
    back = _run(store, "session_diff", a="latest", b="latest-1")
    assert {c["change"] for c in back["changes"]} == {"improvement"}
    assert len(back["changes"]) == 5

    everything = _run(store, "session_diff", include_unchanged=True)
    assert any(
        c["key"] == "GET /api/health" and c["change"] == "unchanged" for c in everything["changes"]
    )


def test_too_few_samples_are_never_a_latency_regression(store: Store) -> None:
    _session(store, "a" * 32, 1000.0)
    _session(store, "b" * 32, 2000.0)
    store.write_events([_http("a" * 32, "/x", 2.0), _http("a" * 32, "/x", 2.0)])
    store.write_events([_http("b" * 32, "/x", 900.0), _http("b" * 32, "/x", 900.0)])
    diff = _run(store, "session_diff")
    assert diff["changes"] == []
    loose = _run(store, "session_diff", min_samples=2)
    assert {c["metric"] for c in loose["changes"]} == {"p50_ms", "p95_ms"}


def test_sessions_are_named_by_id_prefix_latest_n_or_commit(store: Store) -> None:
    _session(store, "a" * 32, 1000.0, commit="abcdef0123")
    _session(store, "b" * 32, 2000.0, commit="fedcba9876")
    listed = _run(store, "sessions", current="b" * 32)
    assert [s["id"] for s in listed["sessions"]] == ["b" * 32, "a" * 32]
    assert listed["sessions"][0]["live"] is True
    ctx = reports.ReportContext(store)
    assert ctx.session("latest") == "b" * 32
    assert ctx.session("latest-1") == "a" * 32
    assert ctx.session("aaaa") == "a" * 32
    assert ctx.session("abcdef0") == "a" * 32  # a git commit
    assert ctx.session("current") == "b" * 32  # no daemon: the latest
    with pytest.raises(ReportError, match=r"latest-5.*2 session"):
        ctx.session("latest-5")
    with pytest.raises(ReportError, match="no session 'zzzz'"):
        ctx.session("zzzz")


def test_bad_report_parameters_say_what_is_valid(store: Store) -> None:
    with pytest.raises(ReportError, match=r"bad parameters for report 'session_diff'.*Valid"):
        _run(store, "session_diff", latency_rel=-1)
    with pytest.raises(ReportError, match=r"no report named 'nope'; known reports: .*sessions"):
        _run(store, "nope")
    with pytest.raises(ReportError, match="no sessions yet"):
        _run(store, "session_diff")
