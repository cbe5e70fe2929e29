"""`rsproxy mcp`: the stdio MCP server an agent uses to ask what the running app is doing.

A thin process: every tool is a named report (rsproxy/reports) run through
``open_reader(project)``, so it answers from the running daemon when there is one and from the
project's store, read-only, when there is none (past and replayed sessions stay queryable).
Every answer has the same four parts: ``summary`` (a sentence), ``data``, ``issues`` (findings
relevant to the question, when any) and ``metadata`` (project, session, how many items, whether
the list was cut and how to get the next page). Logs go to stderr; stdout is the protocol.

Tool names follow DESIGN §8. Errors are MCP tool errors that say what was wrong, what is valid,
and an example call.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Literal

from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError

from rsproxy.errors import NoStoreError, RsproxyError
from rsproxy.project import Project, git_root

log = logging.getLogger("rsproxy.mcp")

INSTRUCTIONS = """rsproxy captures a local web app's HTTP traffic and browser events (console, errors,
web vitals, React renders, state stores, tracking) through a proxy. Start with detect_issues or
get_session_info; narrow lists with since_seconds and filters; page with the `before` value in
metadata.next. Sessions are named current, latest, latest-N, an id or a git commit."""

server = FastMCP("rsproxy", instructions=INSTRUCTIONS)


def _tool_if(report_name: str) -> Any:
    """Register the tool only when the report it answers from exists: the tool list never
    advertises something that cannot answer."""
    from rsproxy import reports

    if report_name in reports.load():
        return server.tool()
    return lambda fn: fn


ProjectArg = str | None

# `rsproxy mcp --project NAME` sets this; a tool call's own `project` argument still wins.
default_project: str | None = None


def _resolve(project: ProjectArg) -> Project:
    try:
        return Project.resolve(project or default_project)
    except RsproxyError as exc:
        raise ToolError(str(exc)) from None


def _reader(project: ProjectArg) -> Any:
    from rsproxy.client import open_reader

    try:
        return open_reader(_resolve(project))
    except NoStoreError as exc:
        raise ToolError(
            f"{exc} Pass `project` to read another project (the names are the folders under "
            "~/.rsproxy/projects)."
        ) from None
    except RsproxyError as exc:
        raise ToolError(str(exc)) from None


def _report(project: ProjectArg, name: str, example: str, **params: Any) -> tuple[Any, str]:
    reader = _reader(project)
    try:
        result = reader.report(name, **{k: v for k, v in params.items() if v is not None})
    except RsproxyError as exc:
        raise ToolError(f"{exc}. Example: {example}") from None
    finally:
        reader.close()
    return result, _resolve(project).name


def _answer(
    summary: str,
    data: Any,
    *,
    project: str,
    session: str | None = None,
    count: int | None = None,
    page: dict[str, Any] | None = None,
    issues: list[dict[str, Any]] | None = None,
    **meta: Any,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"project": project, "session": session}
    if count is not None:
        metadata["count"] = count
    if page is not None:
        metadata["truncated"] = page.get("truncated", False)
        metadata["next"] = page.get("next")
    metadata.update(meta)
    return {"summary": summary, "data": data, "issues": issues or [], "metadata": metadata}


# ---- session ----------------------------------------------------------------------------------


@server.tool()
def get_session_info(project: ProjectArg = None, session: str = "current") -> dict[str, Any]:
    """The capture session: build (git commit), target, time range, events by kind, and the
    live daemon's health (events queued, processed, dropped; probe connections)."""
    info, name = _report(
        project, "session_info", "get_session_info(session='latest')", session=session
    )
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(info["by_kind"].items(), key=lambda x: -x[1]))
    state = "live" if info["live"] else "stored"
    summary = f"Session {info['session']['id']} ({state}): {info['events']} events — {kinds or 'none yet'}."
    return _answer(
        summary,
        info,
        project=name,
        session=info["session"]["id"],
        time_range=[info["first_event_ms"], info["last_event_ms"]],
    )


@server.tool()
def get_session_history(project: ProjectArg = None, limit: int = 20) -> dict[str, Any]:
    """The project's sessions, newest first, with their git commit and what each captured."""
    result, name = _report(project, "sessions", "get_session_history(limit=5)", limit=limit)
    rows = result["sessions"]
    return _answer(f"{len(rows)} session(s).", rows, project=name, count=len(rows))


@server.tool()
def clear_events(project: ProjectArg = None) -> dict[str, Any]:
    """Start the live session's view afresh: later answers about the current session only show
    events from now on. Nothing stored is deleted; older sessions and queries are unaffected."""
    from rsproxy.client import DaemonClient

    try:
        client = DaemonClient.for_project(_resolve(project))
    except RsproxyError as exc:
        raise ToolError(f"{exc}; clear_events only applies to a live capture") from None
    try:
        result = client.post("/api/clear")
    finally:
        client.close()
    name = _resolve(project).name
    return _answer(
        "Cleared: answers about the current session now start from this moment.",
        result,
        project=name,
    )


