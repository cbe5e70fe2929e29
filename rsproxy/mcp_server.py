"""`rsproxy mcp`: the stdio MCP server an agent uses to ask what the running app is doing.

A thin process: every tool is a named report (rsproxy/reports), run by the project's daemon
when there is one and on the project's store, read-only, when there is none (past and replayed
sessions stay queryable; the store stays open between calls that come close together).
Every answer has the same four parts: ``summary`` (a sentence), ``data``, ``issues`` (findings
relevant to the question, when any) and ``metadata`` (project, session, how many items, whether
the list was cut and how to get the next page). Logs go to stderr; stdout is the protocol.

Tool names follow DESIGN §8. Errors are MCP tool errors that say what was wrong, what is valid,
and an example call.
"""

from __future__ import annotations

import logging
import sys
import threading
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


class _StoreCache:
    """The project's store, opened read-only, kept open between calls that come close together.

    With no daemon running each answer reads the store itself. Opening it costs tens of
    milliseconds and starts with a cold cache; an agent's calls come in bursts, so the reader
    stays open until ``IDLE_S`` passes without a call. Holding it blocks a writer (a starting
    daemon, a replay) only that long, and they wait for it (``Store.open``'s ``wait_s``)."""

    IDLE_S = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reader: Any = None
        self._path: Path | None = None
        self._timer: threading.Timer | None = None

    def report(self, project: Project, name: str, params: dict[str, Any]) -> Any:
        from rsproxy.client import StoreReader

        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            if self._reader is None or self._path != project.store_path:
                self._close()
                self._reader = StoreReader(project)
                self._path = project.store_path
            try:
                return self._reader.report(name, **params)
            finally:
                self._timer = threading.Timer(self.IDLE_S, self.close)
                self._timer.daemon = True
                self._timer.start()

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader, self._path = None, None


_stores = _StoreCache()


def _report(project: ProjectArg, name: str, example: str, **params: Any) -> tuple[Any, str]:
    """Run a report through the project's daemon, or on its store when none runs."""
    from rsproxy.client import DaemonClient
    from rsproxy.state import DaemonState

    proj = _resolve(project)
    params = {k: v for k, v in params.items() if v is not None}
    try:
        state = DaemonState.read(proj.state_path)
        if state is None:
            return _stores.report(proj, name, params), proj.name
        _stores.close()  # a daemon has started: it holds the store from now on
        client = DaemonClient(state)
        try:
            return client.report(name, **params), proj.name
        finally:
            client.close()
    except NoStoreError as exc:
        raise ToolError(
            f"{exc} Pass `project` to read another project (the names are the folders under "
            "~/.rsproxy/projects)."
        ) from None
    except RsproxyError as exc:
        raise ToolError(f"{exc}. Example: {example}") from None


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


# ---- shaping answers for an agent's context ------------------------------------------------------

EVIDENCE_IDS = 5  # evidence event ids per issue in a tool answer (the store keeps up to 20)


def _issue_brief(issue: dict[str, Any]) -> dict[str, Any]:
    """An issue as a tool answers it: the evidence ids capped, empty parts left out."""
    brief = {k: v for k, v in issue.items() if v not in (None, [], {})}
    evidence = issue.get("evidence") or []
    if len(evidence) > EVIDENCE_IDS:
        brief["evidence"] = evidence[:EVIDENCE_IDS]
        brief["evidence_total"] = len(evidence)
    return brief


# Catalog fields an answer carries by default; `full=true` gives the rest (origins, sample ids,
# the sample request, request/response content types, auth parameter names...).
_ENDPOINT_FIELDS = (
    "key",
    "service",
    "method",
    "path_template",
    "calls",
    "success_rate",
    "error_rate",
    "p50_ms",
    "p95_ms",
    "status_codes",
    "auth",
    "last_seen",
    "last_success",
    "error_samples",
    "contract",
)


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
    "write_amplification",
)


@_tool_if("issues")
def get_network_issues(project: ProjectArg = None, session: str = "current") -> dict[str, Any]:
    """Problems in the traffic: failed and slow requests, N+1 request patterns, inconsistent
    API responses, authentication mismatches — each with evidence event ids."""
    result, name = _report(
        project,
        "issues",
        "get_network_issues(session='latest')",
        session=session,
        detector=list(_NETWORK_DETECTORS),
    )
    found = [_issue_brief(i) for i in result["issues"]]
    return _answer(
        f"{len(found)} network issue(s).",
        found,
        project=name,
        session=result.get("session"),
        count=len(found),
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
    found = [_issue_brief(i) for i in result["issues"]]
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
    )


