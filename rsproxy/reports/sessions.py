"""Sessions: the list of captures, and what changed between two of them.

``session_diff`` measures both sessions the same way, straight from the store (no stage keeps
state for it, so a replayed HAR and a session from last week compare as well as the live one):

* endpoints — p50 and p95 latency and error rate (no response, or 5xx) per method and template;
* components — renders and render time per component, per page view;
* queries — p95 duration and calls per page view, per SQL fingerprint;
* web vitals — p75 of each metric (the percentile Google's thresholds are set at);
* console errors — per message, per page view;
* issues — a detector's finding present in one session and not the other.

A change counts only when it clears both a relative and an absolute noise threshold (so 2 ms
becoming 4 ms on loopback is "unchanged"), and percentiles only from a few samples on each side.
Counts are taken per page view when both sessions have page views, so a longer session does not
look like a regression of everything it did more often.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from rsproxy.reports import Params, ReportContext, report
from rsproxy.store import Store

Change = Literal["regression", "improvement", "unchanged", "new", "gone"]


class SessionsParams(Params):
    limit: int = Field(default=20, ge=1, le=500, description="How many sessions, newest first.")


class DiffParams(Params):
    a: str = Field(default="latest-1", description="The earlier session: id, latest-N, commit.")
    b: str = Field(default="latest", description="The later session.")
    latency_rel: float = Field(default=0.2, gt=0, description="Relative change for latencies.")
    latency_abs_ms: float = Field(default=25.0, ge=0, description="Absolute change for latencies.")
    error_rate_abs: float = Field(default=0.05, gt=0, le=1, description="Error rate change.")
    count_rel: float = Field(default=0.25, gt=0, description="Relative change for counts.")
    count_abs: float = Field(default=2.0, ge=0, description="Absolute change for counts.")
    min_samples: int = Field(default=3, ge=1, description="Samples per side for a percentile.")
    include_unchanged: bool = Field(default=False, description="List unchanged metrics too.")


@report("sessions", SessionsParams)
def sessions(ctx: ReportContext, params: SessionsParams) -> dict[str, Any]:
    """The project's sessions, newest first, with their build and what they captured."""
    rows = ctx.store.query(
        """SELECT s.id, s.source, s.target, s.started_ms, s.ended_ms, s.git_commit,
                  s.git_branch, s.git_dirty,
                  (SELECT count(*) FROM events e WHERE e.session_id = s.id) AS events,
                  (SELECT count(*) FROM http h WHERE h.session_id = s.id) AS requests,
                  (SELECT count(*) FROM issues i WHERE i.session_id = s.id) AS issues
           FROM sessions s ORDER BY s.started_ms DESC LIMIT ?""",
        [params.limit],
    )
    for row in rows:
        row["live"] = row["id"] == ctx.current_session
    return {"sessions": rows, "count": len(rows)}


# ---- measuring one session ------------------------------------------------------------------


@dataclass
class Metric:
    area: str  # endpoint, component, query, vital, console_error, issue
    key: str  # what it is about: "GET /api/users/{userId}", a component name, ...
    name: str  # p95_ms, error_rate, renders_per_view, ...
    value: float
    samples: int
    higher_is_worse: bool = True
    kind: Literal["latency", "rate", "count", "vital"] = "latency"


def _page_views(store: Store, session: str) -> int:
    rows = store.query(
        "SELECT count(*) AS n FROM generic_events WHERE session_id = ? AND kind = 'page_view'",
        [session],
    )
    return int(rows[0]["n"])


