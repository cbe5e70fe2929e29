"""The ``issues`` report: a session's findings, worst first, each with its evidence.

The ``detect`` stage keeps one row per finding in the ``issues`` table; this report reads them,
filters by severity and detector, and sorts by severity, then count, then recency. Each issue
comes with what an agent needs to act without another call: the plain explanation and the
suggested fix, the evidence event ids, a one-line description of the first few evidence events
(``GET /api/items/7 -> 500 (12 ms)``, a console message, a render count, ...), and the URLs of
the page views it was seen on. For the live session after ``clear_events``, issues last seen
before the clear are left out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import Field, field_validator

from rsproxy.analysis.detectors import SEVERITY_RANK, DetectorName, Severity
from rsproxy.reports import Params, ReportContext, report
from rsproxy.store import Store, loads


def _as_list(value: Any) -> Any:
    """``"high"`` and ``"high,medium"`` as well as ``["high", "medium"]``."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class IssuesParams(Params):
    session: str = Field(
        default="current", description="current, latest, latest-N, an id, or a git commit."
    )
    severity: list[Severity] | None = Field(
        default=None, description="Only these severities (high, medium, low)."
    )
    detector: list[DetectorName] | None = Field(
        default=None, description="Only these detectors (see `rsproxy pipeline stages`)."
    )
    limit: int = Field(default=50, ge=1, le=500, description="At most this many issues.")
    evidence_events: int = Field(
        default=3, ge=0, le=20, description="Describe this many evidence events per issue."
    )

    _lists = field_validator("severity", "detector", mode="before")(_as_list)


@report("issues", IssuesParams)
def issues(ctx: ReportContext, p: IssuesParams) -> dict[str, Any]:
    """The session's issues, worst first, with explanation, fix and evidence."""
    session = ctx.session(p.session)
    clauses = ["session_id = ?"]
    params: list[Any] = [session]
    if p.severity:
        clauses.append(f"severity IN ({', '.join('?' for _ in p.severity)})")
        params.extend(p.severity)
    if p.detector:
        clauses.append(f"detector IN ({', '.join('?' for _ in p.detector)})")
        params.extend(p.detector)
    if session == ctx.current_session and ctx.cleared_ms is not None:
        clauses.append("last_seen >= ?")
        params.append(ctx.cleared_ms)
    rows = ctx.store.query(
        "SELECT id, detector, severity, title, first_seen, last_seen, count, data FROM issues "
        f"WHERE {' AND '.join(clauses)}",
        params,
    )
    by_severity = {name: 0 for name in SEVERITY_RANK}
    for row in rows:
        by_severity[row["severity"]] = by_severity.get(row["severity"], 0) + 1
    rows.sort(key=lambda r: (SEVERITY_RANK.get(r["severity"], 9), -r["count"], -r["last_seen"]))
    total = len(rows)
    del rows[p.limit :]

    out = []
    for row in rows:
        data = loads(row.pop("data") or "{}")
        out.append(
            {
                **row,
                "explanation": data.get("explanation", ""),
                "suggestion": data.get("suggestion", ""),
                "key": data.get("key", ""),
                "details": data.get("details") or {},
                "evidence": data.get("evidence") or [],
            }
        )
    _describe_evidence(ctx.store, session, out, p.evidence_events)
    _resolve_pages(ctx.store, session, out)
    return {
        "session": session,
        "total": total,
        "returned": len(out),
        "by_severity": by_severity,
        "issues": out,
    }


def _in(ids: list[str]) -> str:
    return ", ".join("?" for _ in ids)


# Where each detector's evidence events are stored; a lookup scans the session's ids in a table,
# so only the tables an issue's evidence can be in are read. A detector not listed: all three.
_EVIDENCE_TABLES: dict[str, frozenset[str]] = {
    **dict.fromkeys(
        (
            "failed_request",
            "slow_request",
            "n_plus_one_requests",
            "api_inconsistency",
            "auth_mismatch",
        ),
        frozenset({"http"}),
    ),
    "write_amplification": frozenset({"http", "generic_events"}),
    "console_error_spam": frozenset({"console"}),
    **dict.fromkeys(
        (
            "long_task",
            "large_dom_mutation",
            "poor_web_vital",
            "store_thrashing",
            "unnecessary_renders",
            "render_cascade",
            "slow_query",
            "n_plus_one_queries",
            "select_star",
        ),
        frozenset({"generic_events"}),
    ),
}
_ALL_TABLES = frozenset({"http", "console", "generic_events"})


