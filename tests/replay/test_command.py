"""``rsproxy replay`` as a user runs it: a subprocess, a recorded HAR or flow file, its output.

The command module is rsproxy/commands/replay.py; its tests live beside the replay package's
because they share the recorded captures of conftest.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rsproxy.testing import DaemonProcess, LoopbackServer, run_cli

pytestmark = pytest.mark.browser

CATALOG_FIELDS = {
    "service",
    "host",
    "method",
    "path_template",
    "calls",
    "status_codes",
    "p50_ms",
    "p95_ms",
}


def test_json_gives_one_object_with_summary_catalog_and_issues(
    planted_har: Path, tmp_path: Path
) -> None:
    result = run_cli(tmp_path, "replay", str(planted_har), "--project", "cli", "--json")
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    assert set(answer) == {"session_id", "summary", "catalog", "issues"}
    summary = answer["summary"]
    assert summary["session_id"] == answer["session_id"]
    assert summary["read"] == summary["replayed"] > 20 and summary["skipped"] == 0
    assert summary["skipped_reasons"] == {}
    for endpoint in answer["catalog"]:
        assert set(endpoint) >= CATALOG_FIELDS, endpoint
    items = next(e for e in answer["catalog"] if e["path_template"] == "/api/items/{itemId}")
    assert items["calls"] == 8 and items["status_codes"] == {"200": 8}
    assert items["host"] == "127.0.0.1"
    assert {"failed_request", "slow_request", "n_plus_one_requests"} <= {
        i["detector"] for i in answer["issues"]
    }
    # The session stays queryable by the other commands.
    issues = run_cli(tmp_path, "issues", "--project", "cli", "--json")
    assert issues.returncode == 0, issues.stderr
    assert json.loads(issues.stdout)["session"] == answer["session_id"]


def test_the_human_report_has_the_summary_issues_and_catalog_and_writes_openapi(
    catalog_flows: Path, tmp_path: Path
) -> None:
    spec = tmp_path / "api.json"
    result = run_cli(
        tmp_path, "replay", str(catalog_flows), "--project", "human", "--openapi", str(spec)
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "15 entries read, 15 replayed, 0 skipped" in out
    assert "API catalog:" in out and "/api/users/{userId}" in out
    assert "failed request" in out.lower() or "issue(s)" in out
    document = json.loads(spec.read_text())
    assert "/api/users/{userId}" in document["paths"]
    assert "post" in document["paths"]["/api/orders"]


def test_partial_files_report_their_skips_and_bad_files_fail_on_stderr(
    catalog_har: Path, tmp_path: Path
) -> None:
    har = json.loads(catalog_har.read_text())
    del har["log"]["entries"][2]["request"]["method"]
    partial = tmp_path / "partial.har"
    partial.write_text(json.dumps(har))
    result = run_cli(tmp_path, "replay", str(partial), "--project", "bad")
    assert result.returncode == 0, result.stderr
    assert "1 skipped" in result.stdout
    assert "skipped 1x request.method is missing (first: entry 2)" in result.stdout

    truncated = tmp_path / "truncated.har"
    truncated.write_bytes(catalog_har.read_bytes()[:5000])
    result = run_cli(tmp_path, "replay", str(truncated), "--project", "bad", "--json")
    assert result.returncode == 1
    assert result.stdout == ""
    assert str(truncated) in result.stderr and "truncated" in result.stderr

    result = run_cli(tmp_path, "replay", str(tmp_path / "missing.har"), "--project", "bad")
    assert result.returncode == 1 and "no such file" in result.stderr
    assert "Traceback" not in result.stderr

    pipeline = tmp_path / "bad.yaml"
    pipeline.write_text("version: 1\nstages:\n  - type: redcat\n")
    result = run_cli(tmp_path, "replay", str(partial), "--pipeline", str(pipeline))
    assert result.returncode == 2 and "redcat" in result.stderr


def test_with_a_daemon_running_the_daemon_replays_and_live_capture_goes_on(
    catalog_har: Path, tmp_path: Path
) -> None:
    import httpx
    from aiohttp import web

    async def ok(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    def site() -> web.Application:
        app = web.Application()
        app.router.add_get("/live/{n}", ok)
        return app

    with (
        LoopbackServer(site) as upstream,
        DaemonProcess(tmp_path, "--target", f":{upstream.port}", project="busy") as daemon,
    ):
        with httpx.Client(base_url=daemon.proxy_url, trust_env=False, timeout=10) as client:
            client.get("/live/1").raise_for_status()
            result = run_cli(tmp_path, "replay", str(catalog_har), "--project", "busy", "--json")
            client.get("/live/2").raise_for_status()
        assert result.returncode == 0, result.stderr
        answer = json.loads(result.stdout)
        daemon.wait_for_events(lambda evs: len(evs) >= 2, kind="http")
        with daemon.api() as api:
            live = api.get("/api/status").json()["session_id"]
        bad = run_cli(tmp_path, "replay", str(tmp_path / "missing.har"), "--project", "busy")
    assert answer["summary"]["skipped"] == 0 and answer["session_id"] != live
    users = next(e for e in answer["catalog"] if e["path_template"] == "/api/users/{userId}")
    assert users["status_codes"] == {"200": 3, "401": 1, "404": 1}
    assert bad.returncode == 1 and "missing.har: no such file" in bad.stderr

    # Both sessions are in the store: the live one with its two requests, and the replay.
    listed = json.loads(run_cli(tmp_path, "sessions", "--project", "busy", "--json").stdout)
    by_id = {s["id"]: s for s in listed["sessions"]}
    assert set(by_id) == {live, answer["session_id"]}
    assert by_id[answer["session_id"]]["source"] == "replay"


def test_help_explains_the_formats_and_options(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "replay", "--help")
    assert result.returncode == 0
    for text in ("HAR", "mitmproxy flow file", "--pipeline", "--openapi", "--json", "skipped"):
        assert text in result.stdout, text
