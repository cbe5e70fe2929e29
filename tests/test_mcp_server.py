"""`rsproxy mcp` spawned as a subprocess and driven by the `mcp` package's stdio client.

A real capture first: `rsproxy start` in front of the probe's fixture site, Chromium opening
pages that log errors, fail requests and push tracking events. Then every tool is called with
the daemon running (answers come through its API) and again after it stopped (answers come
from the store, read-only); the answers must carry the facts of that capture.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rsproxy.testing import (
    DaemonProcess,
    LoopbackServer,
    free_port,
    load_fixture,
    mcp_calls,
    run_async,
)

SITE_PY = Path(__file__).resolve().parents[1] / "fixtures" / "pages" / "site.py"
PROJECT = "mcpcap"


async def _session_calls(home: Path, calls: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The answers keyed ``"{i}:{name}"`` (``__tools__`` first), as the assertions index them."""
    answers = await mcp_calls(home, PROJECT, calls)
    out: dict[str, Any] = {"__tools__": answers[0][1]}
    for i, (name, answer) in enumerate(answers[1:]):
        out[f"{i}:{name}"] = answer
    return out


def _by_name(answers: dict[str, Any], name: str) -> Any:
    return next(v for k, v in answers.items() if k.split(":", 1)[-1] == name)


@pytest.mark.browser
def test_every_tool_answers_with_the_facts_of_a_real_capture(tmp_path: Path, page: Any) -> None:
    home = tmp_path / "home"
    site = load_fixture(SITE_PY)
    with (
        LoopbackServer(lambda: site.app([])) as upstream,
        LoopbackServer(lambda: site.cors_app([])) as cross,
        DaemonProcess(home, "--target", f":{upstream.port}", project=PROJECT) as daemon,
    ):
        page.goto(daemon.proxy_url + "/console")
        page.evaluate("() => window.runConsole()")
        page.goto(daemon.proxy_url + "/network")
        page.evaluate("(a) => window.runNetwork(a)", {"cross": cross.url, "closed": free_port()})
        page.goto(daemon.proxy_url + "/tracking")
        page.evaluate("() => window.runTracking()")
        daemon.wait_for_events(lambda evs: len(evs) >= 2, kind="tracking")
        daemon.wait_for_events(
            lambda evs: any(e["data"].get("level") == "error" for e in evs), kind="console"
        )

        calls: list[tuple[str, dict[str, Any]]] = [
            ("get_session_info", {}),
            ("get_event_timeline", {"limit": 5}),
            ("get_network_requests", {"status": "5xx"}),
            ("get_network_requests", {"limit": 2}),
            ("get_console_messages", {"errors_only": True}),
            ("get_tracking_events", {}),
            ("get_performance_metrics", {}),
            ("get_render_summary", {}),
            ("get_render_details", {}),
            ("get_state_changes", {}),
            ("get_state_mutation_frequency", {}),
            ("get_session_history", {}),
            ("query_events", {"sql": "SELECT kind, count(*) AS n FROM events GROUP BY kind"}),
            ("query_events", {"sql": "SELECT * FROM read_csv('/etc/passwd')"}),
            ("exec_in_page", {"code": "document.title + ':' + (20 + 22)"}),
            ("exec_in_page", {"code": "Promise.reject(new TypeError('nope'))"}),
            ("compare_sessions", {}),
            ("get_project_context", {}),
            ("clear_events", {}),
            ("get_event_timeline", {}),
        ]
        live = run_async(_session_calls(home, calls), timeout=120)

    tools = {t.name: t for t in live["__tools__"]}
    for name in {n for n, _ in calls}:
        assert name in tools, name
        assert tools[name].description and tools[name].inputSchema["type"] == "object"
    assert "project" in tools["get_network_requests"].inputSchema["properties"]

    answers = list(live.items())[1:]
    for key, answer in answers:
        if "error" in answer:
            continue
        assert set(answer) == {"summary", "data", "issues", "metadata"}, key
        assert answer["metadata"]["project"] == PROJECT

    info = answers[0][1]
    assert info["data"]["live"] is True and info["data"]["by_kind"]["console"] >= 10
    assert info["data"]["daemon"]["events"]["dropped"] == 0

    timeline = answers[1][1]
    assert len(timeline["data"]) == 5 and timeline["metadata"]["truncated"] is True
    assert timeline["metadata"]["next"]["before"] == timeline["data"][-1]["id"]

    failing = answers[2][1]["data"]
    assert [r["path"] for r in failing] == ["/api/fail"] and failing[0]["status"] == 500
    assert answers[3][1]["metadata"]["count"] == 2 and answers[3][1]["metadata"]["truncated"]

    errors = answers[4][1]["data"]
    assert errors and all(m["level"] == "error" for m in errors)
    assert any(m["kind"] == "error" for m in errors)  # an uncaught error, not only console.error

    tracked = [e["data"] for e in answers[5][1]["data"]]
    assert any(t.get("event") == "purchase" for t in tracked), tracked
    assert any(t.get("event") == "sign_up" for t in tracked), tracked

    counts = {r["kind"]: r["n"] for r in answers[12][1]["data"]}
    assert counts["console"] == info["data"]["by_kind"]["console"] and counts["http"] >= 5
    refused = answers[13][1]
    assert "error" in refused and "read_csv() reads outside the store" in refused["error"]

    assert answers[14][1]["data"].endswith(":42")
    assert "error" in answers[15][1] and "TypeError: nope" in answers[15][1]["error"]
    assert "error" in answers[16][1] and "latest-1" in answers[16][1]["error"]  # one session
    assert "error" in answers[17][1] and "RSPROXY.md" in answers[17][1]["error"]
    assert answers[19][1]["data"] == [] or all(
        e["ts"] >= answers[18][1]["data"]["cleared_ms"] for e in answers[19][1]["data"]
    )

    # The daemon has stopped: the same questions answered from the store, read-only.
    offline = run_async(
        _session_calls(
            home,
            [
                ("get_session_info", {}),
                ("get_console_messages", {"errors_only": True}),
                ("get_network_requests", {"status": "5xx"}),
                ("exec_in_page", {"code": "1"}),
            ],
        ),
        timeout=120,
    )
    stored = list(offline.items())[1:]
    assert stored[0][1]["data"]["live"] is False
    assert stored[0][1]["data"]["by_kind"]["console"] == info["data"]["by_kind"]["console"]
    assert len(stored[1][1]["data"]) == len(errors)
    assert [r["path"] for r in stored[2][1]["data"]] == ["/api/fail"]
    assert "not running" in stored[3][1]["error"]


