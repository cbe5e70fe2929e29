"""Reports over the captured events themselves: the session, its timeline, requests, console,
performance, renders, state stores and tracking, and read-only SQL.

Every list is newest first, capped by ``limit`` and paged with ``before`` (the id of the last
event of the previous page), and says so in its ``page`` block. Defaults keep an agent's context
small: static assets and dev-server (HMR) traffic are hidden unless asked for, bodies only on
request, and ``since_seconds`` narrows any list to recent events.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from pydantic import Field

from rsproxy.analysis.assets import is_asset_path, is_asset_type, is_dev_server_path
from rsproxy.errors import ReportError
from rsproxy.reports import Params, ReportContext, report
from rsproxy.reports.sql_guard import check_select
from rsproxy.store import CONSOLE_TABLE, HTTP_TABLE, TABLE_FOR_KIND, Store, loads

MAX_LIMIT = 500


class ListParams(Params):
    session: str = Field(
        default="current", description="current, latest, latest-N, an id, a commit."
    )
    since_seconds: float | None = Field(default=None, gt=0, description="Only the last N seconds.")
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)
    before: str | None = Field(default=None, description="Page: the last id of the previous page.")


def _scope(ctx: ReportContext, p: ListParams) -> tuple[list[str], list[Any], str]:
    """WHERE clauses (and their parameters) for the session and time window of a list."""
    session = ctx.session(p.session)
    clauses: list[str] = ["session_id = ?"]
    params: list[Any] = [session]
    since = _since(ctx, p, session)
    if since is not None:
        clauses.append("ts >= ?")
        params.append(since)
    return clauses, params, session


def _since(ctx: ReportContext, p: ListParams, session: str) -> float | None:
    since = time.time() * 1000 - p.since_seconds * 1000 if p.since_seconds else None
    if session == ctx.current_session and ctx.cleared_ms is not None:
        since = max(since or 0, ctx.cleared_ms)
    return since


def _page(rows: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    more = len(rows) > limit
    del rows[limit:]
    return {
        "returned": len(rows),
        "truncated": more,
        "next": {"before": rows[-1]["id"]} if more and rows else None,
    }


def _generic(
    ctx: ReportContext, p: ListParams, kinds: tuple[str, ...]
) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    clauses, params, session = _scope(ctx, p)
    clauses.append(f"kind IN ({', '.join('?' for _ in kinds)})")
    params.extend(kinds)
    if p.before:
        clauses.append("id < ?")
        params.append(p.before)
    rows = ctx.store.query(
        f"SELECT id, ts, page_id, source, kind, data FROM generic_events WHERE {' AND '.join(clauses)} "
        "ORDER BY ts DESC, id DESC LIMIT ?",
        [*params, p.limit + 1],
    )
    for row in rows:
        row["data"] = loads(row["data"]) if row["data"] else {}
    return rows, _page(rows, p.limit), session


# ---- session ----------------------------------------------------------------------------------


class SessionParams(Params):
    session: str = Field(default="current")


@report("session_info", SessionParams)
def session_info(ctx: ReportContext, p: SessionParams) -> dict[str, Any]:
    """The session: build, target, time range, events by kind, and the live daemon's health."""
    session = ctx.session(p.session)
    info = ctx.store.query("SELECT * FROM sessions WHERE id = ?", [session])[0]
    info["meta"] = loads(info["meta"]) if info.get("meta") else {}
    span = ctx.store.query(
        "SELECT min(ts) AS first_ms, max(ts) AS last_ms, count(*) AS n FROM events "
        "WHERE session_id = ?",
        [session],
    )[0]
    live = ctx.live if session == ctx.current_session else None
    return {
        "session": info,
        "events": span["n"],
        "first_event_ms": span["first_ms"],
        "last_event_ms": span["last_ms"],
        "by_kind": ctx.store.counts(session),
        "live": live is not None,
        "daemon": None
        if live is None
        else {
            "proxy_url": live.get("proxy_url"),
            "target": live.get("target"),
            "uptime_s": live.get("uptime_s"),
            "events": live.get("events"),  # queued, processed, dropped
            "pipeline": {
                k: v for k, v in (live.get("pipeline") or {}).items() if k != "stage_stats"
            },
            "probe": live.get("probe"),
        },
        "cleared_ms": ctx.cleared_ms if live is not None else None,
    }