# ---- API catalog ------------------------------------------------------------------------------


@_tool_if("catalog")
def get_api_catalog(
    project: ProjectArg = None,
    session: str = "current",
    service: str | None = None,
    method: str | None = None,
    path_contains: str | None = None,
    include_contracts: bool = False,
    full: bool = False,
    limit: int = 50,
) -> dict[str, Any]:
    """The API endpoints the app calls, by service, method and path template (/users/{userId}):
    calls, success rate, p50/p95 latency, status codes, auth pattern, last seen, an error
    sample. Request and response contracts (JSON Schema merged across samples) only with
    include_contracts; origins, sample ids and a sample request only with full."""
    result, name = _report(
        project,
        "catalog",
        "get_api_catalog(service='app', include_contracts=true)",
        session=session,
        service=service,
        method=method,
        path=path_contains,
        contracts=include_contracts,
        error_samples=1,
        limit=limit,
    )
    endpoints = result["endpoints"]
    if not full:
        endpoints = [{k: e[k] for k in _ENDPOINT_FIELDS if k in e} for e in endpoints]
    services = ", ".join(result["services"]) or "none"
    summary = f"{result['count']} endpoint(s) across services: {services}"
    if result["truncated"]:
        summary += f"; showing {len(endpoints)} (raise limit or filter by service/path)"
    return _answer(
        summary + ".",
        endpoints,
        project=name,
        session=result["session"],
        count=len(endpoints),
        truncated=result["truncated"],
        notes=result["notes"],
    )


@_tool_if("api_health")
def get_api_health(
    project: ProjectArg = None,
    session: str = "current",
    service: str | None = None,
    slow_ms: float = 1000.0,
    include_healthy: bool = False,
    limit: int = 50,
) -> dict[str, Any]:
    """Each endpoint classed failing, degraded or healthy, worst first, with the reasons (error
    rate, client errors, p95 above slow_ms) and a sample error body. Healthy endpoints are
    counted in the summary and listed only with include_healthy."""
    result, name = _report(
        project,
        "api_health",
        "get_api_health(service='app', slow_ms=500)",
        session=session,
        service=service,
        slow_ms=slow_ms,
    )
    counts = result["summary"]
    rows = [e for e in result["endpoints"] if include_healthy or e["health"] != "healthy"]
    shown = rows[: max(limit, 1)]
    return _answer(
        ", ".join(f"{n} {h}" for h, n in counts.items()) + " endpoint(s).",
        shown,
        project=name,
        session=result["session"],
        count=len(shown),
        truncated=len(rows) > len(shown),
    )


@_tool_if("api_docs")
def get_api_documentation(
    project: ProjectArg = None, session: str = "current", service: str | None = None
) -> dict[str, Any]:
    """Markdown documentation of the observed API: each endpoint's figures, parameters, request
    and response bodies with examples, and a cURL command (secrets redacted)."""
    result, name = _report(
        project,
        "api_docs",
        "get_api_documentation(service='app')",
        session=session,
        service=service,
    )
    return _answer(
        f"Documentation of {result['endpoints']} endpoint(s).",
        result["markdown"],
        project=name,
        session=result["session"],
        count=result["endpoints"],
    )


@_tool_if("service_map")
def get_service_map(project: ProjectArg = None, session: str = "current") -> dict[str, Any]:
    """The services the app talks to (its own API, Stripe, Supabase, ... one per other host):
    hosts, endpoint counts, calls, error rates, p50/p95 latency and auth patterns."""
    result, name = _report(project, "service_map", "get_service_map()", session=session)
    rows = result["services"]
    listed = ", ".join(f"{s['service']} ({s['calls']} calls)" for s in rows[:8])
    return _answer(
        f"{len(rows)} service(s): {listed or 'none yet'}.",
        rows,
        project=name,
        session=result["session"],
        count=len(rows),
    )


@_tool_if("api_changes")
def get_api_changes(
    a: str = "latest-1",
    b: str = "latest",
    project: ProjectArg = None,
    service: str | None = None,
    breaking_only: bool = False,
) -> dict[str, Any]:
    """How the API changed from session a to b (ids, latest-N or git commits): endpoints added
    or no longer called, status codes and auth patterns that changed, and contract changes
    (fields added, removed, retyped, made optional or nullable), each marked breaking or not."""
    result, name = _report(
        project,
        "api_changes",
        "get_api_changes(a='latest-1', b='latest', breaking_only=true)",
        a=a,
        b=b,
        service=service,
        breaking_only=breaking_only,
    )
    counts = result["counts"]
    breaking = [e for e in result["changed"] if e["breaking"]]
    return _answer(
        f"{result['a']} → {result['b']}: {counts['added']} endpoint(s) added, "
        f"{counts['removed']} not called any more, {counts['changed']} changed "
        f"({counts['breaking']} breaking).",
        result,
        project=name,
        session=result["b"],
        count=counts["added"] + counts["removed"] + counts["changed"],
        issues=breaking,
    )


