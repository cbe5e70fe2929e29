"""Pipeline ingest: events per second through the default pipeline into DuckDB, on one core.

The events are a live session's mix, generated up front so the figure is the pipeline's alone:
40 % `http` (300 endpoint templates over a few services, ids of several kinds, JSON bodies of a
few shapes, 2 % errors, auth headers to redact), 20 % `console`, 10 % `resource`, 10 % `render`,
5 % `vital`, 5 % `state`, 5 % `sql`, 5 % `page_view`. They run through `Pipeline.run` in batches
of 5,000 (the worker's batch size) in this one thread, stages and store writes included, with
the garbage collector set up as the daemon sets it (``rsproxy.runtime.tune_gc``). The clock stops
after a final checkpoint, when every event is compressed in the file: DuckDB's checkpoints are
part of storing, and a run that left them to the close would not be sustainable. 400,000 events
fill DuckDB's write-ahead log several times over, so the run includes its checkpoints.

Two pipelines, each on a fresh store, alternating over the rounds so drift hits both alike:

* default  — pipelines/default.yaml, every default stage (budget, DESIGN §10: 100,000 events/s);
* baseline — `persist` alone: what storing costs with no analysis at all.

A third figure is the floor under both: the rows the default pipeline stored, already built as
Arrow tables, inserted again batch by batch into a fresh store (one transaction per batch, the
final checkpoint included). That is DuckDB's own share of storing an event on this machine,
which no Python code of ours can go under; what it leaves of the 10 µs an event may take at
100,000 events/s is all the analysis and row building can have.

    python bench/pipeline_ingest.py [--events 400000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pyarrow as pa

from rsproxy.events import Event
from rsproxy.pipeline.engine import Pipeline
from rsproxy.pipeline.spec import default_pipeline_path, load_spec, parse_spec
from rsproxy.pipeline.stage import StageContext
from rsproxy.runtime import tune_gc
from rsproxy.store import TYPED_TABLES, SessionInfo, Store
from rsproxy.testing import make_http_event

BUDGET = 100_000
BATCH = 5_000
SESSION = "bench-session"
EVENT_TABLES = (*(t.name for t in TYPED_TABLES), "generic_events")  # where events are stored

RESOURCES = ["users", "orders", "products", "invoices", "teams", "projects"]
HOSTS = ["127.0.0.1", "127.0.0.1", "127.0.0.1", "api.stripe.com", "abc.supabase.co"]


def _body(rng: random.Random, rid: int) -> str:
    shape = rng.randrange(3)
    item = {"id": rid, "name": f"n{rid}", "active": rng.random() < 0.5}
    if shape == 1:
        item["email"] = None
    elif shape == 2:
        item["tags"] = ["a", "b"]
        item["score"] = rng.random()
    return json.dumps(item)


def _http(rng: random.Random) -> Event:
    resource = rng.choice(RESOURCES)
    t = rng.randrange(50)
    kind = t % 4
    rid = rng.randrange(10_000)
    ident = {0: str(rid), 1: str(uuid.UUID(int=rng.getrandbits(128))), 2: f"{rid:024x}"}.get(
        kind, "me"
    )
    path = f"/api/v{t % 3}/{resource}/{ident}/{['items', 'history', 'settings'][t % 3]}"
    status = 500 if rng.random() < 0.02 else 200
    total = rng.uniform(1, 80)
    return make_http_event(
        host=rng.choice(HOSTS),
        path=path,
        url=f"http://127.0.0.1:3000{path}",
        status=status,
        request_headers=[["authorization", "Bearer abc.def.ghi"], ["accept", "application/json"]],
        response_body=_body(rng, rid),
        auth="bearer",
        timings={"ttfb_ms": total / 2, "total_ms": total},
    )


def _probe(rng: random.Random, r: float) -> Event:
    if r < 0.60:
        level = "error" if rng.random() < 0.05 else "log"
        data = {"level": level, "message": f"message {rng.randrange(200)}", "args": ["x", 1]}
        return Event("console", data, source="probe", page_id="p1")
    if r < 0.70:
        data = {
            "initiator": "fetch",
            "method": "GET",
            "url": "http://127.0.0.1:3000/api/x",
            "status": 200,
            "duration_ms": rng.uniform(1, 50),
        }
        return Event("resource", data, source="probe", page_id="p1")
    if r < 0.80:
        data = {
            "component": f"C{rng.randrange(80)}",
            "renders": rng.randrange(1, 4),
            "actual_duration_ms": rng.uniform(0.1, 3),
            "reasons": {"props": 1},
            "changed_props": ["a"],
            "identical_props": 0,
            "commit_components": 5,
        }
        return Event("render", data, source="probe", page_id="p1")
    if r < 0.85:
        data = {
            "name": rng.choice(["LCP", "CLS", "INP", "FCP", "TTFB"]),
            "value": rng.uniform(0, 900),
        }
        return Event("vital", data, source="probe", page_id="p1")
    if r < 0.90:
        data = {
            "library": "redux",
            "store": "cart",
            "action": "cart/add",
            "diff": {"count": {"before": 1, "after": 2}},
        }
        return Event("state", data, source="probe", page_id="p1")
    if r < 0.95:
        n = rng.randrange(1000)
        data = {
            "text": f"SELECT id, name FROM t{n % 40} WHERE id = {n} AND org = 'o{n % 7}'",
            "duration_ms": rng.uniform(0.2, 20),
        }
        return Event("sql", data, source="tap")
    return Event(
        "page_view", {"url": "http://127.0.0.1:3000/", "navigation": "push"}, source="probe"
    )


def make_events(n: int, seed: int = 1) -> list[Event]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        r = rng.random()
        event = _http(rng) if r < 0.40 else _probe(rng, (r - 0.40) / 0.60)
        event.session_id = SESSION
        out.append(event)
    return out


def run(
    spec_text: str | None, events: list[Event], stored_rows: dict[str, pa.Table] | None = None
) -> float:
    """Events per second through the pipeline, on a fresh store. With ``stored_rows``, the
    rows of each event table are put there as Arrow tables once the run is timed."""
    spec = (
        load_spec(default_pipeline_path()) if spec_text is None else parse_spec(spec_text, "bench")
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.duckdb")
        store.start_session(
            SessionInfo(id=SESSION, project="bench", source="proxy", target=None, started_ms=0.0)
        )
        pipeline = Pipeline(spec, StageContext(project="bench", session_id=SESSION, store=store))
        # Fresh copies: stages change payloads in place (redaction, templates).
        batches = [
            [
                Event(e.kind, dict(e.data), e.source, e.ts, e.id, e.page_id, SESSION, "bench")
                for e in events[i : i + BATCH]
            ]
            for i in range(0, len(events), BATCH)
        ]
        start = time.perf_counter()
        for batch in batches:
            pipeline.run(batch)
        pipeline.flush()
        store.checkpoint()
        elapsed = time.perf_counter() - start
        pipeline.close()
        # Detectors add their own ``issue`` events; every input event must still be stored.
        stored = store.query("SELECT count(*) AS n FROM events WHERE kind <> 'issue'")[0]["n"]
        if stored_rows is not None:
            for table in EVENT_TABLES:
                stored_rows[table] = store.cursor().sql(f"SELECT * FROM {table}").to_arrow_table()
        store.close()
    if stored != len(events):
        raise SystemExit(f"the pipeline stored {stored} of {len(events)} events")
    return len(events) / elapsed


def store_alone(stored_rows: dict[str, pa.Table], n_events: int) -> float:
    """Rows per second DuckDB takes already-built rows at, in the pipeline's batches."""
    n_batches = -(-n_events // BATCH)

    def part(rows: pa.Table, b: int) -> pa.Table:
        start, end = len(rows) * b // n_batches, len(rows) * (b + 1) // n_batches
        return rows.slice(start, end - start)

    batches = [[(t, part(rows, b)) for t, rows in stored_rows.items()] for b in range(n_batches)]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "floor.duckdb")
        cursor = store.cursor()
        start = time.perf_counter()
        for batch in batches:
            cursor.execute("BEGIN TRANSACTION")
            for table, rows in batch:
                cursor.from_arrow(rows).insert_into(table)
            cursor.execute("COMMIT")
        store.checkpoint()
        elapsed = time.perf_counter() - start
        store.close()
    return sum(len(rows) for rows in stored_rows.values()) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    events = make_events(args.events)
    tune_gc()  # as the daemon does once it has started: the pre-built events are frozen too
    stages = load_spec(default_pipeline_path()).stage_types()
    persist_only = "version: 1\nstages:\n  - type: persist\n"
    default_rates, base_rates, floor_rates = [], [], []
    for _ in range(args.rounds):
        stored_rows: dict[str, pa.Table] = {}
        default_rates.append(run(None, events, stored_rows))
        base_rates.append(run(persist_only, events))
        floor_rates.append(store_alone(stored_rows, args.events))
    default_rate = statistics.median(default_rates)
    base_rate = statistics.median(base_rates)
    floor_rate = statistics.median(floor_rates)
    floor_us = 1e6 / floor_rate
    verdict = "within budget" if default_rate >= BUDGET else "UNDER BUDGET"
    print(f"pipeline ingest, {args.events:,} events, median of {args.rounds} rounds, one thread")
    print(
        f"  floor (DuckDB alone, rows built)  {floor_rate:10,.0f} events/s "
        f"({floor_us:.1f} µs an event of the {1e6 / BUDGET:.0f} µs the budget allows)"
    )
    print(f"  baseline (persist only)           {base_rate:10,.0f} events/s")
    print(
        f"  default ({' → '.join(stages)})  {default_rate:10,.0f} events/s "
        f"({default_rate / base_rate:.2f}x baseline; budget {BUDGET:,}) -> {verdict}"
    )
    print(
        json.dumps(
            {
                "bench": "pipeline_ingest",
                "events": args.events,
                "stages": stages,
                "default_eps": default_rate,
                "persist_only_eps": base_rate,
                "duckdb_floor_eps": floor_rate,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
