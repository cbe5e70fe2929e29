"""MCP query latency: the main read tools' reports over a store of 1,000,000 events.

A project store is filled through the default pipeline (redact, normalize, detect, catalog,
persist: so the ``endpoints`` and ``issues`` tables are the stages' own) with five sessions of
one synthetic app, the latest holding most of the events, spread over the last two hours so
``since_seconds`` windows mean something. The mix: 40 % ``http`` (app endpoints over a dozen
resources with numeric, uuid and slug ids, Stripe, Supabase and GitHub calls, assets and Vite
HMR traffic, 2 % 4xx, 1 % 5xx, some failed), 18 % ``console``, 2 % uncaught ``error``, 8 %
``resource``, 10 % ``render``, 6 % ``state``, 4 % ``vital`` and the rest page views, long
tasks, DOM mutations, tracking and SQL.

Three paths are timed, each report or tool cycling through varied parameters (sessions by
reference, ``since_seconds``, filters, limits, a page), ``--reps`` calls each:

* a reader opening the store read-only for the call and closing it after (rsproxy/client.py
  ``StoreReader``): what the first call after a pause costs;
* a running daemon: the store open and warm, reports on a cursor of it, as its API answers;
* the real ``rsproxy mcp`` over stdio with the ``mcp`` client and no daemon, protocol included,
  calls in a burst (the server keeps the store open between close calls; ``--no-mcp`` skips it).

The figure is the p95 per tool and over all calls (budget, DESIGN §10: 100 ms), printed with the
ratio to a baseline measured in the same run: a bare ``SELECT count(*)`` of the latest session's
events by a reader that opens the store for it. The verdict is the daemon's and the MCP
server's, what an agent meets once it is asking; the first-call figure is printed beside them.

    python bench/mcp_query.py [--events 1000000] [--sessions 5] [--reps 40] [--no-mcp]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rsproxy import reports
from rsproxy.client import StoreReader
from rsproxy.events import Event, new_id
from rsproxy.pipeline.engine import Pipeline
from rsproxy.pipeline.spec import default_pipeline_path, load_spec
from rsproxy.pipeline.stage import StageContext
from rsproxy.project import Project
from rsproxy.runtime import tune_gc
from rsproxy.store import SessionInfo, Store

BUDGET_MS = 100.0
PROJECT = "bench"
BATCH = 5_000
SPAN_MS = 2 * 3600 * 1000.0  # each session's events spread over two hours

RESOURCES = [
    "users",
    "orders",
    "products",
    "invoices",
    "teams",
    "projects",
    "comments",
    "carts",
    "sessions",
    "search",
    "reports",
    "files",
]
THIRD_PARTY = [
    ("api.stripe.com", 443, "https", ["/v1/customers/{}", "/v1/payment_intents/{}", "/v1/charges"]),
    ("abc.supabase.co", 443, "https", ["/rest/v1/profiles", "/rest/v1/todos", "/auth/v1/user"]),
    ("api.github.com", 443, "https", ["/repos/acme/web/issues/{}", "/user", "/orgs/acme/repos"]),
]
ASSETS = ["/assets/index-{}.js", "/assets/index-{}.css", "/logo.svg", "/fonts/inter-{}.woff2"]
HMR = ["/@vite/client", "/@react-refresh", "/src/App.tsx?t={}", "/node_modules/.vite/deps/react.js"]
MESSAGES = [
    "fetch failed: timeout after 5000ms",
    "Warning: Each child in a list should have a unique key prop",
    "user {} logged in",
    "cart updated ({} items)",
    "TypeError: Cannot read properties of undefined (reading 'id')",
    "websocket reconnecting, attempt {}",
    "render took {} ms",
]
STORES = [("redux", "cart", "cart/add"), ("redux", "cart", "cart/remove"), ("zustand", "ui", "set")]


def _ident(rng: random.Random, kind: int) -> str:
    rid = rng.randrange(100_000)
    if kind == 0:
        return str(rid)
    if kind == 1:
        return str(uuid.UUID(int=rng.getrandbits(128)))
    return f"item-{rid}-slug"


def _http(rng: random.Random, page_id: str) -> dict[str, Any]:
    r = rng.random()
    method, status, ctype = "GET", 200, "application/json"
    host, port, scheme = "127.0.0.1", 3000, "http"
    if r < 0.70:
        resource = rng.choice(RESOURCES)
        t = rng.randrange(30)
        path = f"/api/v{t % 2 + 1}/{resource}/{_ident(rng, t % 3)}"
        if t % 5:
            path += ["/items", "/history", "/settings", "/members"][t % 4]
        method = ["GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH"][t % 7]
    elif r < 0.80:
        host, port, scheme, paths = rng.choice(THIRD_PARTY)
        path = rng.choice(paths).format(f"x{rng.randrange(5000)}")
        method = "POST" if "charges" in path or "todos" in path else "GET"
    elif r < 0.92:
        path = rng.choice(ASSETS).format(rng.randrange(20))
        ctype = "text/css" if path.endswith(".css") else "application/javascript"
    else:
        path = rng.choice(HMR).format(rng.randrange(10**6))
        ctype = "application/javascript"
    q = rng.random()
    error = None
    if q < 0.01:
        status = rng.choice([500, 502, 503])
    elif q < 0.03:
        status = rng.choice([400, 401, 404, 409, 422])
    elif q < 0.033:
        status, error = None, "connection refused"
    elif method == "POST":
        status = 201
    total = rng.lognormvariate(3.0, 0.8) * (8 if "search" in path else 1)
    body = json.dumps({"id": rng.randrange(10_000), "name": "n", "ok": status == 200})
    query = f"page={rng.randrange(10)}" if rng.random() < 0.2 else ""
    return {
        "method": method,
        "url": f"{scheme}://{host}:{port}{path}" + (f"?{query}" if query else ""),
        "scheme": scheme,
        "host": host,
        "port": port,
        "path": path,
        "query": query,
        "http_version": "HTTP/1.1",
        "status": status,
        "reason": None if status is None else "OK",
        "error": error,
        "request_headers": [["authorization", "Bearer abc.def.ghi"], ["accept", "*/*"]],
        "response_headers": [["content-type", ctype]],
        "request_content_type": "application/json" if method in ("POST", "PUT") else None,
        "response_content_type": ctype,
        "request_size": 40 if method in ("POST", "PUT") else 0,
        "response_size": len(body),
        "request_body": '{"qty": 1}' if method in ("POST", "PUT") else None,
        "response_body": body if ctype == "application/json" else None,
        "response_body_encoding": "text",
        "response_body_truncated": False,
        "streamed": False,
        "websocket": False,
        "auth": "bearer" if host == "127.0.0.1" else "api_key",
        "timings": {"ttfb_ms": total * 0.6, "total_ms": total},
        "started_ms": 0.0,
    }


def _event(rng: random.Random, page_id: str) -> Event:
    r = rng.random()
    if r < 0.40:
        return Event("http", _http(rng, page_id), source="proxy", page_id=page_id)
    if r < 0.58:
        level = rng.choices(["log", "info", "warn", "error", "debug"], [60, 15, 12, 8, 5])[0]
        message = rng.choice(MESSAGES).format(rng.randrange(100))
        data: dict[str, Any] = {"level": level, "type": "console", "message": message}
        return Event("console", data, source="probe", page_id=page_id)
    if r < 0.60:
        data = {
            "type": "uncaught",
            "message": "TypeError: Cannot read properties of null (reading 'map')",
            "stack": "TypeError: ...\n    at List (App.tsx:42:17)\n    at renderWithHooks",
            "source": "http://127.0.0.1:3000/src/App.tsx",
            "line": 42,
            "column": 17,
        }
        return Event("error", data, source="probe", page_id=page_id)
    if r < 0.68:
        data = {
            "initiator": "fetch",
            "method": "GET",
            "url": f"http://127.0.0.1:3000/api/v1/{rng.choice(RESOURCES)}",
            "status": 200,
            "duration_ms": rng.uniform(1, 80),
        }
        return Event("resource", data, source="probe", page_id=page_id)
    if r < 0.78:
        data = {
            "component": f"C{rng.randrange(120)}",
            "renders": rng.randrange(1, 6),
            "actual_duration_ms": rng.uniform(0.1, 8),
            "reasons": {"props": 1},
            "changed_props": ["items"],
            "identical_props": rng.randrange(2),
            "commit_components": rng.randrange(1, 40),
        }
        return Event("render", data, source="probe", page_id=page_id)
    if r < 0.84:
        library, store, action = rng.choice(STORES)
        data = {
            "library": library,
            "store": store,
            "action": action,
            "diff": {"count": {"before": 1, "after": 2}},
        }
        return Event("state", data, source="probe", page_id=page_id)
    if r < 0.88:
        name = rng.choice(["LCP", "CLS", "INP", "FCP", "TTFB"])
        value = rng.uniform(0, 0.3) if name == "CLS" else rng.uniform(50, 5000)
        return Event("vital", {"name": name, "value": value}, source="probe", page_id=page_id)
    if r < 0.91:
        data = {"duration_ms": rng.uniform(50, 400), "name": "self"}
        return Event("long_task", data, source="probe", page_id=page_id)
    if r < 0.94:
        data = {"added_nodes": rng.randrange(1, 3000), "target": "div#root"}
        return Event("dom_mutation", data, source="probe", page_id=page_id)
    if r < 0.96:
        data = {"api": "gtag", "event": "add_to_cart", "params": {"value": 9.99}}
        return Event("tracking", data, source="probe", page_id=page_id)
    if r < 0.98:
        n = rng.randrange(1000)
        data = {
            "text": f"SELECT * FROM t{n % 40} WHERE id = {n}",
            "duration_ms": rng.uniform(0, 30),
        }
        return Event("sql", data, source="tap")
    return Event(
        "page_view",
        {"url": f"http://127.0.0.1:3000/{rng.choice(RESOURCES)}", "navigation": "push"},
        source="probe",
        page_id=page_id,
    )


def _session_events(
    session: str, n: int, start_ms: float, rng: random.Random
) -> Iterator[list[Event]]:
    """``n`` events spread evenly over SPAN_MS from ``start_ms``, in pipeline batches."""
    step = SPAN_MS / max(n, 1)
    page_id = new_id()
    batch: list[Event] = []
    for i in range(n):
        if rng.random() < 0.002:
            page_id = new_id()
        event = _event(rng, page_id)
        event.ts = start_ms + i * step
        # Ids sort by time (rsproxy/events.py); keep that true for back-dated events.
        event.id = new_id(int(event.ts))
        event.session_id, event.project = session, PROJECT
        if event.kind == "http":
            event.data["started_ms"] = event.ts
        batch.append(event)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def fill(path: Path, total: int, sessions: int, rng: random.Random) -> list[str]:
    """The store at ``path`` with ``total`` events over ``sessions`` sessions, oldest first;
    the latest holds half of them. Returns the session ids, newest first."""
    spec = load_spec(default_pipeline_path())
    store = Store.open(path)
    now = time.time() * 1000
    older = total // 2 // max(sessions - 1, 1) if sessions > 1 else 0
    sizes = [older] * (sessions - 1) + [total - older * (sessions - 1)]
    ids = []
    for n, size in enumerate(sizes):
        sid = uuid.UUID(int=rng.getrandbits(128)).hex
        start = now - SPAN_MS - (sessions - 1 - n) * 86_400_000.0  # one a day, latest ending now
        store.start_session(
            SessionInfo(
                id=sid,
                project=PROJECT,
                source="proxy",
                target="http://127.0.0.1:3000",
                started_ms=start,
                git_commit=f"{rng.getrandbits(160):040x}",
                git_branch="main",
                git_dirty=False,
            )
        )
        pipeline = Pipeline(spec, StageContext(project=PROJECT, session_id=sid, store=store))
        for batch in _session_events(sid, size, start, rng):
            pipeline.run(batch)
        pipeline.flush()
        pipeline.close()
        store.end_session(sid, start + SPAN_MS)
        ids.append(sid)
    store.checkpoint()
    store.close()
    return ids[::-1]


def cases(store: Store, sessions: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Varied parameters per report, the way an agent calls the tools."""
    latest = sessions[0]
    older = sessions[1] if len(sessions) > 1 else latest
    page = store.query(
        "SELECT id FROM events WHERE session_id = ? ORDER BY ts DESC, id DESC LIMIT 1 OFFSET 50",
        [latest],
    )
    before = page[0]["id"] if page else None
    return {
        "session_info": [{}, {"session": "latest-1"}, {"session": older[:8]}],
        "timeline": [
            {},
            {"since_seconds": 60},
            {"since_seconds": 600, "kinds": ["http", "console"]},
            {"kinds": ["error", "issue"], "limit": 20},
            {"limit": 200, "before": before},
            {"session": "latest-1", "limit": 100},
        ],
        "network_requests": [
            {},
            {"status": "5xx"},
            {"status": "failed"},
            {"method": "POST", "since_seconds": 300},
            {"path_contains": "/orders", "limit": 100},
            {"include_static": True, "limit": 200},
            {"include_bodies": True, "since_seconds": 60},
            {"service": "app", "limit": 20},
            {"session": "latest-2", "status": "404"},
        ],
        "console_messages": [
            {},
            {"errors_only": True},
            {"level": "warn", "since_seconds": 300},
            {"search": "timeout", "limit": 100},
            {"include_stacks": False, "limit": 200},
            {"session": "latest-1", "errors_only": True},
        ],
        "performance": [{}, {"session": "latest-1"}],
        "render_summary": [{}, {"limit": 10}, {"session": "latest-1"}],
        "state_changes": [{}, {"store": "cart"}, {"since_seconds": 600, "limit": 100}],
        "issues": [{}, {"severity": "high"}, {"evidence_events": 10}, {"session": "latest-1"}],
        # As get_api_catalog and get_api_health send them (rsproxy/mcp_server.py).
        "catalog": [
            {"contracts": False, "error_samples": 1, "limit": 50},
            {"contracts": True, "error_samples": 1, "limit": 50, "path": "/api/"},
            {"service": "app", "contracts": False, "error_samples": 1, "limit": 50},
            {"contracts": False, "error_samples": 1, "limit": 500, "session": "latest-1"},
        ],
        "api_health": [{}, {"slow_ms": 200}, {"session": "latest-1"}, {"service": "app"}],
        "service_map": [{}, {"session": "latest-1"}],
        "query": [
            {"sql": "SELECT kind, count(*) AS n FROM events GROUP BY kind"},
            {
                "sql": f"SELECT status, count(*) AS n FROM http WHERE session_id = '{latest}' "
                "GROUP BY status ORDER BY n DESC"
            },
            {"sql": "SELECT id, ts, message FROM console WHERE level = 'error' ORDER BY ts DESC"},
        ],
    }