def measure(store: Store, session: str, per_view: bool) -> list[Metric]:
    """Every metric of one session; ``per_view`` divides counts by the session's page views."""
    views = max(_page_views(store, session), 1) if per_view else 1
    metrics: list[Metric] = []
    for r in store.query(
        """SELECT method || ' ' || coalesce(path_template, path) AS key, count(*) AS n,
                  count(total) AS timed,
                  quantile_cont(total, 0.5) AS p50, quantile_cont(total, 0.95) AS p95,
                  avg(CASE WHEN status IS NULL OR status >= 500 THEN 1.0 ELSE 0.0 END) AS errors
           FROM (SELECT *, total_ms AS total
                 FROM http WHERE session_id = ? AND NOT coalesce(websocket, false))
           GROUP BY 1""",
        [session],
    ):
        if r["p50"] is not None:
            metrics.append(Metric("endpoint", r["key"], "p50_ms", r["p50"], r["timed"]))
            metrics.append(Metric("endpoint", r["key"], "p95_ms", r["p95"], r["timed"]))
        metrics.append(Metric("endpoint", r["key"], "error_rate", r["errors"], r["n"], kind="rate"))
    for r in store.query(
        """SELECT json_extract_string(data, '$.component') AS key,
                  sum(TRY_CAST(json_extract(data, '$.renders') AS DOUBLE)) AS renders,
                  sum(TRY_CAST(json_extract(data, '$.actual_duration_ms') AS DOUBLE)) AS ms,
                  count(*) AS n
           FROM generic_events WHERE session_id = ? AND kind = 'render' GROUP BY 1""",
        [session],
    ):
        if r["key"] is None:
            continue
        n = int(r["n"])
        metrics.append(
            Metric(
                "component",
                r["key"],
                "renders_per_view",
                (r["renders"] or 0) / views,
                n,
                kind="count",
            )
        )
        metrics.append(
            Metric("component", r["key"], "render_ms_per_view", (r["ms"] or 0) / views, n)
        )
    for r in store.query(
        """SELECT coalesce(json_extract_string(data, '$.fingerprint'),
                           json_extract_string(data, '$.text')) AS key,
                  count(*) AS n, count(d) AS timed, quantile_cont(d, 0.95) AS p95
           FROM (SELECT data, TRY_CAST(json_extract(data, '$.duration_ms') AS DOUBLE) AS d
                 FROM generic_events WHERE session_id = ? AND kind = 'sql')
           GROUP BY 1""",
        [session],
    ):
        if r["key"] is None:
            continue
        if r["p95"] is not None:
            metrics.append(Metric("query", r["key"], "p95_ms", r["p95"], r["timed"]))
        metrics.append(
            Metric("query", r["key"], "calls_per_view", r["n"] / views, r["n"], kind="count")
        )
    for r in store.query(
        """SELECT json_extract_string(data, '$.name') AS key, count(v) AS n,
                  quantile_cont(v, 0.75) AS p75
           FROM (SELECT data, TRY_CAST(json_extract(data, '$.value') AS DOUBLE) AS v
                 FROM generic_events WHERE session_id = ? AND kind = 'vital')
           GROUP BY 1""",
        [session],
    ):
        if r["key"] is not None and r["p75"] is not None:
            metrics.append(Metric("vital", r["key"], "p75", r["p75"], r["n"], kind="vital"))
    for r in store.query(
        """SELECT left(message, 300) AS key, count(*) AS n FROM console
           WHERE session_id = ? AND (kind = 'error' OR level = 'error') GROUP BY 1""",
        [session],
    ):
        metrics.append(
            Metric(
                "console_error", r["key"] or "", "per_view", r["n"] / views, r["n"], kind="count"
            )
        )
    for r in store.query(
        "SELECT id, title, severity, count FROM issues WHERE session_id = ?", [session]
    ):
        metrics.append(
            Metric(
                "issue",
                f"{r['severity']}: {r['title']}",
                "count",
                r["count"],
                r["count"],
                kind="count",
            )
        )
    return metrics


# Absolute noise per web vital: CLS is unitless, the others are milliseconds.
_VITAL_ABS = {"CLS": 0.02}


def classify(a: Metric | None, b: Metric | None, p: DiffParams) -> Change:
    if a is None:
        return "new"
    if b is None:
        return "gone"
    if a.kind in ("latency", "vital") and min(a.samples, b.samples) < p.min_samples:
        return "unchanged"  # a percentile of one or two samples is noise
    delta = b.value - a.value
    if a.kind == "rate":
        moved = abs(delta) > p.error_rate_abs
    else:
        if a.kind == "latency":
            rel, absolute = p.latency_rel, p.latency_abs_ms
        elif a.kind == "vital":
            rel, absolute = 0.1, _VITAL_ABS.get(a.key, 50.0)
        else:
            rel, absolute = p.count_rel, p.count_abs
        moved = abs(delta) > absolute and (a.value == 0 or abs(delta) / abs(a.value) > rel)
    if not moved:
        return "unchanged"
    return "regression" if (delta > 0) == a.higher_is_worse else "improvement"


def _area_change(area: str, change: Change) -> Change:
    """What appearing or vanishing means for an area: a new console error or issue is a
    regression and a vanished one an improvement; a new endpoint or component is just new."""
    if area in ("console_error", "issue"):
        if change == "new":
            return "regression"
        if change == "gone":
            return "improvement"
    return change


def _summary(store: Store, session: str) -> dict[str, Any]:
    rows = store.query(
        """SELECT id, source, target, started_ms, ended_ms, git_commit, git_branch, git_dirty
           FROM sessions WHERE id = ?""",
        [session],
    )
    info: dict[str, Any] = rows[0] if rows else {"id": session}
    info["page_views"] = _page_views(store, session)
    return info


@report("session_diff", DiffParams)
def session_diff(ctx: ReportContext, params: DiffParams) -> dict[str, Any]:
    """What changed from session A to session B: regressions, improvements, new and gone."""
    a_id, b_id = ctx.session(params.a), ctx.session(params.b)
    a_info, b_info = _summary(ctx.store, a_id), _summary(ctx.store, b_id)
    per_view = bool(a_info["page_views"] and b_info["page_views"])
    before = {(m.area, m.key, m.name): m for m in measure(ctx.store, a_id, per_view)}
    after = {(m.area, m.key, m.name): m for m in measure(ctx.store, b_id, per_view)}
    changes: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for key in sorted(before.keys() | after.keys()):
        a, b = before.get(key), after.get(key)
        change = _area_change(key[0], classify(a, b, params))
        counts[change] = counts.get(change, 0) + 1
        if change == "unchanged" and not params.include_unchanged:
            continue
        changes.append(
            {
                "area": key[0],
                "key": key[1],
                "metric": key[2],
                "change": change,
                "a": None if a is None else round(a.value, 4),
                "b": None if b is None else round(b.value, 4),
                "samples": [None if a is None else a.samples, None if b is None else b.samples],
            }
        )
    order = {"regression": 0, "improvement": 1, "new": 2, "gone": 3, "unchanged": 4}
    changes.sort(key=lambda c: (order[c["change"]], c["area"], c["key"], c["metric"]))
    return {
        "a": a_info,
        "b": b_info,
        "per_page_view": per_view,
        "thresholds": json.loads(params.model_dump_json(exclude={"a", "b", "include_unchanged"})),
        "counts": counts,
        "changes": changes,
    }
