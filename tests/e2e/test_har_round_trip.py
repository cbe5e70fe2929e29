"""Round trip: a live capture of the demo app → ``rsproxy export --har`` → ``rsproxy replay``.

The demo shop runs behind a real ``rsproxy start``; Chromium walks its pages and an HTTP client
adds API traffic with ids of several kinds, a checkout that fails and a report slower than 3 s. The session is exported as HAR through the CLI and replayed into another project;
the replayed session must have the same endpoints with the same templates and call counts, and
the same issues, as the live one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from rsproxy.demo_app.app import make_app
from rsproxy.testing import DaemonProcess, LoopbackServer, run_cli

LIVE, REPLAYED = "roundtrip", "roundtrip-replayed"
PAGES = ["/", "/products", "/products/1", "/products/2", "/users/1", "/checkout", "/reports"]


def _json(home: Path, *args: str) -> Any:
    result = run_cli(home, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _endpoints(endpoints: list[dict[str, Any]]) -> dict[tuple[str, ...], tuple[Any, ...]]:
    return {
        (e["service"], e["method"], e["path_template"]): (e["calls"], e["status_codes"])
        for e in endpoints
    }


def _issues(issues: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(i["detector"], i["severity"], i["key"]) for i in issues}


@pytest.mark.browser
def test_a_live_capture_exported_and_replayed_gives_the_same_catalog_and_issues(
    tmp_path: Path, page: Any
) -> None:
    home = tmp_path / "home"
    har = tmp_path / "live.har"
    with (
        LoopbackServer(lambda: make_app(slow_seconds=3.2)) as upstream,
        DaemonProcess(home, "--target", f":{upstream.port}", project=LIVE) as daemon,
    ):
        for path in PAGES:
            page.goto(daemon.proxy_url + path, wait_until="networkidle")
        with httpx.Client(base_url=daemon.proxy_url, trust_env=False, timeout=10) as client:
            for product in range(1, 7):
                client.get(f"/api/products/{product}")
                client.get(f"/api/products/{product}/reviews")
            for user in (1, 2):
                client.get(f"/api/users/{user}/orders")
            client.get("/api/orders/8d0e3a52-1f52-4a8e-9b1e-0c6f2b7f4b11")
            client.post("/api/checkout", json={"items": [{"product_id": 1, "qty": 1}]})
            client.get("/api/reports/slow")
        # Every call above is in, the slow report (the last one) included.
        daemon.wait_for_report(
            "catalog",
            lambda r: (
                sum(e["calls"] for e in r["endpoints"]) >= 6 * 2 + 2 + 1 + 1 + 1
                and any(e["path_template"] == "/api/reports/slow" for e in r["endpoints"])
            ),
        )
        live_catalog = _json(home, "catalog", "--project", LIVE)
        live_issues = _json(home, "issues", "--project", LIVE)
        exported = run_cli(home, "export", "--har", "-o", str(har), "--project", LIVE)
        assert exported.returncode == 0, exported.stderr

    replayed = _json(home, "replay", str(har), "--project", REPLAYED)
    assert replayed["summary"]["skipped"] == 0, replayed["summary"]
    assert replayed["summary"]["replayed"] == len(json.loads(har.read_text())["log"]["entries"])

    live = _endpoints(live_catalog["endpoints"])
    assert ("app", "GET", "/api/products/{productId}") in live, sorted(live)
    assert live[("app", "GET", "/api/products/{productId}/reviews")][0] >= 6
    assert _endpoints(replayed["catalog"]) == live

    found = _issues(live_issues["issues"])
    assert any(d == "failed_request" for d, _, _ in found), found
    assert any(d == "slow_request" for d, _, _ in found), found
    assert _issues(replayed["issues"]) == found

    # The replayed session stays queryable afterwards, like a live one.
    again = _json(home, "catalog", "--project", REPLAYED, "--session", "latest")
    assert _endpoints(again["endpoints"]) == live
