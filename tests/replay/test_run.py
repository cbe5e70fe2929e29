"""The replay driver over recorded captures: the catalog and issues a live capture would give.

HAR files are recorded by Chromium and flow files by mitmdump (conftest.py); each replay runs the
default pipeline into a fresh project store, and the tests read the result back through the same
reports the CLI and MCP use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rsproxy.client import StoreReader
from rsproxy.project import Project
from rsproxy.replay import replay
from rsproxy.store import Store

pytestmark = pytest.mark.browser


def _reports(project: Project, session: str) -> tuple[dict[str, Any], dict[str, Any]]:
    reader = StoreReader(project)
    try:
        catalog = reader.report("catalog", session=session, contracts=False)
        issues = reader.report("issues", session=session, limit=500)
    finally:
        reader.close()
    return catalog, issues


def _endpoints(catalog: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{e['method']} {e['path_template']}": e for e in catalog["endpoints"]}


def test_a_chromium_har_gives_the_catalog_with_templates_and_statuses(
    catalog_har: Path, rsproxy_home: Path
) -> None:
    project = Project("replayed")
    summary = replay(catalog_har, project)
    assert summary.format == "har"
    assert summary.har_version == "1.2"
    assert summary.skipped == 0
    assert summary.read == summary.replayed >= 13  # the page, its 5 fetches, 8 more
    endpoints = _endpoints(_reports(project, summary.session_id)[0])
    users = endpoints["GET /api/users/{userId}"]
    assert users["calls"] == 5
    assert users["status_codes"] == {"200": 3, "401": 1, "404": 1}
    assert users["p50_ms"] is not None and users["p95_ms"] >= users["p50_ms"]
    assert endpoints["POST /api/orders"]["status_codes"] == {"201": 2, "422": 1}
    assert endpoints["GET /api/stats"]["status_codes"] == {"200": 1, "500": 1}
    assert endpoints["GET /api/health"]["service"] == users["service"]


def test_a_har_exported_by_mitmproxy_gives_the_same_catalog(
    catalog_mitmproxy_har: Path, rsproxy_home: Path
) -> None:
    project = Project("mitmhar")
    summary = replay(catalog_mitmproxy_har, project)
    # drive() sends 14 requests; the fixture sent one more to see mitmdump was up
    assert (summary.format, summary.skipped, summary.read) == ("har", 0, 15)
    assert "mitmproxy" in (summary.creator or "")
    endpoints = _endpoints(_reports(project, summary.session_id)[0])
    assert endpoints["GET /api/users/{userId}"]["status_codes"] == {"200": 3, "401": 1, "404": 1}
    assert endpoints["GET /api/users"]["calls"] == 3
    assert endpoints["POST /api/orders"]["status_codes"] == {"201": 2, "422": 1}
    assert endpoints["GET /api/stats"]["status_codes"] == {"200": 1, "500": 1}


def test_the_replayed_session_is_tagged_and_secrets_are_redacted(
    catalog_har: Path, catalog_api: Any, rsproxy_home: Path
) -> None:
    project = Project("redacted")
    summary = replay(catalog_har, project)
    store = Store.open_readonly(project.store_path)
    try:
        session = store.query("SELECT * FROM sessions WHERE id = ?", [summary.session_id])[0]
        auth = store.query(
            "SELECT DISTINCT auth FROM http WHERE session_id = ? ORDER BY auth",
            [summary.session_id],
        )
    finally:
        store.close()
    assert session["source"] == "replay" and session["ended_ms"] is not None
    # Auth is classified before redaction: the bearer, the API key header and the query key.
    assert {"bearer", "api_key_header", "api_key_query"} <= {r["auth"] for r in auth}
    # The secrets are gone from every API exchange (the fixture's HTML page embeds the token in
    # its own script: that is page content, not a header, and is kept like live capture keeps it).
    store = Store.open_readonly(project.store_path)
    try:
        rows = store.query(
            """SELECT url, query, request_headers::VARCHAR AS headers, request_body
               FROM http WHERE session_id = ? AND path LIKE '/api/%'""",
            [summary.session_id],
        )
    finally:
        store.close()
    assert len(rows) == summary.replayed - 1
    for row in rows:
        text = repr(row)
        assert catalog_api.TOKEN not in text and catalog_api.API_KEY not in text, text


def test_the_planted_bugs_come_out_of_a_har(planted_har: Path, rsproxy_home: Path) -> None:
    project = Project("planted")
    summary = replay(planted_har, project)
    catalog, issues = _reports(project, summary.session_id)
    by_detector = {i["detector"]: i for i in issues["issues"]}
    assert "/api/broken" in by_detector["failed_request"]["key"]
    assert by_detector["slow_request"]["details"]["worst_ms"] > 3000
    assert "GET /api/items/" in by_detector["n_plus_one_requests"]["key"]
    assert by_detector["api_inconsistency"]["details"]["variants"][0]["renamed"] == {
        "name": "fullName"
    }
    assert by_detector["write_amplification"]["details"]["largest_burst"] == 12
    assert any(
        "/api/orders" in e for e in by_detector["auth_mismatch"]["details"]["unauthenticated"]
    )
    templates = _endpoints(catalog)
    assert templates["GET /api/items/{itemId}"]["calls"] == 8
    assert templates["POST /api/settings/{settingId}"]["calls"] == 12


def test_a_mitmdump_flow_file_gives_the_same_catalog(
    catalog_flows: Path, rsproxy_home: Path
) -> None:
    project = Project("flows")
    summary = replay(catalog_flows, project)
    assert summary.format == "mitmproxy"
    # drive's 14 requests, and the health check that waited for mitmdump to listen
    assert summary.skipped == 0 and summary.read == summary.replayed == 15
    endpoints = _endpoints(_reports(project, summary.session_id)[0])
    assert endpoints["GET /api/users/{userId}"]["status_codes"] == {"200": 3, "401": 1, "404": 1}
    assert endpoints["GET /api/users"]["calls"] == 3
    assert endpoints["POST /api/orders"]["status_codes"] == {"201": 2, "422": 1}
    assert endpoints["GET /api/stats"]["status_codes"] == {"200": 1, "500": 1}
    assert endpoints["GET /api/health"]["calls"] == 2


def test_replays_add_sessions_and_keep_the_earlier_ones(
    catalog_har: Path, catalog_flows: Path, rsproxy_home: Path
) -> None:
    project = Project("twice")
    first = replay(catalog_har, project)
    second = replay(catalog_flows, project)
    store = Store.open_readonly(project.store_path)
    try:
        counts = {
            r["session_id"]: r["n"]
            for r in store.query("SELECT session_id, count(*) AS n FROM http GROUP BY 1")
        }
    finally:
        store.close()
    assert counts == {first.session_id: first.replayed, second.session_id: second.replayed}