@server.tool()
def get_event_timeline(
    project: ProjectArg = None,
    session: str = "current",
    since_seconds: float | None = None,
    kinds: list[str] | None = None,
    limit: int = 50,
    before: str | None = None,
) -> dict[str, Any]:
    """Everything that happened, newest first, one line per event (requests, console, errors,
    renders, state changes, vitals, page views, issues). Filter with kinds=['http','console']."""
    result, name = _report(
        project,
        "timeline",
        "get_event_timeline(since_seconds=60, kinds=['http'])",
        session=session,
        since_seconds=since_seconds,
        kinds=kinds,
        limit=limit,
        before=before,
    )
    events = result["events"]
    return _answer(
        f"{len(events)} event(s), newest first.",
        events,
        project=name,
        session=result["session"],
        count=len(events),
        page=result["page"],
    )


# ---- network ----------------------------------------------------------------------------------


@server.tool()
def get_network_requests(
    project: ProjectArg = None,
    session: str = "current",
    since_seconds: float | None = None,
    method: str | None = None,
    status: str | None = None,
    path_contains: str | None = None,
    service: str | None = None,
    include_static: bool = False,
    include_bodies: bool = False,
    limit: int = 50,
    before: str | None = None,
) -> dict[str, Any]:
    """HTTP requests through the proxy, newest first: method, path, template, status, timing,
    sizes. status: 404, '4xx', '5xx' or 'failed'. Static assets and HMR are hidden unless
    include_static; bodies only with include_bodies."""
    result, name = _report(
        project,
        "network_requests",
        "get_network_requests(status='5xx', since_seconds=300)",
        session=session,
        since_seconds=since_seconds,
        method=method,
        status=status,
        path_contains=path_contains,
        service=service,
        include_static=include_static,
        include_bodies=include_bodies,
        limit=limit,
        before=before,
    )
    rows = result["requests"]
    failed = sum(1 for r in rows if r["status"] is None or r["status"] >= 400)
    summary = f"{len(rows)} request(s), {failed} failed or 4xx/5xx"
    if result["hidden_static"]:
        summary += f"; {result['hidden_static']} static/HMR request(s) hidden (include_static=true)"
    return _answer(
        summary + ".",
        rows,
        project=name,
        session=result["session"],
        count=len(rows),
        page=result["page"],
    )


_NETWORK_DETECTORS = (
    "failed_request",
    "slow_request",
    "n_plus_one_requests",
    "api_inconsistency",
    "auth_mismatch",
)


@_tool_if("issues")
def get_network_issues(project: ProjectArg = None, session: str = "current") -> dict[str, Any]:
    """Problems in the traffic: failed and slow requests, N+1 request patterns, inconsistent
    API responses, authentication mismatches — each with evidence event ids."""
    result, name = _report(
        project, "issues", "get_network_issues(session='latest')", session=session
    )
    found = [i for i in result["issues"] if i["detector"] in _NETWORK_DETECTORS]
    return _answer(
        f"{len(found)} network issue(s).",
        found,
        project=name,
        session=result.get("session"),
        count=len(found),
        issues=found,
    )


# ---- page -------------------------------------------------------------------------------------


@server.tool()
def get_console_messages(
    project: ProjectArg = None,
    session: str = "current",
    since_seconds: float | None = None,
    level: Literal["log", "info", "warn", "error", "debug"] | None = None,
    errors_only: bool = False,
    search: str | None = None,
    limit: int = 50,
    before: str | None = None,
) -> dict[str, Any]:
    """Console output and uncaught errors/rejections from the pages, newest first, with stacks."""
    result, name = _report(
        project,
        "console_messages",
        "get_console_messages(errors_only=true, since_seconds=120)",
        session=session,
        since_seconds=since_seconds,
        level=level,
        errors_only=errors_only,
        search=search,
        limit=limit,
        before=before,
    )
    rows = result["messages"]
    levels = ", ".join(f"{n} {k}" for k, n in result["by_level"].items())
    return _answer(
        f"{len(rows)} message(s) shown; in the session: {levels or 'none'}.",
        rows,
        project=name,
        session=result["session"],
        count=len(rows),
        page=result["page"],
    )