def _write_json(path: str, document: Any) -> Path:
    """Write an export where the caller asked, whole or not at all."""
    import json

    from rsproxy.cli import write_atomically

    target = Path(path).expanduser()
    if not target.is_absolute():
        target = Path.cwd() / target
    if not target.parent.is_dir():
        raise ToolError(
            f"cannot write {target}: the folder {target.parent} does not exist. Give a path in "
            "an existing folder, e.g. output_path='export.json'"
        )
    write_atomically(target, json.dumps(document, indent=2, ensure_ascii=False))
    return target


@_tool_if("openapi")
def export_openapi(
    project: ProjectArg = None,
    session: str = "current",
    service: str | None = None,
    title: str | None = None,
    output_path: str | None = None,
) -> dict[str, Any]:
    """An OpenAPI 3.1 document of the observed endpoints with their inferred schemas. With
    output_path it is written to that file (relative to the server's directory) and only a
    summary is returned, to save context."""
    document, name = _report(
        project,
        "openapi",
        "export_openapi(service='app', output_path='openapi.json')",
        session=session,
        service=service,
        title=title,
    )
    paths = len(document.get("paths") or {})
    if output_path:
        target = _write_json(output_path, document)
        return _answer(
            f"OpenAPI 3.1 with {paths} path(s) written to {target}.",
            {"path": str(target), "paths": sorted(document.get("paths") or {})},
            project=name,
            count=paths,
        )
    return _answer(f"OpenAPI 3.1 with {paths} path(s).", document, project=name, count=paths)


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


@_tool_if("export_har")
def export_har(
    project: ProjectArg = None,
    session: str = "current",
    output_path: str | None = None,
    since_seconds: float | None = None,
    limit: int | None = None,
    include_bodies: bool | None = None,
) -> dict[str, Any]:
    """The captured exchanges as a HAR 1.2 file for other tools (browsers' DevTools, Charles,
    `rsproxy replay`), secrets still redacted, grouped by the probe's page views. With
    output_path the whole session is written there (bodies included) and only a summary comes
    back; without it the HAR is returned inline, capped at 50 entries without bodies unless
    limit / include_bodies say otherwise."""
    document, name = _report(
        project,
        "export_har",
        "export_har(output_path='session.har')",
        session=session,
        since_seconds=since_seconds,
        limit=limit if limit is not None else (None if output_path else 50),
        include_bodies=include_bodies if include_bodies is not None else bool(output_path),
    )
    log = document["log"]
    meta = log.get("_rsproxy") or {}
    summary = f"HAR 1.2 with {len(log['entries'])} entries in {len(log.get('pages') or [])} page(s)"
    if not output_path:
        more = (
            " (cut at the limit; pass output_path for the whole session)"
            if meta.get("truncated")
            else ""
        )
        return _answer(
            summary + more + ".",
            document,
            project=name,
            session=meta.get("session"),
            count=len(log["entries"]),
            truncated=bool(meta.get("truncated")),
        )
    target = _write_json(output_path, document)
    return _answer(
        f"{summary} written to {target}.",
        {"path": str(target), "entries": len(log["entries"]), "pages": len(log.get("pages") or [])},
        project=name,
        session=meta.get("session"),
        count=len(log["entries"]),
    )


# ---- dev processes ----------------------------------------------------------------------------


def _process_brief(entry: dict[str, Any]) -> dict[str, Any]:
    """A scan entry without what an agent rarely needs (argv, helper details)."""
    brief = {k: v for k, v in entry.items() if k not in ("cmdline", "helpers", "activity")}
    brief["command"] = entry["command"][:300]
    brief["helpers"] = len(entry["helpers"])
    if entry.get("activity"):
        brief["activity"] = entry["activity"].get("reason")
    return brief


