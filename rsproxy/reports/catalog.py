"""The API catalog reports: endpoints and their contracts, services, health, OpenAPI, docs, cURL.

The ``catalog`` stage keeps what is read here (docs/analysis-contract.md): the ``endpoints``
table (which endpoints exist, their inferred contracts, auth names, a sample request) and the
``endpoint_figures`` table (rsproxy/analysis/figures.py) with each endpoint's running figures —
calls, success rate, p50/p95 latency (``total_ms``, first request byte to last response byte),
status codes, error samples, last seen and last success. Where there are no stored figures for
every endpoint answered (a session stored before they were kept), and for the live session
after ``clear_events`` (only the calls since count), the figures are computed from the ``http``
table at query time by the same rules. An exchange belongs to an endpoint by (service, method,
template); where ``normalize`` did not run, the host and the literal path stand in on both
sides, as the stage does.

Reports:

* ``catalog`` — endpoints by service with figures and contracts;
* ``service_map`` — services with their hosts, endpoint counts, calls, error rate and p95;
* ``api_health`` — each endpoint classed healthy, degraded or failing, worst first;
* ``openapi`` — an OpenAPI 3.1 document (rsproxy/analysis/openapi.py);
* ``api_docs`` — the same as Markdown;
* ``curl`` — a cURL command replaying an endpoint's sample request (secrets redacted).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from rsproxy.analysis.figures import Figures, merged
from rsproxy.analysis.openapi import build_markdown, build_openapi, curl_command
from rsproxy.errors import ReportError
from rsproxy.reports import Params, ReportContext, report
from rsproxy.store import loads

_METHOD_ORDER = {m: n for n, m in enumerate(["GET", "POST", "PUT", "PATCH", "DELETE"])}
_HTTP_METHODS = frozenset(
    {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"}
)
_ERROR_BODY_CHARS = 200

# The session's exchanges as the catalog stage keys them; ``?`` is the session id.
_HTTP = """
    SELECT coalesce(service, host) AS service, method, coalesce(path_template, path) AS tpl,
           host, status, ts, id, auth, error, response_body, response_body_encoding,
           total_ms AS total
    FROM http WHERE session_id = ? AND NOT coalesce(websocket, false)
"""
_JOIN = """
    FROM e JOIN h ON h.service = e.service AND h.method = e.method AND h.tpl = e.path_template