@server.tool()
def get_performance_metrics(project: ProjectArg = None, session: str = "current") -> dict[str, Any]:
    """Web vitals (LCP, CLS, INP, FCP, TTFB: p75 with Google's rating), long tasks, large DOM
    insertions, and the slowest endpoints."""
    result, name = _report(project, "performance", "get_performance_metrics()", session=session)
    poor = [k for k, v in result["vitals"].items() if v["rating"] == "poor"]
    summary = f"{len(result['vitals'])} vital(s) measured" + (
        f"; poor: {', '.join(poor)}" if poor else ""
    )
    return _answer(
        summary + f"; {result['long_tasks']['n']} long task(s).",
        result,
        project=name,
        session=result["session"],
    )


@server.tool()
def get_render_summary(
    project: ProjectArg = None, session: str = "current", limit: int = 30
) -> dict[str, Any]:
    """React components by render count, with time spent, identical-props renders and the
    largest commit each took part in."""
    result, name = _report(
        project, "render_summary", "get_render_summary(limit=10)", session=session, limit=limit
    )
    rows = result["components"]
    top = rows[0]["component"] if rows else None
    summary = f"{len(rows)} component(s)" + (f"; most rendered: {top}" if top else "")
    return _answer(summary + ".", rows, project=name, session=result["session"], count=len(rows))


@server.tool()
def get_render_details(
    project: ProjectArg = None,
    session: str = "current",
    component: str | None = None,
    limit: int = 50,
    before: str | None = None,
) -> dict[str, Any]:
    """Render windows of one component (or all): why it rendered (props, state, context,
    parent), which props changed, how long it took."""
    result, name = _report(
        project,
        "render_details",
        "get_render_details(component='Cart')",
        session=session,
        component=component,
        limit=limit,
        before=before,
    )
    rows = result["renders"]
    return _answer(
        f"{len(rows)} render record(s).",
        rows,
        project=name,
        session=result["session"],
        count=len(rows),
        page=result["page"],
    )


@server.tool()
def get_state_changes(
    project: ProjectArg = None,
    session: str = "current",
    store: str | None = None,
    since_seconds: float | None = None,
    limit: int = 50,
    before: str | None = None,
) -> dict[str, Any]:
    """Redux and Zustand actions with the diff of what each changed, newest first."""
    result, name = _report(
        project,
        "state_changes",
        "get_state_changes(store='cart')",
        session=session,
        store=store,
        since_seconds=since_seconds,
        limit=limit,
        before=before,
    )
    rows = result["changes"]
    return _answer(
        f"{len(rows)} state change(s).",
        rows,
        project=name,
        session=result["session"],
        count=len(rows),
        page=result["page"],
    )


@server.tool()
def get_state_mutation_frequency(
    project: ProjectArg = None, session: str = "current"
) -> dict[str, Any]:
    """How often each store and action updated, and the busiest second of each store."""
    result, name = _report(
        project, "state_mutation_frequency", "get_state_mutation_frequency()", session=session
    )
    rows = result["actions"]
    return _answer(
        f"{len(rows)} store action(s).",
        rows,
        project=name,
        session=result["session"],
        count=len(rows),
    )


@server.tool()
def get_tracking_events(
    project: ProjectArg = None,
    session: str = "current",
    since_seconds: float | None = None,
    limit: int = 50,
    before: str | None = None,
) -> dict[str, Any]:
    """Analytics calls the pages made: dataLayer.push and gtag(...), with event names and params."""
    result, name = _report(
        project,
        "tracking_events",
        "get_tracking_events(since_seconds=60)",
        session=session,
        since_seconds=since_seconds,
        limit=limit,
        before=before,
    )
    rows = result["events"]
    return _answer(
        f"{len(rows)} tracking call(s).",
        rows,
        project=name,
        session=result["session"],
        count=len(rows),
        page=result["page"],
    )


@server.tool()
def exec_in_page(
    code: str, project: ProjectArg = None, page_id: str | None = None, timeout_ms: int = 5000
) -> dict[str, Any]:
    """Run JavaScript in a page opened through the proxy (the most recent one unless page_id)
    and return its value; Promises are awaited. This RUNS CODE IN THE USER'S BROWSER TAB: it
    can change the page's state. Only pages served through this project's proxy receive it."""
    from rsproxy.client import DaemonClient

    try:
        client = DaemonClient.for_project(_resolve(project))
    except RsproxyError as exc:
        raise ToolError(f"{exc}; exec_in_page needs a live capture with a page open") from None
    try:
        result = client.post(
            "/api/exec",
            {"code": code, "page_id": page_id, "timeout_ms": timeout_ms},
            timeout=timeout_ms / 1000 + 5,
        )
    except RsproxyError as exc:
        raise ToolError(f"{exc}. Example: exec_in_page(code='document.title')") from None
    finally:
        client.close()
    name = _resolve(project).name
    if not result.get("ok"):
        error = result.get("error") or {}
        raise ToolError(f"the page threw {error.get('name')}: {error.get('message')}")
    return _answer(
        "Ran in page " + str(result.get("page_id")) + ".",
        result.get("value"),
        project=name,
        page_id=result.get("page_id"),
    )