def _http_line(row: dict[str, Any]) -> str:
    total = row["total_ms"]
    status = row["status"] if row["status"] is not None else "no response"
    took = f" ({total:.0f} ms)" if isinstance(total, (int, float)) else ""
    return f"{row['method']} {row['path']} -> {status}{took}"


def _console_line(row: dict[str, Any]) -> str:
    return f"{row['level'] or row['kind']}: {(row['message'] or '')[:200]}"


# Per table: the columns a one-line description reads, and how it is made from them.
_EVIDENCE_LINES: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "http": ("method, path, status, total_ms", _http_line),
    "console": ("level, message", _console_line),
    "generic_events": ("data", lambda row: _summary(row["kind"], row["data"])),
}


def _describe_evidence(store: Store, session: str, issues: list[dict[str, Any]], n: int) -> None:
    """``evidence_events``: the first ``n`` evidence events of each issue, one line each."""
    by_table: dict[str, set[str]] = {}
    for issue in issues:
        for table in _EVIDENCE_TABLES.get(issue["detector"], _ALL_TABLES):
            by_table.setdefault(table, set()).update(issue["evidence"][:n])
    found: dict[str, dict[str, Any]] = {}
    for table, (columns, line) in _EVIDENCE_LINES.items():
        wanted = sorted(by_table.get(table, ()))
        if not wanted:
            continue
        for row in store.query(
            f"SELECT id, ts, kind, {columns} FROM {table} "
            f"WHERE session_id = ? AND id IN ({_in(wanted)})",
            [session, *wanted],
        ):
            found[row["id"]] = {
                "id": row["id"],
                "ts": row["ts"],
                "kind": row["kind"],
                "summary": line(row),
            }
    for issue in issues:
        issue["evidence_events"] = [found[e] for e in issue["evidence"][:n] if e in found]


def _summary(kind: str, raw: str | None) -> str:
    try:
        data = loads(raw) if raw else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        return kind
    if kind == "render":
        reasons = ", ".join(f"{k} {v}" for k, v in (data.get("reasons") or {}).items())
        return (
            f"{data.get('component')}: {data.get('renders')} render(s) ({reasons}), "
            f"commit of {data.get('commit_components')}"
        )
    if kind == "state":
        return f"{data.get('library')} {data.get('store')}: {data.get('action')}"
    if kind == "vital":
        return f"{data.get('name')} = {data.get('value')} ({data.get('rating')})"
    if kind == "long_task":
        return f"task of {data.get('duration_ms')} ms"
    if kind == "dom_mutation":
        return f"{data.get('added_nodes')} nodes added under {data.get('target')}"
    if kind == "sql":
        took = data.get("duration_ms")
        return f"{str(data.get('text') or '')[:200]}" + (
            f" ({took} ms)" if took is not None else ""
        )
    return json.dumps(data, default=str)[:200]


def _resolve_pages(store: Store, session: str, issues: list[dict[str, Any]]) -> None:
    """``pages``: the URLs of the page views an issue was seen on (the probe's page_view)."""
    wanted = sorted({pid for issue in issues for pid in issue["details"].get("page_ids") or ()})
    urls: dict[str, str] = {}
    if wanted:
        for row in store.query(
            "SELECT page_id, json_extract_string(data, '$.url') AS url FROM generic_events "
            f"WHERE session_id = ? AND kind = 'page_view' AND page_id IN ({_in(wanted)}) "
            "ORDER BY ts",
            [session, *wanted],
        ):
            urls.setdefault(row["page_id"], row["url"])
    for issue in issues:
        pages: list[str] = []
        for pid in issue["details"].get("page_ids") or ():
            url = urls.get(pid)
            if url and url not in pages:
                pages.append(url)
        issue["pages"] = pages