@server.tool()
def get_dev_processes(project: ProjectArg = None, include_all: bool = False) -> dict[str, Any]:
    """Dev processes running on this machine (dev servers, watchers, runners, databases,
    tunnels, Docker, rsproxy), grouped by the project they belong to: pid, type, ports, memory,
    CPU, uptime, stale flag, memory warnings. Machine-wide unless `project` names one."""
    from rsproxy.processes import scan

    result = scan(include_all=include_all)
    groups = result["projects"]
    if project is not None:
        groups = [g for g in groups if g["name"] == project]
        if not groups:
            known = ", ".join(g["name"] for g in result["projects"]) or "none"
            raise ToolError(
                f"no dev process belongs to project {project!r}; projects with processes: "
                f"{known}. Call get_dev_processes() without project to see the whole machine"
            )
    data = {
        "projects": [
            {
                **{k: v for k, v in g.items() if k != "processes"},
                "processes": [_process_brief(e) for e in g["processes"]],
            }
            for g in groups
        ],
        "unassociated": [] if project else [_process_brief(e) for e in result["unassociated"]],
    }
    listed = sum(len(g["processes"]) for g in data["projects"]) + len(data["unassociated"])
    warnings = [
        w
        for w in result["warnings"]
        if project is None or any(e["pid"] == w["pid"] for g in groups for e in g["processes"])
    ]
    return _answer(
        f"{listed} process(es) in {len(data['projects'])} project(s)"
        + (f", {len(data['unassociated'])} unassociated" if data["unassociated"] else "")
        + (f"; {len(warnings)} warning(s)" if warnings else "")
        + ".",
        data,
        project=project or "(machine)",
        count=listed,
        issues=warnings,
        scan_ms=result["duration_ms"],
    )


@server.tool()
def kill_process(
    pid: int,
    signal: Literal["TERM", "KILL"] = "TERM",
    force: bool = False,
    name: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """STOPS a process and its child processes: SIGTERM (or SIGKILL), then SIGKILL to whatever
    is left after 5 s. Refuses PID 1, its own caller, other users' processes, rsproxy itself
    unless name='rsproxy', and anything that is not a recognised dev process unless force.
    Pass name (e.g. 'vite') to make sure a reused pid is not stopped; dry_run shows the plan."""
    from rsproxy.processes import kill

    try:
        result = kill(pid, signal, force=force, name=name, dry_run=dry_run)
    except RsproxyError as exc:
        raise ToolError(f"{exc} Example: kill_process(pid=12345, name='vite')") from None
    label = f"{result.get('label')} (pid {pid})"
    if dry_run:
        summary = f"Would stop {label} and {len(result['tree']) - 1} child process(es)."
    else:
        escalated = " (it ignored SIGTERM: killed)" if result["escalated_to_kill"] else ""
        summary = (
            f"Stopped {label}{escalated}."
            if result["ok"]
            else (f"Signalled {label}; still running: {result['still_running']}.")
        )
    return _answer(summary, result, project=str((result.get("project") or {}).get("name")))


@server.tool()
def get_port_usage(port: int) -> dict[str, Any]:
    """Which process listens on a TCP port (any address): pid, type, command, project — to find
    what holds a dev server's port. Stop it with kill_process."""
    from rsproxy.processes import port_owner

    try:
        result = port_owner(port)
    except RsproxyError as exc:
        raise ToolError(f"{exc} Example: get_port_usage(port=3000)") from None
    owners = result["owners"]
    if not owners:
        summary = f"Nothing listens on port {port}."
    else:
        who = ", ".join(
            f"{o['label']} (pid {o['pid']})" if o["pid"] else o["message"] for o in owners
        )
        summary = f"Port {port} is held by {who}."
    return _answer(summary, result, project="(machine)", count=len(owners))


@server.tool()
def query_events(sql: str, project: ProjectArg = None, limit: int = 200) -> dict[str, Any]:
    """Read-only SQL (DuckDB) over the store: one SELECT/WITH statement, no writes, files,
    network or settings; at most `limit` rows and 10 seconds. Tables: events (id, ts,
    session_id, page_id, source, kind, schema_version, data) — a view over all of them;
    http (envelope + method, url, host, path, query, path_template, service, status, error,
    request_headers, response_headers, request/response_content_type, request_size,
    response_size, request_body, response_body, auth, timings JSON, total_ms, ttfb_ms,
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
    # One line per daemon API call is noise in the client's log; warnings still show.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The server lives as long as the agent's session and answers from the store itself when no
    # daemon runs: its collector is set up as the daemon's, with the store's modules loaded
    # first, so an answer's many short-lived objects do not set off passes over the SDK's.
    from rsproxy import reports
    from rsproxy.client import StoreReader  # noqa: F401
    from rsproxy.runtime import tune_gc

    reports.load()
    tune_gc()
    server.run("stdio")