# ---- analysis ---------------------------------------------------------------------------------


@_tool_if("issues")
def detect_issues(
    project: ProjectArg = None,
    session: str = "current",
    severity: Literal["high", "medium", "low"] | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """What is wrong, most severe first: failed/slow/N+1 requests, API inconsistencies, console
    error spam, long tasks, poor vitals, store thrashing, unnecessary renders, slow/N+1 queries —
    each with an explanation, a suggested fix and evidence event ids."""
    result, name = _report(
        project,
        "issues",
        "detect_issues(severity='high')",
        session=session,
        severity=severity,
        limit=limit,
    )
    found = result["issues"]
    by: dict[str, int] = {}
    for issue in found:
        by[issue["severity"]] = by.get(issue["severity"], 0) + 1
    summary = f"{len(found)} issue(s)" + (
        ": " + ", ".join(f"{n} {s}" for s, n in by.items()) if by else "; nothing detected"
    )
    return _answer(
        summary + ".",
        found,
        project=name,
        session=result.get("session"),
        count=len(found),
        issues=found,
    )


@server.tool()
def compare_sessions(
    a: str = "latest-1",
    b: str = "latest",
    project: ProjectArg = None,
    include_unchanged: bool = False,
) -> dict[str, Any]:
    """What changed from session a to b (ids, latest-N or git commits): endpoint latency and
    error rate, renders, queries, vitals, console errors, issues — classed as regression,
    improvement, new or gone beyond a noise threshold."""
    result, name = _report(
        project,
        "session_diff",
        "compare_sessions(a='latest-1', b='latest')",
        a=a,
        b=b,
        include_unchanged=include_unchanged,
    )
    counts = result["counts"]
    summary = ", ".join(
        f"{counts.get(c, 0)} {c}" for c in ("regression", "improvement", "new", "gone")
    )
    regressions = [c for c in result["changes"] if c["change"] == "regression"]
    return _answer(
        f"{result['a']['id']} → {result['b']['id']}: {summary}.",
        result,
        project=name,
        session=result["b"]["id"],
        count=len(result["changes"]),
        issues=regressions,
    )


@server.tool()
def query_events(sql: str, project: ProjectArg = None, limit: int = 200) -> dict[str, Any]:
    """Read-only SQL (DuckDB) over the store: one SELECT/WITH statement, no writes, files,
    network or settings; at most `limit` rows and 10 seconds. Tables: events (id, ts,
    session_id, page_id, source, kind, schema_version, data) — a view over all of them;
    http (envelope + method, url, host, path, query, path_template, service, status, error,
    request_headers, response_headers, request/response_content_type, request_size,
    response_size, request_body, response_body, auth, timings JSON with total_ms/ttfb_ms,
    started_ms); console (envelope + level, type, message, args, stack, error_source, line, col);
    generic_events (envelope + data JSON text, for every other kind: render, state, vital,
    resource, tracking, page_view, graphql, sql, issue...; use json_extract_string(data, '$.x'));
    sessions (id, started_ms, ended_ms, git_commit, git_branch, target); endpoints (session_id,
    service, method, path_template, data JSON); issues (session_id, id, detector, severity,
    title, first_seen, last_seen, count, data JSON). Example: SELECT path_template, count(*)
    FROM http GROUP BY 1 ORDER BY 2 DESC."""
    result, name = _report(
        project,
        "query",
        "query_events(sql='SELECT kind, count(*) FROM events GROUP BY kind')",
        sql=sql,
        limit=limit,
    )
    return _answer(
        f"{result['returned']} row(s)"
        + (" (cut at the limit)" if result["truncated"] else "")
        + ".",
        result["rows"],
        project=name,
        count=result["returned"],
        truncated=result["truncated"],
    )


@server.tool()
def get_project_context(project: ProjectArg = None) -> dict[str, Any]:
    """The project's instructions for agents: RSPROXY.md or claude-instructions.md from the
    project's data directory or the repository root."""
    proj = _resolve(project)
    places = [proj.data_dir, git_root(Path.cwd()) or Path.cwd()]
    for folder in places:
        for file in ("RSPROXY.md", "claude-instructions.md"):
            path = Path(folder) / file
            if path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace")
                return _answer(
                    f"Instructions from {path}.",
                    {"path": str(path), "text": text[:20000]},
                    project=proj.name,
                    truncated=len(text) > 20000,
                )
    raise ToolError(
        f"no RSPROXY.md or claude-instructions.md in {', '.join(str(p) for p in places)}; write "
        "one there to give agents the project's context"
    )


def main() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    server.run("stdio")