# The MCP tool each report answers (rsproxy/mcp_server.py, DESIGN §8).
TOOLS = {
    "session_info": "get_session_info",
    "timeline": "get_event_timeline",
    "network_requests": "get_network_requests",
    "console_messages": "get_console_messages",
    "performance": "get_performance_metrics",
    "render_summary": "get_render_summary",
    "state_changes": "get_state_changes",
    "issues": "detect_issues",
    "catalog": "get_api_catalog",
    "api_health": "get_api_health",
    "service_map": "get_service_map",
    "query": "query_events",
}


# Each MCP tool with arguments an agent sends, for the stdio part.
TOOL_CALLS: dict[str, list[dict[str, Any]]] = {
    "get_session_info": [{}, {"session": "latest-1"}],
    "get_event_timeline": [{}, {"since_seconds": 600, "kinds": ["http", "console"]}],
    "get_network_requests": [{}, {"status": "5xx"}, {"path_contains": "/orders"}],
    "get_console_messages": [{"errors_only": True}, {"since_seconds": 300}],
    "get_performance_metrics": [{}],
    "get_render_summary": [{}, {"limit": 10}],
    "get_state_changes": [{}, {"store": "cart"}],
    "detect_issues": [{}, {"severity": "high"}],
    "get_network_issues": [{}],
    "get_api_catalog": [{}, {"service": "app"}, {"include_contracts": True, "limit": 10}],
    "get_api_health": [{}, {"slow_ms": 200}],
    "get_service_map": [{}],
    "query_events": [{"sql": "SELECT kind, count(*) AS n FROM events GROUP BY kind"}],
}


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def timed(fn: Callable[[], Any], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def through_reader(project: Project, name: str, params: dict[str, Any]) -> Any:
    """One call as ``rsproxy mcp`` makes it with no daemon: open read-only, report, close."""
    reader = StoreReader(project)
    try:
        return reader.report(name, **params)
    finally:
        reader.close()


async def _mcp_calls(home: Path, calls: list[tuple[str, dict[str, Any]]]) -> list[float]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "rsproxy", "mcp", "--project", PROJECT],
        env={**os.environ, "RSPROXY_HOME": str(home)},
    )
    times = []
    with open(os.devnull, "w") as quiet:  # the server logs every request to stderr
        async with (
            stdio_client(params, errlog=quiet) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            for name, args in calls:
                start = time.perf_counter()
                result = await session.call_tool(name, args)
                times.append((time.perf_counter() - start) * 1000)
                if result.isError:
                    text = "".join(c.text for c in result.content if hasattr(c, "text"))
                    raise SystemExit(f"{name}({args}) failed: {text}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--reps", type=int, default=40, help="calls per report")
    parser.add_argument("--no-mcp", action="store_true", help="skip the stdio server calls")
    parser.add_argument(
        "--home",
        type=Path,
        help="an RSPROXY_HOME to keep the filled store in, and to reuse it from on later runs",
    )
    args = parser.parse_args()
    rng = random.Random(11)
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home.resolve() if args.home else Path(tmp)
        os.environ["RSPROXY_HOME"] = str(home)
        project = Project.resolve(PROJECT)
        start = time.perf_counter()
        if not project.store_path.exists():
            fill(project.store_path, args.events, args.sessions, rng)
        fill_s = time.perf_counter() - start
        reader = StoreReader(project)
        sessions = [
            r["id"] for r in reader.store.query("SELECT id FROM sessions ORDER BY started_ms DESC")
        ]
        stored = reader.store.query("SELECT count(*) AS n FROM events")[0]["n"]
        params_by_report = cases(reader.store, sessions)
        reader.close()

        def baseline() -> None:
            r = StoreReader(project)
            try:
                r.store.query(
                    "SELECT count(*) AS n FROM events WHERE session_id = ?", [sessions[0]]
                )
            finally:
                r.close()

        reports.load()
        timed(baseline, 3)  # warm the OS file cache and the imports
        base = timed(baseline, args.reps)
        results: dict[str, list[float]] = {}
        for name, variants in params_by_report.items():
            through_reader(project, name, variants[0])  # warm: first read of these columns
            results[name] = [
                *timed_variants(project, name, variants, args.reps),
            ]
        # The live path: the daemon holds the store open (its writer's connection, one DuckDB
        # thread) and runs each report on a cursor of it, warm, its collector set up as the
        # daemon sets it.
        tune_gc()
        warm: dict[str, list[float]] = {}
        daemon_store = Store.open(project.store_path)
        ctx = reports.ReportContext(daemon_store, current_session=sessions[0])
        for name, variants in params_by_report.items():
            reports.run(name, ctx, dict(variants[0]))
            warm[name] = timed_calls(
                lambda p, n=name: reports.run(n, ctx, dict(p)), variants, args.reps
            )
        daemon_store.close()
        mcp_times: dict[str, list[float]] = {}
        if not args.no_mcp:
            # Round-robin over the tools, as an agent's burst of questions comes.
            calls = [
                (tool, variants[rep % len(variants)])
                for rep in range(args.reps)
                for tool, variants in TOOL_CALLS.items()
            ]
            times = asyncio.run(_mcp_calls(home, calls))
            for (name, _), took in zip(calls, times, strict=True):
                mcp_times.setdefault(name, []).append(took)
    base_p95 = _p95(base)
    every = [t for ts in results.values() for t in ts]
    overall = _p95(every)
    print(
        f"MCP read tools over {stored:,} stored events in {len(sessions)} sessions "
        f"(filled in {fill_s:.0f} s), {args.reps} calls per report"
    )
    print("  a reader opening the store for each call (the first call after a pause):")
    print(
        f"  baseline: SELECT count(*) of the latest session  p50 {statistics.median(base):7.1f} ms"
        f"  p95 {base_p95:7.1f} ms"
    )
    for name, ts in results.items():
        p95 = _p95(ts)
        flag = "" if p95 <= BUDGET_MS else "  OVER"
        print(
            f"  {TOOLS[name]:<24} ({name:<16}) p50 {statistics.median(ts):7.1f} ms  "
            f"p95 {p95:7.1f} ms  ({p95 / base_p95:5.1f}x){flag}"
        )
    print(
        f"  all reports, {len(every)} calls                 p50 {statistics.median(every):7.1f} ms"
        f"  p95 {overall:7.1f} ms ({overall / base_p95:.1f}x baseline)"
    )
    warm_every = [t for ts in warm.values() for t in ts]
    warm_over = [name for name, ts in warm.items() if _p95(ts) > BUDGET_MS]
    warm_verdict = "within budget" if not warm_over else f"OVER BUDGET ({', '.join(warm_over)})"
    print("  through a running daemon (the store open and warm, as its API answers):")
    for name, ts in warm.items():
        p95 = _p95(ts)
        flag = "" if p95 <= BUDGET_MS else "  OVER"
        print(
            f"  {TOOLS[name]:<24} ({name:<16}) p50 {statistics.median(ts):7.1f} ms  "
            f"p95 {p95:7.1f} ms{flag}"
        )
    warm_p95 = _p95(warm_every)
    print(
        f"  all reports, {len(warm_every)} calls                 p50 "
        f"{statistics.median(warm_every):7.1f} ms  p95 {warm_p95:7.1f} ms "
        f"({warm_p95 / base_p95:.1f}x the cold baseline; budget {BUDGET_MS:g} ms) -> {warm_verdict}"
    )
    verdicts = {"daemon": warm_verdict}
    if mcp_times:
        print("  through `rsproxy mcp` over stdio with no daemon (protocol included; the store")
        print("  stays open between calls that come close together):")
        for name, ts in mcp_times.items():
            p95 = _p95(ts)
            flag = "" if p95 <= BUDGET_MS else "  OVER"
            print(f"  {name:<24} p50 {statistics.median(ts):7.1f} ms  p95 {p95:7.1f} ms{flag}")
        mcp_every = [t for ts in mcp_times.values() for t in ts]
        mcp_over = [name for name, ts in mcp_times.items() if _p95(ts) > BUDGET_MS]
        mcp_verdict = "within budget" if not mcp_over else f"OVER BUDGET ({', '.join(mcp_over)})"
        verdicts["mcp_stdio"] = mcp_verdict
        print(
            f"  all tools, {len(mcp_every)} calls                  p50 "
            f"{statistics.median(mcp_every):7.1f} ms  p95 {_p95(mcp_every):7.1f} ms -> {mcp_verdict}"
        )
    print(
        json.dumps(
            {
                "bench": "mcp_query",
                "events": stored,
                "sessions": len(sessions),
                "reps": args.reps,
                "baseline_p95_ms": base_p95,
                "p95_ms": overall,
                "p95_ms_by_report": {name: _p95(ts) for name, ts in results.items()},
                "daemon_p95_ms": warm_p95,
                "daemon_p95_ms_by_report": {name: _p95(ts) for name, ts in warm.items()},
                "mcp_stdio_p95_ms": {name: _p95(ts) for name, ts in mcp_times.items()},
                "verdicts": verdicts,
            }
        )
    )
    return 0


def timed_calls(
    call: Callable[[dict[str, Any]], Any], variants: list[dict[str, Any]], reps: int
) -> list[float]:
    """``reps`` calls, cycling through the parameter variants."""
    out = []
    for i in range(reps):
        params = variants[i % len(variants)]
        start = time.perf_counter()
        call(params)
        out.append((time.perf_counter() - start) * 1000)
    return out


def timed_variants(
    project: Project, name: str, variants: list[dict[str, Any]], reps: int
) -> list[float]:
    """``reps`` cold calls of report ``name`` (store opened and closed each time)."""
    return timed_calls(lambda params: through_reader(project, name, params), variants, reps)


if __name__ == "__main__":
    sys.exit(main())