# ---- timeline ---------------------------------------------------------------------------------


class TimelineParams(ListParams):
    kinds: list[str] | None = Field(
        default=None, description="Only these kinds (http, console...)."
    )


def _line(kind: str, d: dict[str, Any]) -> str:
    """One event in a few words."""
    if kind == "http":
        total = (d.get("timings") or {}).get("total_ms")
        took = f" {total:.0f}ms" if isinstance(total, (int, float)) else ""
        return f"{d.get('method')} {d.get('path')} -> {d.get('status') or d.get('error')}{took}"
    if kind in ("console", "error"):
        return f"{d.get('level') or d.get('type')}: {str(d.get('message', ''))[:200]}"
    if kind == "resource":
        return f"{d.get('initiator')} {d.get('method', '')} {d.get('url', '')} -> {d.get('status', '')}"
    if kind == "render":
        return (
            f"{d.get('component')} rendered {d.get('renders')}x ({d.get('actual_duration_ms')} ms)"
        )
    if kind == "state":
        return f"{d.get('library')} {d.get('store')}: {d.get('action')}"
    if kind == "vital":
        return f"{d.get('name')} = {d.get('value')} ({d.get('rating', '')})"
    if kind == "page_view":
        return f"page {d.get('navigation')}: {d.get('url')}"
    if kind == "issue":
        return f"issue ({d.get('severity')}): {d.get('title')}"
    text = json.dumps(d, default=str)
    return text[:200]


# What ``_line`` reads of each typed table's payload.
_LINE_COLUMNS = {
    HTTP_TABLE: "method, path, status, error, timings",
    CONSOLE_TABLE: "level, type, message",
}


