"""`rsproxy sessions diff` over two sessions of 100,000 events each.

A store is filled with two sessions of the same synthetic app (60 % http over 200 endpoint
templates, 15 % console, 10 % renders of 50 components, 5 % web vitals, 5 % SQL over 100
fingerprints, 5 % page views), the second one slower on some endpoints. The figure is the
median time of the `session_diff` report over several runs (budget, DESIGN §10: 1 s), printed
with the ratio to a baseline measured in the same run on the same store: one scan counting
both sessions' events by kind (the least any comparison has to read).

    python bench/session_diff.py [--events 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rsproxy import reports
from rsproxy.events import Event
from rsproxy.store import SessionInfo, Store
from rsproxy.testing import make_http_event

BUDGET_S = 1.0


def _events(session: str, n: int, slower: bool, rng: random.Random) -> list[Event]:
    out: list[Event] = []
    for i in range(n):
        r = rng.random()
        if r < 0.60:
            t = rng.randrange(200)
            base = 5 + t % 40
            total = base * (3 if slower and t % 20 == 0 else 1) * rng.uniform(0.8, 1.2)
            event = make_http_event(
                path=f"/api/r{t}/{i}",
                path_template=f"/api/r{t}/{{id}}",
                status=500 if rng.random() < 0.01 else 200,
                timings={"ttfb_ms": total / 2, "total_ms": total},
            )
        elif r < 0.75:
            level = "error" if rng.random() < 0.1 else "log"
            event = Event("console", {"level": level, "message": f"message {rng.randrange(50)}"})
        elif r < 0.85:
            event = Event(
                "render",
                {
                    "component": f"C{rng.randrange(50)}",
                    "renders": rng.randrange(1, 5),
                    "actual_duration_ms": rng.uniform(0.1, 3),
                },
            )
        elif r < 0.90:
            event = Event(
                "vital", {"name": rng.choice(["LCP", "CLS", "INP"]), "value": rng.uniform(0, 900)}
            )
        elif r < 0.95:
            event = Event(
                "sql",
                {
                    "fingerprint": f"SELECT * FROM t{rng.randrange(100)} WHERE id = ?",
                    "duration_ms": rng.uniform(0.5, 20),
                },
            )
        else:
            event = Event("page_view", {"url": "/", "navigation": "push"})
        event.session_id = session
        out.append(event)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000, help="events per session")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.duckdb")
        for n, sid in enumerate(["a" * 32, "b" * 32]):
            store.start_session(
                SessionInfo(
                    id=sid, project="bench", source="proxy", target=None, started_ms=1000.0 + n
                )
            )
            events = _events(sid, args.events, slower=n == 1, rng=rng)
            for i in range(0, len(events), 5000):
                store.write_events(events[i : i + 5000])
        store.checkpoint()
        ctx = reports.ReportContext(store)

        def baseline() -> None:
            store.query(
                "SELECT session_id, kind, count(*) FROM events WHERE session_id IN (?, ?) "
                "GROUP BY ALL",
                ["a" * 32, "b" * 32],
            )

        def diff() -> dict[str, object]:
            result: dict[str, object] = reports.run("session_diff", ctx, {})
            return result

        def timed(fn: object) -> float:
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                fn()  # type: ignore[operator]
                times.append(time.perf_counter() - start)
            return statistics.median(times)

        diff()  # warm: DuckDB's first query of a table loads its column metadata
        base_s = timed(baseline)
        diff_s = timed(diff)
        counts = diff()["counts"]
        store.close()
    verdict = "within budget" if diff_s <= BUDGET_S else "OVER BUDGET"
    print(f"sessions diff of two {args.events:,}-event sessions (median of {args.runs})")
    print(f"  baseline: one scan counting both sessions by kind  {base_s * 1000:8.1f} ms")
    print(
        f"  session_diff report                                {diff_s * 1000:8.1f} ms "
        f"({diff_s / base_s:.1f}x baseline; budget {BUDGET_S:g} s) -> {verdict}"
    )
    print(f"  changes found: {counts}")
    print(
        json.dumps(
            {
                "bench": "session_diff",
                "events_per_session": args.events,
                "baseline_s": base_s,
                "diff_s": diff_s,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