def test_with_no_store_the_tools_say_how_to_get_one(tmp_path: Path) -> None:
    answers = run_async(_session_calls(tmp_path / "empty", [("get_session_info", {})]), timeout=60)
    error = next(iter(list(answers.values())[1:]))["error"]
    assert "no store" in error and "rsproxy start" in error


def test_print_config_gives_the_claude_command_and_a_json_block(tmp_path: Path) -> None:
    from rsproxy.testing import run_cli

    result = run_cli(tmp_path, "mcp", "--print-config", "--project", "shop")
    assert result.returncode == 0, result.stderr
    assert "claude mcp add rsproxy -- " in result.stdout
    block = json.loads(result.stdout[result.stdout.index("{") :])
    server = block["mcpServers"]["rsproxy"]
    assert server["args"][-3:] == ["mcp", "--project", "shop"]


def test_bad_arguments_and_endless_queries_get_tool_errors_and_the_server_keeps_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rsproxy.project import Project
    from rsproxy.store import SessionInfo, Store
    from rsproxy.testing import make_http_event

    home = tmp_path / "home"
    monkeypatch.setenv("RSPROXY_HOME", str(home))
    project = Project.resolve(PROJECT)
    project.ensure_data_dir()
    store = Store.open(project.store_path)
    store.start_session(
        SessionInfo(id="s1", project=PROJECT, source="proxy", target=None, started_ms=0.0)
    )
    event = make_http_event(path="/api/ok", url="http://127.0.0.1:3000/api/ok")
    event.session_id, event.project = "s1", PROJECT
    store.write_events([event])
    store.close()

    answers = run_async(
        mcp_calls(
            home,
            PROJECT,
            [
                ("get_network_requests", {"limit": -5}),
                ("get_network_requests", {"status": "teapot"}),
                ("get_event_timeline", {"session": "no-such-session"}),
                (
                    "query_events",
                    {
                        "sql": "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) "
                        "SELECT count(*) FROM r"
                    },
                ),
                ("get_network_requests", {}),
            ],
        ),
        timeout=120,
    )
    errors = [answer for _, answer in answers[1:4]]
    for error in errors:
        assert set(error) == {"error"}, error
    assert "limit" in errors[0]["error"] and "Example: get_network_requests(" in errors[0]["error"]
    assert "teapot" in errors[1]["error"] and "5xx" in errors[1]["error"]
    assert "no-such-session" in errors[2]["error"] and "latest" in errors[2]["error"]
    endless = answers[4][1]
    assert "stopped after 10 s" in endless["error"], endless
    served = answers[5][1]
    assert [r["path"] for r in served["data"]] == ["/api/ok"], "the server kept serving"