def _timeline_payloads(
    ctx: ReportContext, session: str, envelopes: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The payloads ``_line`` needs for these envelopes of one session, by event id."""
    if not envelopes:
        return {}
    wanted: dict[str, list[str]] = {}
    for e in envelopes:
        table = TABLE_FOR_KIND.get(e["kind"])
        wanted.setdefault(table.name if table else "generic_events", []).append(e["id"])
    span = [min(e["ts"] for e in envelopes), max(e["ts"] for e in envelopes)]
    where = "session_id = ? AND ts BETWEEN ? AND ? AND id IN (SELECT unnest(?))"
    out: dict[str, dict[str, Any]] = {}
    ids = wanted.get("generic_events")
    if ids:
        for row in ctx.store.query(
            f"SELECT id, data FROM generic_events WHERE {where}", [session, *span, ids]
        ):
            out[row["id"]] = loads(row["data"]) if row["data"] else {}
    for table, columns in _LINE_COLUMNS.items():
        ids = wanted.get(table.name)
        if ids:
            for row in ctx.store.query(
                f"SELECT id, {columns} FROM {table.name} WHERE {where}", [session, *span, ids]
            ):
                out[row["id"]] = Store.payload_from_row(table, row)
    return out


@report("timeline", TimelineParams)
def timeline(ctx: ReportContext, p: TimelineParams) -> dict[str, Any]:
    """Every kind of event in time order (newest first), each in one line."""
    session = ctx.session(p.session)
    clauses = ["session_id = ?"]
    params: list[Any] = [session]
    if p.kinds:
        clauses.append(f"kind IN ({', '.join('?' for _ in p.kinds)})")
        params.extend(p.kinds)
    since = _since(ctx, p, session)
    if since is not None:
        clauses.append("ts >= ?")
        params.append(since)
    if p.before:
        clauses.append("id < ?")
        params.append(p.before)
    # The page is chosen on the envelope alone, then only its events' payloads are read, from
    # the session's rows in the page's time range: carrying payloads through the sort, or
    # looking ids up over every session's rows, costs several times the sort itself.
    envelopes = ctx.store.query(
        f"SELECT id, ts, page_id, source, kind FROM events WHERE {' AND '.join(clauses)} "
        "ORDER BY ts DESC, id DESC LIMIT ?",
        [*params, p.limit + 1],
    )
    page = _page(envelopes, p.limit)
    payloads = _timeline_payloads(ctx, session, envelopes)
    for e in envelopes:
        e["data"] = payloads.get(e["id"], {})
    items = [
        {
            "id": e["id"],
            "ts": e["ts"],
            "kind": e["kind"],
            "source": e["source"],
            "page_id": e["page_id"],
            "what": _line(e["kind"], e["data"]),
        }
        for e in envelopes
    ]
    return {"session": session, "events": items, "page": page}


# ---- network ----------------------------------------------------------------------------------


class NetworkParams(ListParams):
    method: str | None = None
    status: str | None = Field(
        default=None,
        description="An exact code (404), a class (4xx, 5xx), or 'failed' (no response).",
    )
    path_contains: str | None = None
    service: str | None = None
    include_static: bool = Field(default=False, description="Include assets and HMR traffic.")
    include_bodies: bool = Field(default=False, description="Include request/response bodies.")


def _is_static(row: dict[str, Any]) -> bool:
    path = (row.get("path") or "").lower()
    ctype = row.get("response_content_type") or ""
    return is_dev_server_path(path) or is_asset_path(path) or is_asset_type(ctype)


@report("network_requests", NetworkParams)
def network_requests(ctx: ReportContext, p: NetworkParams) -> dict[str, Any]:
    """HTTP exchanges through the proxy, newest first, with status, timing and size."""
    clauses, params, session = _scope(ctx, p)
    if p.before:
        clauses.append("id < ?")
        params.append(p.before)
    if p.method:
        clauses.append("method = ?")
        params.append(p.method.upper())
    if p.status:
        s = p.status.lower()
        if s == "failed":
            clauses.append("status IS NULL")
        elif len(s) == 3 and s[0] in "12345" and s[1:] == "xx":
            clauses.append("status >= ? AND status < ?")
            params += [int(s[0]) * 100, int(s[0]) * 100 + 100]
        elif s.isdigit():
            clauses.append("status = ?")
            params.append(int(s))
        else:
            raise ReportError(f"status {p.status!r}: use a code (404), a class (4xx) or 'failed'")
    if p.path_contains:
        clauses.append("contains(path, ?)")
        params.append(p.path_contains)
    if p.service:
        clauses.append("service = ?")
        params.append(p.service)
    bodies = ", request_body, response_body, response_body_truncated" if p.include_bodies else ""
    columns = (
        "id, ts, page_id, method, host, path, query, path_template, service, status, error, "
        "response_content_type, request_size, response_size, auth"
    )
    # Static rows are filtered here rather than in SQL (the rules read better in Python), so
    # the query reads pages of candidates until the page is full.
    out: list[dict[str, Any]] = []
    hidden = 0
    before = None
    while len(out) <= p.limit:
        extra = [*clauses, "id < ?"] if before else clauses
        rows = ctx.store.query(
            f"""SELECT {columns}, total_ms, ttfb_ms{bodies}
                FROM http WHERE {" AND ".join(extra)} ORDER BY id DESC LIMIT ?""",
            [*params, *([before] if before else []), 500],
        )
        for row in rows:
            if not p.include_static and _is_static(row):
                hidden += 1
                continue
            out.append(row)
        if len(rows) < 500:
            break
        before = rows[-1]["id"]
    page = _page(out, p.limit)
    return {"session": session, "requests": out, "hidden_static": hidden, "page": page}


class ConsoleParams(ListParams):
    level: Literal["log", "info", "warn", "error", "debug"] | None = None
    errors_only: bool = Field(default=False, description="Only console.error and uncaught errors.")
    search: str | None = Field(default=None, description="Only messages containing this text.")
    include_stacks: bool = True


@report("console_messages", ConsoleParams)
def console_messages(ctx: ReportContext, p: ConsoleParams) -> dict[str, Any]:
    """Console output and uncaught errors from the pages, newest first."""
    clauses, params, session = _scope(ctx, p)
    # The counts by level cover the whole window, not just this page or these filters.
    window, window_params = list(clauses), list(params)
    if p.before:
        clauses.append("id < ?")
        params.append(p.before)
    if p.level:
        clauses.append("level = ?")
        params.append(p.level)
    if p.errors_only:
        clauses.append("(kind = 'error' OR level = 'error')")
    if p.search:
        clauses.append("contains(lower(message), lower(?))")
        params.append(p.search)
    stack = ", stack" if p.include_stacks else ""
    rows = ctx.store.query(
        f"""SELECT id, ts, page_id, kind, coalesce(level, 'error') AS level, type, message,
                   error_source AS source, line, col AS column{stack}
            FROM console WHERE {" AND ".join(clauses)} ORDER BY ts DESC, id DESC LIMIT ?""",
        [*params, p.limit + 1],
    )
    page = _page(rows, p.limit)
    counts = ctx.store.query(
        "SELECT coalesce(level, 'error') AS level, count(*) AS n FROM console "
        f"WHERE {' AND '.join(window)} GROUP BY 1",
        window_params,
    )
    return {
        "session": session,
        "messages": rows,
        "by_level": {c["level"]: c["n"] for c in counts},
        "page": page,
    }


# ---- performance ------------------------------------------------------------------------------

# Google's thresholds: good up to the first number, poor above the second.
VITAL_THRESHOLDS = {
    "LCP": (2500, 4000),
    "FCP": (1800, 3000),
    "INP": (200, 500),
    "CLS": (0.1, 0.25),
    "TTFB": (800, 1800),
}


@report("performance", SessionParams)
def performance(ctx: ReportContext, p: SessionParams) -> dict[str, Any]:
    """Web vitals (p75 per metric with Google's rating), long tasks and resource summaries."""
    session = ctx.session(p.session)
    vitals = {}
    for r in ctx.store.query(
        """SELECT j[1] ->> '$' AS name, count(v) AS samples,
                  quantile_cont(v, 0.75) AS p75, max(v) AS worst
           FROM (SELECT j, TRY_CAST(j[2] AS DOUBLE) AS v
                 FROM (SELECT json_extract(data, ['$.name', '$.value']) AS j
                       FROM generic_events WHERE session_id = ? AND kind = 'vital'))
           GROUP BY 1""",
        [session],
    ):
        good, poor = VITAL_THRESHOLDS.get(r["name"], (None, None))
        rating = None
        if good is not None and r["p75"] is not None:
            rating = (
                "good" if r["p75"] <= good else "poor" if r["p75"] > poor else "needs-improvement"
            )
        vitals[r["name"]] = {
            "p75": r["p75"],
            "worst": r["worst"],
            "samples": r["samples"],
            "rating": rating,
            "thresholds": {"good": good, "poor": poor},
        }
    tasks = ctx.store.query(
        """SELECT count(*) AS n, max(d) AS longest_ms, sum(d) AS total_ms
           FROM (SELECT TRY_CAST(json_extract(data, '$.duration_ms') AS DOUBLE) AS d
                 FROM generic_events WHERE session_id = ? AND kind = 'long_task')""",
        [session],
    )[0]
    mutations = ctx.store.query(
        """SELECT count(*) AS n, max(TRY_CAST(json_extract(data, '$.added_nodes') AS INTEGER)) AS largest
           FROM generic_events WHERE session_id = ? AND kind = 'dom_mutation'""",
        [session],
    )[0]
    slowest = ctx.store.query(
        """SELECT method || ' ' || coalesce(path_template, path) AS endpoint, count(*) AS calls,
                  quantile_cont(total_ms, 0.95) AS p95_ms
           FROM http WHERE session_id = ? GROUP BY 1 ORDER BY p95_ms DESC NULLS LAST LIMIT 5""",
        [session],
    )
    return {
        "session": session,
        "vitals": vitals,
        "long_tasks": tasks,
        "large_dom_mutations": mutations,
        "slowest_endpoints": slowest,
    }


# ---- renders, state, tracking -----------------------------------------------------------------


class RenderParams(SessionParams):
    limit: int = Field(default=30, ge=1, le=MAX_LIMIT)


@report("render_summary", RenderParams)
def render_summary(ctx: ReportContext, p: RenderParams) -> dict[str, Any]:
    """React components by render count: renders, time, why they rendered, identical props."""
    session = ctx.session(p.session)
    rows = ctx.store.query(
        # One JSON parse per row for all five fields (json_extract with a list of paths).
        """SELECT j[1] ->> '$' AS component,
                  sum(TRY_CAST(j[2] AS BIGINT)) AS renders,
                  round(sum(TRY_CAST(j[3] AS DOUBLE)), 2) AS total_ms,
                  sum(TRY_CAST(j[4] AS BIGINT)) AS identical_props,
                  max(TRY_CAST(j[5] AS BIGINT)) AS largest_commit
           FROM (SELECT json_extract(data, ['$.component', '$.renders', '$.actual_duration_ms',
                                            '$.identical_props', '$.commit_components']) AS j
                 FROM generic_events WHERE session_id = ? AND kind = 'render')
           GROUP BY 1 ORDER BY renders DESC LIMIT ?""",
        [session, p.limit],
    )
    return {"session": session, "components": rows}


class RenderDetailParams(ListParams):
    component: str | None = Field(default=None, description="One component's renders only.")


@report("render_details", RenderDetailParams)
def render_details(ctx: ReportContext, p: RenderDetailParams) -> dict[str, Any]:
    """Each reported render window: reasons (props/state/context/parent) and changed props."""
    rows, page, session = _generic(ctx, p, ("render",))
    if p.component:
        rows = [r for r in rows if r["data"].get("component") == p.component]
    return {"session": session, "renders": rows, "page": page}


class StateParams(ListParams):
    store: str | None = None


@report("state_changes", StateParams)
def state_changes(ctx: ReportContext, p: StateParams) -> dict[str, Any]:
    """Redux and Zustand actions with the diff of the state they changed, newest first."""
    rows, page, session = _generic(ctx, p, ("state",))
    if p.store:
        rows = [r for r in rows if r["data"].get("store") == p.store]
    return {"session": session, "changes": rows, "page": page}


@report("state_mutation_frequency", SessionParams)
def state_mutation_frequency(ctx: ReportContext, p: SessionParams) -> dict[str, Any]:
    """Per store and action: how many updates, and the busiest second."""
    session = ctx.session(p.session)
    rows = ctx.store.query(
        """WITH s AS (SELECT json_extract_string(data, '$.store') AS store,
                             json_extract_string(data, '$.action') AS action,
                             floor(ts / 1000) AS second
                      FROM generic_events WHERE session_id = ? AND kind = 'state')
           SELECT store, action, count(*) AS updates,
                  max(per_second) AS peak_per_second
           FROM (SELECT *, count(*) OVER (PARTITION BY store, second) AS per_second FROM s)
           GROUP BY 1, 2 ORDER BY updates DESC""",
        [session],
    )
    return {"session": session, "actions": rows}


@report("tracking_events", ListParams)
def tracking_events(ctx: ReportContext, p: ListParams) -> dict[str, Any]:
    """dataLayer.push and gtag calls with their event names and parameters."""
    rows, page, session = _generic(ctx, p, ("tracking",))
    return {"session": session, "events": rows, "page": page}


# ---- SQL --------------------------------------------------------------------------------------


class QueryParams(Params):
    sql: str = Field(description="One SELECT (or WITH ... SELECT) over the store's tables.")
    limit: int = Field(default=200, ge=1, le=5000)


@report("query", QueryParams)
def query(ctx: ReportContext, p: QueryParams) -> dict[str, Any]:
    """Read-only SQL over the store (checked first), capped in rows and time."""
    sql = check_select(p.sql)
    rows = ctx.store.query_limited(f"SELECT * FROM ({sql}) AS q LIMIT {p.limit + 1}", timeout_s=10)
    truncated = len(rows) > p.limit
    return {"rows": rows[: p.limit], "returned": min(len(rows), p.limit), "truncated": truncated}
