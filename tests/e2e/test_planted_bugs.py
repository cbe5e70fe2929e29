"""Planted bugs found through the real thing: an app, ``rsproxy start``, Chromium, ``rsproxy issues``.

fixtures/apps/planted has one bug per detector that a browser session can feed (its module
docstring lists them); fixtures/apps/clean is its twin without them, with several things at or
just under a detector's limit (and without React: the React fixture's bundle alone is a long
task while it loads; the planted run shows that mounting and clicking through the React app
adds no issue beyond the planted ones). Each runs behind a real daemon with the default
pipeline, is driven in Chromium like a user would, and is then asked ``rsproxy issues --json``
through the CLI:

* the planted app yields each planted bug exactly once, with evidence whose event ids are in
  the store — and nothing else: any extra issue (a false positive) fails the test;
* the clean app yields no issue at all.

The SQL detectors are not here: no component captures SQL yet, so a browser session has no
``sql`` events (tests/analysis/test_detectors.py covers them over sql events).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from rsproxy.store import Store
from rsproxy.testing import DaemonProcess, LoopbackServer, load_fixture, react_app_dist, run_cli

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "fixtures" / "apps"
NODE_MODULES = ROOT / "fixtures" / "react_app" / "node_modules"

# detector -> what its one issue must be about (checked against the issue's key and details)
PLANTED: dict[str, Callable[[dict[str, Any]], bool]] = {
    "failed_request": lambda i: "/api/broken" in i["key"] and i["severity"] == "high",
    "slow_request": lambda i: "/api/report" in i["key"] and i["details"]["worst_ms"] > 3000,
    "n_plus_one_requests": lambda i: "GET /api/items/" in i["key"],
    "api_inconsistency": lambda i: (
        "/api/profile/" in i["key"]
        and i["details"]["variants"][0]["renamed"] == {"name": "fullName"}
    ),
    "auth_mismatch": lambda i: any("/api/orders" in e for e in i["details"]["unauthenticated"]),
    "write_amplification": lambda i: (
        i["key"].startswith("http ") and i["details"]["largest_burst"] == 12
    ),
    "console_error_spam": lambda i: "Failed to sync cart" in i["key"] and i["count"] == 1,
    "long_task": lambda i: i["details"]["worst_ms"] >= 240,
    "large_dom_mutation": lambda i: "ul#catalog" in i["key"],
    "poor_web_vital": lambda i: i["key"] == "TTFB" and any("/slow-page" in p for p in i["pages"]),
    "store_thrashing": lambda i: i["key"] == "zustand:preferences",
    "render_cascade": lambda i: i["key"] == "App",
    "unnecessary_renders": lambda i: i["key"] == "ProductRow",
}


def _module(name: str) -> ModuleType:
    return load_fixture(APPS / name / "app.py")


@pytest.fixture(scope="module")
def react_dist() -> Path:
    return react_app_dist()


@pytest.fixture
def serve(tmp_path: Path, react_dist: Path) -> Iterator[Callable[[str], DaemonProcess]]:
    """serve(app name) -> a daemon in front of that fixture app; both stop after the test. The
    planted app gets the React fixture app's build, the clean one the Zustand it installs."""
    stack: list[Any] = []
    assets = {"planted": react_dist, "clean": NODE_MODULES / "zustand" / "esm"}

    def start(name: str) -> DaemonProcess:
        module = _module(name)
        site = LoopbackServer(lambda: module.make_app(assets[name])).__enter__()
        stack.append(site)
        daemon = DaemonProcess(tmp_path / "home", "--target", f":{site.port}", project=name)
        stack.append(daemon.start())
        return daemon

    try:
        yield start
    finally:
        for thing in reversed(stack):
            thing.__exit__(None, None, None)


def _issues_live(daemon: DaemonProcess) -> list[dict[str, Any]]:
    with daemon.api() as api:
        response = api.post("/api/report/issues", json={"limit": 500})
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()["issues"]
        return found


def _settled(daemon: DaemonProcess, done: Callable[[list[dict[str, Any]]], bool]) -> None:
    """Wait until ``done(issues)`` holds and the issues stay the same for 2 s (late extras, a
    render group closed when the pipeline idles, would show up within that)."""
    deadline = time.monotonic() + 30
    last: list[tuple[str, int]] | None = None
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        found = _issues_live(daemon)
        now = sorted((i["id"], i["count"]) for i in found)
        if now != last:
            last, stable_since = now, time.monotonic()
        elif done(found) and time.monotonic() - stable_since >= 2:
            return
        time.sleep(0.25)
    raise AssertionError(f"issues never settled: {json.dumps(_issues_live(daemon))[:4000]}")


def _page_events(daemon: DaemonProcess, page_id: str, kind: str, predicate: Any) -> None:
    daemon.wait_for_events(
        lambda evs: predicate([e["data"] for e in evs if e["page_id"] == page_id]),
        kind=kind,
        timeout=15,
    )


