"""The MCP tools over the analysis stages and the process scanner, through `rsproxy mcp` on stdio.

Two real captures of the catalog fixture API (fixtures/apps/catalog_api.py) through
`rsproxy start`, each driven by Chromium loading its page and by an HTTP client: the first as
the fixture is, the second with a changed contract (the user's ``email`` gone, its ``score`` a
string) and one new endpoint. The catalog, health, documentation, service map, issue, API
change and OpenAPI tools must then answer with the facts of that traffic — live, and from the
store once the daemon has stopped. The process tools find the daemon and a test-started
`python -m http.server`, stop the server, and refuse what the safety rules forbid.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from openapi_spec_validator import validate

from rsproxy.testing import (
    DaemonProcess,
    LoopbackServer,
    Spawner,
    free_port,
    load_fixture,
    mcp_calls,
    run_async,
)

CATALOG_API = Path(__file__).resolve().parents[1] / "fixtures" / "apps" / "catalog_api.py"
PROJECT = "mcpapi"
USER = "app GET /api/users/{userId}"


api = load_fixture(CATALOG_API)


def _changed_app() -> web.Application:
    """The fixture API after a careless release: a user has no ``email`` any more and its
    ``score`` became a string; ``/api/v2/ping`` is new."""

    @web.middleware
    async def reshape(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        route = request.match_info.route.resource
        if (
            route is not None
            and route.canonical == "/api/users/{id}"
            and response.status == 200
            and isinstance(response, web.Response)
            and response.body is not None
        ):
            user = json.loads(bytes(response.body))  # type: ignore[arg-type]
            user.pop("email", None)
            user["score"] = str(user["score"])
            return web.json_response(user)
        return response

    async def ping(_request: web.Request) -> web.Response:
        return web.json_response({"pong": True})

    application = api.app()
    application.middlewares.append(reshape)
    application.router.add_get("/api/v2/ping", ping)
    return application


@contextmanager
def _capture(home: Path, app: Any, page: Any, *, extra: list[str]) -> Iterator[DaemonProcess]:
    """One session: the page in Chromium, then the fixture's traffic; yields the live daemon
    once the catalog has every call."""
    with (
        LoopbackServer(app) as upstream,
        DaemonProcess(home, "--target", f":{upstream.port}", project=PROJECT) as daemon,
    ):
        page.goto(daemon.proxy_url + "/")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('done')")
        with httpx.Client(base_url=daemon.proxy_url, trust_env=False, timeout=10) as client:
            api.drive(client)
            for path in extra:
                client.get(path).raise_for_status()
        expected = 5 + 14 + len(extra)  # the page's calls, drive's, the extra ones
        daemon.wait_for_report(
            "catalog", lambda r: sum(e["calls"] for e in r["endpoints"]) >= expected
        )
        yield daemon
        assert daemon.stop() == 0


@pytest.mark.browser
def test_catalog_issue_and_change_tools_answer_from_two_real_captures(
    tmp_path: Path, page: Any
) -> None:
    home = tmp_path / "home"
    with _capture(home, api.app, page, extra=[]):
        pass
    spec_file = tmp_path / "openapi.json"
    har_file = tmp_path / "session.har"
    calls: list[tuple[str, dict[str, Any]]] = [
        ("get_api_catalog", {}),
        ("get_api_catalog", {"path_contains": "/api/users/", "include_contracts": True}),
        ("get_api_health", {}),
        ("get_api_documentation", {}),
        ("get_service_map", {}),
        ("get_api_changes", {}),
        ("get_api_changes", {"breaking_only": True}),
        ("export_openapi", {"output_path": str(spec_file)}),
        ("detect_issues", {}),
        ("get_network_issues", {}),
        ("export_har", {"output_path": str(har_file)}),
        ("export_har", {"limit": 3}),
        ("get_api_catalog", {"service": "stripe"}),
    ]
    with _capture(home, _changed_app, page, extra=["/api/v2/ping"]):
        answers = run_async(mcp_calls(home, PROJECT, calls), timeout=120)

    tools = {t.name: t for t in answers[0][1]}
    for name, _ in calls:
        assert tools[name].description and tools[name].inputSchema["type"] == "object", name
    by_call = [a for _, a in answers[1:]]
    for answer in by_call[:-1]:
        assert "error" not in answer, answer
        assert set(answer) == {"summary", "data", "issues", "metadata"}
        assert answer["metadata"]["project"] == PROJECT

    catalog = {e["key"]: e for e in by_call[0]["data"]}
    assert set(catalog) == {
        USER,
        "app GET /api/users",
        "app POST /api/orders",
        "app GET /api/stats",
        "app GET /api/health",
        "app GET /api/v2/ping",
    }
    assert catalog[USER]["calls"] == 8 and catalog[USER]["status_codes"] == {
        "200": 6,
        "401": 1,
        "404": 1,
    }
    assert "contract" not in catalog[USER], "contracts only when asked for"
    assert api.TOKEN not in json.dumps(by_call) and api.API_KEY not in json.dumps(by_call)

    (user,) = by_call[1]["data"]
    schema = user["contract"]["responses"]["200"]["schema"]
    assert "email" not in schema["properties"] and schema["properties"]["score"] == {
        "type": "string"
    }

    health = {e["key"]: e for e in by_call[2]["data"]}
    assert health["app GET /api/stats"]["health"] == "failing" or (
        health["app GET /api/stats"]["health"] == "degraded"
        and "server errors" in " ".join(health["app GET /api/stats"]["reasons"])
    )
    assert "app GET /api/health" not in health, "healthy endpoints only with include_healthy"
    assert re.search(r"\b[1-9]\d* healthy endpoint", by_call[2]["summary"]), by_call[2]["summary"]
    assert "### `GET /api/users/{userId}`" in by_call[3]["data"]
    services = {s["service"]: s for s in by_call[4]["data"]}
    assert list(services) == ["app"] and services["app"]["calls"] == sum(
        e["calls"] for e in catalog.values()
    )

    changes = by_call[5]["data"]
    assert [e["key"] for e in changes["added"]] == ["app GET /api/v2/ping"]
    assert changes["removed"] == []
    (changed,) = [e for e in changes["changed"] if e["key"] == USER]
    found = {(c["where"], c["path"], c["change"]): c["breaking"] for c in changed["changes"]}
    assert found[("response 200", "$.email", "removed")] is True
    assert found[("response 200", "$.score", "type_changed")] is True
    assert by_call[5]["issues"] and by_call[5]["metadata"]["session"] == changes["b"]
    breaking = by_call[6]["data"]
    assert breaking["added"] == [] and all(
        c["breaking"] for e in breaking["changed"] for c in e["changes"]
    )

    written = json.loads(spec_file.read_text())
    validate(written)
    assert "/api/users/{userId}" in written["paths"] and "/api/v2/ping" in written["paths"]
    assert by_call[7]["data"]["path"] == str(spec_file)

    issues = by_call[8]["data"]
    stats = [i for i in issues if i["detector"] == "failed_request" and "/api/stats" in i["key"]]
    assert len(stats) == 1 and stats[0]["severity"] == "high" and stats[0]["evidence"]
    assert all(len(i.get("evidence", [])) <= 5 for i in issues), "evidence ids are capped"
    assert "sample_ids" not in catalog[USER], "sample ids only with full=true"
    network = by_call[9]["data"]
    assert network and {i["detector"] for i in network} <= {
        "failed_request",
        "slow_request",
        "n_plus_one_requests",
        "api_inconsistency",
        "auth_mismatch",
        "write_amplification",
    }
    assert {i["id"] for i in network} <= {i["id"] for i in issues}

    har = json.loads(har_file.read_text())["log"]
    urls = [e["request"]["url"] for e in har["entries"]]
    api_calls = [u for u in urls if "/api/" in u]
    assert har["version"] == "1.2" and len(api_calls) == 5 + 14 + 1
    assert any(u.endswith("/api/v2/ping") for u in urls) and urls[0].endswith("/")
    # The fixture's page embeds its token in its own HTML; no header may carry it.
    assert api.API_KEY not in har_file.read_text()
    headers = [h for e in har["entries"] for h in e["request"]["headers"]]
    assert not [h for h in headers if api.TOKEN in h["value"]]
    assert {"name": "authorization", "value": "Bearer [REDACTED]"} in headers
    assert by_call[10]["data"] == {"path": str(har_file), "entries": len(urls), "pages": 1}
    inline = by_call[11]
    assert len(inline["data"]["log"]["entries"]) == 3 and inline["metadata"]["truncated"] is True
    assert all("text" not in e["response"]["content"] for e in inline["data"]["log"]["entries"])

    assert "no service 'stripe'" in by_call[12]["error"] and "app" in by_call[12]["error"]

    # The daemon is gone: the same questions are answered from the store.
    offline = run_async(
        mcp_calls(
            home,
            PROJECT,
            [("get_api_catalog", {}), ("get_api_changes", {}), ("detect_issues", {})],
        ),
        timeout=120,
    )
    stored = [a for _, a in offline[1:]]
    assert {e["key"] for e in stored[0]["data"]} == set(catalog)
    assert stored[1]["data"]["counts"] == changes["counts"]
    assert {i["id"] for i in stored[2]["data"]} == {i["id"] for i in issues}


def test_process_tools_find_stop_and_refuse(tmp_path: Path, spawn: Spawner) -> None:
    home = tmp_path / "home"
    port = free_port()
    args = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    server = spawn(args, cwd=tmp_path, port=port)
    bystander = spawn(["sleep", "60"], cwd=tmp_path)
    answers = run_async(
        mcp_calls(
            home,
            PROJECT,
            [
                ("get_dev_processes", {}),
                ("get_port_usage", {"port": port}),
                ("kill_process", {"pid": 1}),
                ("kill_process", {"pid": bystander.pid}),
                ("kill_process", {"pid": server.pid, "name": "vite"}),
                ("kill_process", {"pid": server.pid, "dry_run": True}),
                ("kill_process", {"pid": server.pid}),
                ("get_port_usage", {"port": port}),
                ("get_port_usage", {"port": 70000}),
                ("get_dev_processes", {"project": "no-such-project"}),
            ],
        ),
        timeout=120,
    )
    assert bystander.poll() is None, "the refused process still runs"
    by_call = [a for _, a in answers[1:]]

    listed = by_call[0]["data"]
    everyone = [p for g in listed["projects"] for p in g["processes"]] + listed["unassociated"]
    (mine,) = [p for p in everyone if p["pid"] == server.pid]
    assert port in mine["ports"] and "http.server" in mine["command"]
    assert "cmdline" not in mine, "argv lists are left out to save context"

    (owner,) = by_call[1]["data"]["owners"]
    assert owner["pid"] == server.pid and f"pid {server.pid}" in by_call[1]["summary"]

    assert "pid 1 is the init process" in by_call[2]["error"]
    assert "not a recognised dev process" in by_call[3]["error"]
    assert "not 'vite'" in by_call[4]["error"] and "nothing was stopped" in by_call[4]["error"]
    assert by_call[5]["data"]["dry_run"] is True and by_call[5]["summary"].startswith("Would stop")
    assert by_call[6]["data"]["ok"] is True and server.pid in by_call[6]["data"]["stopped"]
    assert server.wait(5) is not None
    assert by_call[7]["data"]["in_use"] is False
    assert "error" in by_call[8] and "70000" in by_call[8]["error"]
    assert "no dev process belongs to project 'no-such-project'" in by_call[9]["error"]