"""


class CatalogFilter(Params):
    session: str = Field(
        default="current",
        description="current (the live session, else the latest), latest, latest-N, an id, "
        "or a git commit.",
    )
    service: str | None = Field(default=None, description="Only this service (app, stripe, ...).")


class CatalogParams(CatalogFilter):
    method: str | None = Field(default=None, description="Only this HTTP method.")
    path: str | None = Field(default=None, description="Only templates containing this text.")
    contracts: bool = Field(default=True, description="Include request/response contracts.")
    error_samples: int = Field(default=3, ge=0, le=20, description="Error samples per endpoint.")
    limit: int = Field(default=500, ge=1, le=5000, description="Endpoints at most.")


class HealthParams(CatalogFilter):
    slow_ms: float = Field(default=1000.0, gt=0, description="p95 above this is degraded.")
    error_rate: float = Field(
        default=0.05, gt=0, le=1, description="Server error rate above this is degraded."
    )
    min_calls: int = Field(default=1, ge=1, description="Leave out endpoints called less often.")


class OpenApiParams(CatalogFilter):
    title: str | None = Field(default=None, description="The document's title.")


class CurlParams(CatalogFilter):
    endpoint: str = Field(
        description="The endpoint: its key (`app GET /users/{userId}`), `GET /users/{userId}`, "
        "a template, or a literal path such as `/users/42`.",
        min_length=1,
    )


# ---- reading ------------------------------------------------------------------------------------


# The parts of an endpoint's stored state every catalog answer uses; the contracts (the bulk of
# it: a schema per status code) are read only when asked for.
_SUMMARY_PARTS = (
    "origins",
    "auth",
    "auth_names",
    "request_content_types",
    "response_content_types",
    "sample_ids",
    "sample_request",
    "merged_from",
)
_SUMMARY_PATHS = "[" + ", ".join(f"'$.{name}'" for name in _SUMMARY_PARTS) + "]"


def _endpoint_rows(
    ctx: ReportContext, session: str, params: CatalogFilter, *, contracts: bool = True
) -> list[dict[str, Any]]:
    # Without contracts DuckDB picks the summary parts out of each record (in C++), and only
    # those small values become Python objects: building every endpoint's schemas in Python was
    # most of a catalog answer's time over a large session.
    data = "data" if contracts else f"json_extract(data, {_SUMMARY_PATHS}) AS data"
    rows = ctx.store.query(
        f"SELECT key, service, host, method, path_template, updated_ms, {data} "
        "FROM endpoints WHERE session_id = ?",
        [session],
    )
    if params.service is not None:
        chosen = [r for r in rows if r["service"] == params.service]
        if not chosen and rows:
            known = ", ".join(sorted({r["service"] for r in rows}))
            raise ReportError(
                f"no service {params.service!r} in session {session}; its services: {known}"
            )
        rows = chosen
    for row in rows:
        value = row["data"]
        if contracts:
            row["data"] = loads(value) if isinstance(value, str) else value
        else:
            row["data"] = {
                name: loads(part)
                for name, part in zip(_SUMMARY_PARTS, value or (), strict=False)
                if part is not None
            }
    rows.sort(
        key=lambda r: (
            r["service"] != "app",
            r["service"],
            r["path_template"],
            _METHOD_ORDER.get(r["method"], 99),
            r["method"],
        )
    )
    return rows


def _since(ctx: ReportContext, session: str) -> float | None:
    """Where the live session starts after ``clear_events``; None for every other session."""
    return ctx.cleared_ms if session == ctx.current_session else None


def _with_tables(ctx: ReportContext, session: str, service: str | None) -> tuple[str, list[Any]]:
    """A WITH clause defining ``h`` (the session's exchanges) and ``e`` (its endpoints)."""
    http_sql = _HTTP
    args: list[Any] = [session]
    since = _since(ctx, session)
    if since is not None:
        http_sql += " AND ts >= ?"
        args.append(since)
    where = "session_id = ?"
    args.append(session)
    if service is not None:
        where += " AND service = ?"
        args.append(service)
    return f"WITH h AS ({http_sql}), e AS (SELECT * FROM endpoints WHERE {where})", args


def _stored_figures(
    ctx: ReportContext, session: str, endpoints: list[dict[str, Any]]
) -> dict[str, Figures] | None:
    """The catalog stage's figures of ``endpoints`` (rows with a ``key``), by key; None when the
    ``http`` rows must be counted instead: some endpoint has none stored, or only the calls
    since ``clear_events`` count."""
    if _since(ctx, session) is not None:
        return None
    stored = {
        row["key"]: row["data"]
        for row in ctx.store.query(
            "SELECT key, data FROM endpoint_figures WHERE session_id = ?", [session]
        )
    }
    if any(e["key"] not in stored for e in endpoints):
        return None
    return {e["key"]: Figures(loads(stored[e["key"]])) for e in endpoints}


def _stats(
    ctx: ReportContext, session: str, service: str | None, endpoints: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The figures of ``endpoints`` (rows of ``_endpoint_rows``) counted from the session's
    exchanges, keyed by endpoint key; the keys of ``Figures.summary``.

    Two grouped scans of ``http`` and the folding here: counts by (endpoint, status, auth,
    host), then the latency quantiles by endpoint. DuckDB's ``histogram`` and ``list(DISTINCT)``
    aggregates cost more than the scan itself over a large session; a finer GROUP BY whose few
    hundred rows are folded in Python does not."""
    with_sql, args = _with_tables(ctx, session, service)
    keys = {(r["service"], r["method"], r["path_template"]): r["key"] for r in endpoints}
    out: dict[str, dict[str, Any]] = {}
    for row in ctx.store.query(
        f"""{with_sql}
        SELECT service, method, tpl, status, coalesce(auth, 'none') AS auth, host,
               count(*) AS n, min(ts) AS first_seen, max(ts) AS last_seen
        FROM h GROUP BY ALL""",
        args,
    ):
        key = keys.get((row["service"], row["method"], row["tpl"]))
        if key is None:
            continue  # not catalogued (a page, a static asset)
        stats = out.get(key)
        if stats is None:
            stats = out[key] = {
                "calls": 0,
                "successes": 0,
                "server_errors": 0,
                "client_errors": 0,
                "first_seen": row["first_seen"],
                "last_seen": row["last_seen"],
                "last_success": None,
                "hosts": set(),
                "statuses": {},
                "auth": {},
            }
        n, status = row["n"], row["status"]
        stats["calls"] += n
        if status is None or status >= 500:
            stats["server_errors"] += n
        elif status >= 400:
            stats["client_errors"] += n
        else:
            stats["successes"] += n
            if stats["last_success"] is None or row["last_seen"] > stats["last_success"]:
                stats["last_success"] = row["last_seen"]
        stats["first_seen"] = min(stats["first_seen"], row["first_seen"])
        stats["last_seen"] = max(stats["last_seen"], row["last_seen"])
        if row["host"] is not None:
            stats["hosts"].add(row["host"])
        stats["statuses"][status] = stats["statuses"].get(status, 0) + n
        stats["auth"][row["auth"]] = stats["auth"].get(row["auth"], 0) + n
    for row in ctx.store.query(
        f"""{with_sql}
        SELECT service, method, tpl, count(total) AS timed,
               quantile_cont(total, [0.5, 0.95]) AS quantiles
        FROM h GROUP BY ALL""",
        args,
    ):
        key = keys.get((row["service"], row["method"], row["tpl"]))
        if key is not None and key in out:
            out[key]["timed"] = row["timed"]
            out[key]["p50"], out[key]["p95"] = row["quantiles"] or (None, None)
    for stats in out.values():
        stats["hosts"] = sorted(stats["hosts"])
        # Codes ascending, no response last; schemes by calls, then name.
        statuses = stats.pop("statuses")
        codes = {str(code): statuses[code] for code in sorted(c for c in statuses if c is not None)}
        if None in statuses:
            codes["none"] = statuses[None]
        stats["status_codes"] = codes
        stats["auth"] = dict(sorted(stats["auth"].items(), key=lambda item: (-item[1], item[0])))
    return out


def _error_samples(
    ctx: ReportContext, session: str, service: str | None, per_endpoint: int
) -> dict[str, list[dict[str, Any]]]:
    if per_endpoint <= 0:
        return {}
    with_sql, args = _with_tables(ctx, session, service)
    out: dict[str, list[dict[str, Any]]] = {}
    for row in ctx.store.query(
        f"""{with_sql}
        SELECT key, id, status, error, body FROM (
            SELECT e.key, h.id, h.status, h.error, h.ts,
                   CASE WHEN h.response_body_encoding = 'base64' THEN NULL
                        ELSE left(h.response_body, {_ERROR_BODY_CHARS}) END AS body,
                   row_number() OVER (PARTITION BY e.key ORDER BY h.ts DESC, h.id DESC) AS rank
            {_JOIN} WHERE h.status IS NULL OR h.status >= 400)
        WHERE rank <= ? ORDER BY key, ts DESC""",
        [*args, per_endpoint],
    ):
        sample = {"id": row["id"], "status": row["status"], "body": row["body"]}
        if row["error"]:
            sample["error"] = row["error"]
        out.setdefault(row["key"], []).append(sample)
    return out


def _contract(data: dict[str, Any]) -> dict[str, Any]:
    """The stage's per-endpoint state, as a reader wants the contract."""

    def schema_of(state: dict[str, Any] | None) -> dict[str, Any] | None:
        if not state or state.get("schema") is None:
            return None
        return {"schema": state["schema"], "samples": state.get("samples", 0)}

    request_state = data.get("request") or {}
    request = schema_of(request_state)
    if request is not None:
        request["media_type"] = request_state.get("media_type") or "application/json"
        if request_state.get("example") is not None:
            request["example"] = request_state["example"]
        # A body is required when every request the stage saw had one.
        request["required"] = data.get("request_bodies", 0) >= data.get("seen", 0) > 0
    responses: dict[str, Any] = {}
    for code, state in (data.get("responses") or {}).items():
        body = state.get("body") or {}
        entry: dict[str, Any] = {
            "count": state.get("count", 0),
            "content_types": state.get("content_types") or [],
        }
        if body.get("schema") is not None:
            entry.update(
                schema=body["schema"],
                samples=body.get("samples", 0),
                media_type=body.get("media_type") or "application/json",
            )
            if body.get("example") is not None:
                entry["example"] = body["example"]
        responses[code] = entry
    return {
        "path_params": schema_of(data.get("path_params")),
        "query": schema_of(data.get("query")),
        "request": request,
        "responses": responses,
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _entries(
    ctx: ReportContext,
    session: str,
    params: CatalogFilter,
    *,
    contracts: bool = True,
    error_samples: int = 0,
) -> list[dict[str, Any]]:
    """The catalog's endpoints with their figures: what every report here starts from."""
    rows = _endpoint_rows(ctx, session, params, contracts=contracts)
    if not rows:
        return []
    stored = _stored_figures(ctx, session, rows)
    if stored is not None:
        stats = {key: f.summary() for key, f in stored.items()}
        errors = (
            {key: f.error_samples(error_samples) for key, f in stored.items()}
            if error_samples > 0
            else {}
        )
    else:
        stats = _stats(ctx, session, params.service, rows)
        errors = _error_samples(ctx, session, params.service, error_samples)
    cleared = _since(ctx, session) is not None
    out = []
    for row in rows:
        data = row["data"]
        figures = stats.get(row["key"], {})
        calls = int(figures.get("calls") or 0)
        if not calls and cleared:
            continue  # not called since the live session was cleared
        entry: dict[str, Any] = {
            "key": row["key"],
            "service": row["service"],
            "method": row["method"],
            "path_template": row["path_template"],
            "hosts": figures.get("hosts") or ([row["host"]] if row["host"] else []),
            "origins": data.get("origins") or [],
            "calls": calls,
            "success_rate": _rate(int(figures.get("successes") or 0), calls),
            "error_rate": _rate(int(figures.get("server_errors") or 0), calls),
            "client_error_rate": _rate(int(figures.get("client_errors") or 0), calls),
            "p50_ms": _round(figures.get("p50")),
            "p95_ms": _round(figures.get("p95")),
            "timed_calls": int(figures.get("timed") or 0),
            "status_codes": figures.get("status_codes") or {},
            "first_seen": figures.get("first_seen"),
            "last_seen": figures.get("last_seen"),
            "last_success": figures.get("last_success"),
            "auth": figures.get("auth") or {a: None for a in data.get("auth") or []},
            "auth_names": data.get("auth_names") or {},
            "request_content_types": data.get("request_content_types") or [],
            "response_content_types": data.get("response_content_types") or [],
            "sample_ids": data.get("sample_ids") or [],
            "sample_request": data.get("sample_request"),
        }
        if data.get("merged_from"):
            entry["merged_from"] = data["merged_from"]
        if error_samples:
            entry["error_samples"] = errors.get(row["key"], [])
        if contracts:
            entry["contract"] = _contract(data)
        out.append(entry)
    return out


def _notes(ctx: ReportContext, session: str, endpoints: list[dict[str, Any]]) -> list[str]:
    if endpoints:
        return []
    rows = ctx.store.query("SELECT count(*) AS n FROM http WHERE session_id = ?", [session])
    if rows and rows[0]["n"]:
        return [
            f"session {session} has {rows[0]['n']} HTTP exchanges but no catalogued endpoints: "
            "the catalog stage was not in its pipeline, or every exchange was a page or a "
            "static asset (see the stage's include_pages and include_static)"
        ]
    return [f"session {session} has no HTTP exchanges yet"]


# ---- reports -------------------------------------------------------------------------------------


@report("catalog", CatalogParams)
def catalog(ctx: ReportContext, params: CatalogParams) -> dict[str, Any]:
    """API endpoints by service with calls, success rate, latency, statuses, auth and contracts."""
    session = ctx.session(params.session)
    endpoints = _entries(ctx, session, params, contracts=False, error_samples=params.error_samples)
    if params.method:
        endpoints = [e for e in endpoints if e["method"] == params.method.upper()]
    if params.path:
        endpoints = [e for e in endpoints if params.path in e["path_template"]]
    total = len(endpoints)
    endpoints = endpoints[: params.limit]
    if params.contracts and endpoints:
        # Contracts for the endpoints answered only: they are the bulk of the stored state.
        keys = [e["key"] for e in endpoints]
        marks = ", ".join("?" for _ in keys)
        stored = {
            r["key"]: r["data"]
            for r in ctx.store.query(
                f"SELECT key, data FROM endpoints WHERE session_id = ? AND key IN ({marks})",
                [session, *keys],
            )
        }
        for entry in endpoints:
            entry["contract"] = _contract(loads(stored.get(entry["key"]) or "{}"))
    return {
        "session": session,
        "count": total,
        "truncated": total > len(endpoints),
        "services": sorted({e["service"] for e in endpoints}, key=lambda s: (s != "app", s)),
        "endpoints": endpoints,
        "notes": _notes(ctx, session, endpoints),
    }


@report("service_map", CatalogFilter)
def service_map(ctx: ReportContext, params: CatalogFilter) -> dict[str, Any]:
    """The services the app talks to: hosts, endpoints, calls, error rate and p95 latency."""
    session = ctx.session(params.session)
    endpoints = ctx.store.query(
        "SELECT key, service FROM endpoints WHERE session_id = ?", [session]
    )
    counts: dict[str, int] = {}
    for endpoint in endpoints:
        counts[endpoint["service"]] = counts.get(endpoint["service"], 0) + 1
    if params.service is not None and params.service not in counts:
        known = ", ".join(sorted(counts)) or "none"
        raise ReportError(
            f"no service {params.service!r} in session {session}; its services: {known}"
        )
    if params.service is not None:
        endpoints = [e for e in endpoints if e["service"] == params.service]
    figures = _stored_figures(ctx, session, endpoints)
    services = (
        _services_of(figures, endpoints, counts)
        if figures is not None
        else _services_counted(ctx, session, params.service, counts)
    )
    services.sort(key=lambda s: (s["service"] != "app", -s["calls"], s["service"]))
    return {"session": session, "count": len(services), "services": services}


def _service_entry(
    service: str,
    endpoints: int,
    calls: int,
    *,
    server_errors: int,
    client_errors: int,
    quantiles: Sequence[float | None] | None,
    hosts: list[str],
    auth: list[str],
    last_seen: Any,
) -> dict[str, Any]:
    p50, p95 = quantiles or (None, None)
    return {
        "service": service,
        "hosts": hosts,
        "endpoints": endpoints,
        "calls": calls,
        "error_rate": _rate(server_errors, calls),
        "client_error_rate": _rate(client_errors, calls),
        "p50_ms": _round(p50),
        "p95_ms": _round(p95),
        "auth": auth,
        "last_seen": last_seen,
    }


def _services_of(
    figures: dict[str, Figures], endpoints: list[dict[str, Any]], counts: dict[str, int]
) -> list[dict[str, Any]]:
    """Each service's figures: its endpoints' merged."""
    by_service: dict[str, list[Figures]] = {}
    for endpoint in endpoints:
        by_service.setdefault(endpoint["service"], []).append(figures[endpoint["key"]])
    services = []
    for service, parts in by_service.items():
        total = merged(parts)
        if not total.calls:
            continue
        services.append(
            _service_entry(
                service,
                counts.get(service, 0),
                total.calls,
                server_errors=total.server_errors,
                client_errors=total.client_errors,
                quantiles=total.latency.quantiles((0.5, 0.95)),
                hosts=sorted(total.hosts),
                auth=sorted(total.auth),
                last_seen=total.last_seen,
            )
        )
    return services


def _services_counted(
    ctx: ReportContext, session: str, service: str | None, counts: dict[str, int]
) -> list[dict[str, Any]]:
    """Each service's figures counted from the session's exchanges."""
    with_sql, args = _with_tables(ctx, session, service)
    services = []
    for row in ctx.store.query(
        f"""{with_sql}
        SELECT e.service, count(*) AS calls,
               count(*) FILTER (WHERE h.status IS NULL OR h.status >= 500) AS server_errors,
               count(*) FILTER (WHERE h.status >= 400 AND h.status < 500) AS client_errors,
               quantile_cont(h.total, [0.5, 0.95]) AS quantiles,
               list(DISTINCT h.host ORDER BY h.host) AS hosts,
               list(DISTINCT coalesce(h.auth, 'none') ORDER BY coalesce(h.auth, 'none')) AS auth,
               max(h.ts) AS last_seen
        {_JOIN} GROUP BY e.service""",
        args,
    ):
        services.append(
            _service_entry(
                row["service"],
                counts.get(row["service"], 0),
                int(row["calls"]),
                server_errors=int(row["server_errors"]),
                client_errors=int(row["client_errors"]),
                quantiles=row["quantiles"],
                hosts=row["hosts"],
                auth=row["auth"],
                last_seen=row["last_seen"],
            )
        )
    return services


Health = Literal["failing", "degraded", "healthy"]


def _health(entry: dict[str, Any], params: HealthParams) -> tuple[Health, list[str]]:
    reasons = []
    errors = entry["error_rate"] or 0.0
    client = entry["client_error_rate"] or 0.0
    if entry["calls"] and entry["success_rate"] == 0:
        return "failing", ["no call succeeded"]
    if errors >= 0.5:
        return "failing", [f"{errors * 100:.0f}% server errors or no response"]
    if errors > params.error_rate:
        reasons.append(f"{errors * 100:.0f}% server errors or no response")
    if client >= 0.5:
        reasons.append(f"{client * 100:.0f}% client errors (4xx)")
    if entry["p95_ms"] is not None and entry["p95_ms"] > params.slow_ms:
        reasons.append(f"p95 {entry['p95_ms']:.0f} ms > {params.slow_ms:g} ms")
    return ("degraded" if reasons else "healthy"), reasons


@report("api_health", HealthParams)
def api_health(ctx: ReportContext, params: HealthParams) -> dict[str, Any]:
    """Each endpoint classed failing, degraded or healthy by its errors and latency."""
    session = ctx.session(params.session)
    order = {"failing": 0, "degraded": 1, "healthy": 2}
    endpoints = []
    for entry in _entries(ctx, session, params, contracts=False, error_samples=1):
        if entry["calls"] < params.min_calls:
            continue
        status, reasons = _health(entry, params)
        endpoints.append(
            {
                "key": entry["key"],
                "service": entry["service"],
                "method": entry["method"],
                "path_template": entry["path_template"],
                "health": status,
                "reasons": reasons,
                "calls": entry["calls"],
                "success_rate": entry["success_rate"],
                "error_rate": entry["error_rate"],
                "client_error_rate": entry["client_error_rate"],
                "p50_ms": entry["p50_ms"],
                "p95_ms": entry["p95_ms"],
                "status_codes": entry["status_codes"],
                "last_seen": entry["last_seen"],
                "last_success": entry["last_success"],
                "error_samples": entry["error_samples"],
            }
        )
    endpoints.sort(key=lambda e: (order[e["health"]], -(e["error_rate"] or 0), e["key"]))
    summary = {name: sum(1 for e in endpoints if e["health"] == name) for name in order}
    return {"session": session, "summary": summary, "endpoints": endpoints}


def _session_row(ctx: ReportContext, session: str) -> dict[str, Any]:
    rows = ctx.store.query(
        "SELECT id, target, started_ms, git_commit, git_branch FROM sessions WHERE id = ?",
        [session],
    )
    return rows[0] if rows else {"id": session}


def _title_and_version(ctx: ReportContext, session: str, title: str | None) -> tuple[str, str, str]:
    info = _session_row(ctx, session)
    target = info.get("target")
    version = (info.get("git_commit") or "")[:12] or f"session-{session[:8]}"
    intro = f"Observed by rsproxy in session `{session}`"
    if target:
        intro += f" in front of {target}"
    if info.get("git_branch"):
        intro += f", branch {info['git_branch']}"
    return title or "API observed by rsproxy", version, intro + "."


@report("openapi", OpenApiParams)
def openapi(ctx: ReportContext, params: OpenApiParams) -> dict[str, Any]:
    """An OpenAPI 3.1 document of the session's endpoints, with their inferred schemas."""
    session = ctx.session(params.session)
    endpoints = _entries(ctx, session, params)
    title, version, intro = _title_and_version(ctx, session, params.title)
    return build_openapi(endpoints, title=title, version=version, description=intro)


@report("api_docs", OpenApiParams)
def api_docs(ctx: ReportContext, params: OpenApiParams) -> dict[str, Any]:
    """Markdown documentation of the session's endpoints: figures, parameters, bodies, cURL."""
    session = ctx.session(params.session)
    endpoints = _entries(ctx, session, params, error_samples=2)
    title, _, intro = _title_and_version(ctx, session, params.title)
    return {
        "session": session,
        "endpoints": len(endpoints),
        "markdown": build_markdown(endpoints, title=title, intro=intro),
    }


def _template_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^{}]*\}", template)
    return re.compile("[^/]+".join(re.escape(p) for p in parts) + r"\Z")


def find_endpoint(endpoints: list[dict[str, Any]], wanted: str) -> dict[str, Any]:
    """The one endpoint ``wanted`` names (see ``CurlParams.endpoint``), or a ReportError."""
    wanted = wanted.strip()
    exact = [e for e in endpoints if e["key"] == wanted]
    if exact:
        return exact[0]
    method, _, rest = wanted.partition(" ")
    if method.upper() in _HTTP_METHODS and rest.strip():
        method, path = method.upper(), rest.strip()
    else:
        method, path = "", wanted
    path = path.split("?", 1)[0]
    candidates = [e for e in endpoints if not method or e["method"] == method]
    matches = [e for e in candidates if e["path_template"] == path]
    if not matches:
        matches = [e for e in candidates if _template_pattern(e["path_template"]).match(path)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        listed = "; ".join(e["key"] for e in matches[:10])
        raise ReportError(
            f"{wanted!r} matches {len(matches)} endpoints: {listed}. Name one by its key, "
            "or add the method (`GET /path`) or the service"
        )
    known = "; ".join(e["key"] for e in endpoints[:10]) or "none"
    raise ReportError(
        f"no endpoint matches {wanted!r}. Give a key, `METHOD /template` or a path; "
        f"endpoints include: {known}"
    )


@report("curl", CurlParams)
def curl(ctx: ReportContext, params: CurlParams) -> dict[str, Any]:
    """A cURL command replaying an endpoint's sample request, secrets redacted."""
    session = ctx.session(params.session)
    endpoint = find_endpoint(_entries(ctx, session, params, contracts=False), params.endpoint)
    sample = endpoint.get("sample_request")
    if not sample:
        raise ReportError(f"endpoint {endpoint['key']} has no sample request yet")
    note = "values shown as [REDACTED] were removed before storage; put your own in"
    if sample.get("body_omitted"):
        note += f"; the request body was left out ({sample['body_omitted']})"
    return {
        "session": session,
        "endpoint": endpoint["key"],
        "event_id": sample.get("id"),
        "status": sample.get("status"),
        "command": curl_command(sample),
        "note": note,
    }