def _react(page: Any, daemon: DaemonProcess, clicks: list[tuple[str, str]]) -> str:
    """Open the React app, wait for its mount to be reported, click, return the page id."""
    page.goto(daemon.proxy_url + "/react/")
    page.wait_for_function("document.getElementById('count') !== null && !!window.__rsproxy")
    page_id: str = page.evaluate("window.__rsproxy.page_id")
    # Clicks must fall in a later render report than the mount (a cascade is a re-render).
    _page_events(daemon, page_id, "render", lambda rs: any(r["component"] == "App" for r in rs))
    for button, condition in clicks:
        page.click("#" + button)
        page.wait_for_function(condition)
    return page_id


def _leave(page: Any, daemon: DaemonProcess, page_id: str) -> None:
    """Navigate away: the page sends its LCP/CLS/INP on the way out."""
    page.goto("about:blank")
    _page_events(daemon, page_id, "vital", lambda vs: any(v["name"] == "LCP" for v in vs))


def _cli_issues(daemon: DaemonProcess) -> dict[str, Any]:
    result = run_cli(daemon.home, "issues", "--project", daemon.project, "--json")
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


@pytest.mark.browser
def test_each_planted_bug_is_found_exactly_once(
    serve: Callable[[str], DaemonProcess], page: Any
) -> None:
    daemon = serve("planted")
    page.goto(daemon.proxy_url + "/")
    # (typeof: a predicate that evaluates to a function is called by Playwright)
    page.wait_for_function("!!window.__rsproxy && typeof window.plantAll === 'function'")
    main_page = page.evaluate("window.__rsproxy.page_id")
    assert page.evaluate("plantAll()") == "done"
    _page_events(daemon, main_page, "long_task", bool)
    _leave(page, daemon, main_page)

    page.goto(daemon.proxy_url + "/slow-page")
    page.wait_for_selector("#ready")
    slow_page = page.evaluate("window.__rsproxy.page_id")
    _page_events(daemon, slow_page, "vital", lambda vs: any(v["name"] == "TTFB" for v in vs))

    react_page = _react(
        page,
        daemon,
        [
            ("cascade", "document.getElementById('cascade-count').textContent === '1'"),
            ("thrash", "document.getElementById('thrash-status').textContent === 'done'"),
        ],
    )
    _leave(page, daemon, react_page)
    _settled(daemon, lambda found: {i["detector"] for i in found} >= set(PLANTED))

    answer = _cli_issues(daemon)
    found = answer["issues"]
    by_detector: dict[str, list[dict[str, Any]]] = {}
    for issue in found:
        by_detector.setdefault(issue["detector"], []).append(issue)
    extra = {
        d: [i["title"] for i in issues] for d, issues in by_detector.items() if d not in PLANTED
    }
    assert not extra, f"false positives: {extra}"
    for detector, about in PLANTED.items():
        issues = by_detector.get(detector, [])
        assert len(issues) == 1, f"{detector}: {json.dumps(issues, indent=1)[:3000]}"
        assert about(issues[0]), f"{detector}: {json.dumps(issues[0], indent=1)[:3000]}"
        assert issues[0]["evidence"] and issues[0]["explanation"] and issues[0]["suggestion"]
        # The report finds each evidence event in the table it looks in for this detector.
        shown = issues[0]["evidence_events"]
        assert [e["id"] for e in shown] == issues[0]["evidence"][: len(shown)] and shown, detector
    assert answer["total"] == len(PLANTED)

    # The evidence points at stored events; the issues themselves outlive the daemon.
    daemon.stop()
    evidence = {eid for issue in found for eid in issue["evidence"]}
    store = Store.open_readonly(daemon.home / "projects" / daemon.project / "rsproxy.duckdb")
    try:
        rows = store.query(
            "SELECT id FROM events WHERE id IN (SELECT unnest(?))", [sorted(evidence)]
        )
        issue_events = store.query("SELECT data FROM generic_events WHERE kind = 'issue'")
    finally:
        store.close()
    assert {r["id"] for r in rows} == evidence
    # One `issue` event per finding, when it first appeared.
    assert sorted(json.loads(r["data"])["detector"] for r in issue_events) == sorted(PLANTED)
    offline = _cli_issues(daemon)
    assert sorted(i["id"] for i in offline["issues"]) == sorted(i["id"] for i in found)


@pytest.mark.browser
def test_the_clean_app_yields_no_issues(serve: Callable[[str], DaemonProcess], page: Any) -> None:
    daemon = serve("clean")
    page.goto(daemon.proxy_url + "/")
    page.wait_for_function("!!window.__rsproxy && typeof window.runAll === 'function'")
    main_page = page.evaluate("window.__rsproxy.page_id")
    assert page.evaluate("runAll()") == "done"
    # The store's ten updates have been through the pipeline.
    _page_events(daemon, main_page, "state", lambda updates: len(updates) == 10)
    _leave(page, daemon, main_page)
    _settled(daemon, lambda found: True)

    answer = _cli_issues(daemon)
    assert answer["issues"] == [], json.dumps(answer["issues"], indent=1)[:4000]
    assert answer["total"] == 0
    # The app really did what the detectors look at.
    kinds = {e["kind"] for e in daemon.events(limit=1000)}
    assert {"http", "state", "vital", "console", "page_view"} <= kinds
