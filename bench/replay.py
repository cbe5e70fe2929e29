"""Replay: the time to replay a 10,000-entry HAR, and the peak memory of replaying a ~100 MB one.

The HARs are synthesised in the shape Chromium writes (a page, headers, timings, JSON bodies;
600 endpoint paths over a few resources, ids of several kinds, 3 % errors, bearer tokens to
redact) — load data for a benchmark; the tests replay HARs recorded by Chromium itself.

* time  — ``rsproxy.replay.replay`` of a 10,000-entry HAR through the default pipeline into a
  fresh store (budget, DESIGN §10: ≤ 5 s). Baseline in the same run: ``json.load`` of the file,
  what merely reading it costs;
* memory — the RSS high-water mark (``resource.getrusage`` in a fresh subprocess) of replaying a
  ~100 MB HAR whose entries carry 100 KB bodies, against two baselines also in subprocesses: the
  idle interpreter with rsproxy's replay modules imported, and ``json.load`` of the same file
  (what a non-streaming reader would hold). The streaming read and conversion alone is measured
  too: its growth over idle must stay under a quarter of the file's size (the file is never held
  whole); the rest of the replay's peak is the pipeline and DuckDB's buffers, reported as is.

    python bench/replay.py [--entries 10000] [--big-mb 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BUDGET_S = 5.0
RESOURCES = ["users", "orders", "products", "invoices", "teams", "projects"]


def _entry(rng: random.Random, i: int, body_bytes: int) -> dict[str, Any]:
    resource_name = rng.choice(RESOURCES)
    ident = str(rng.randrange(10_000)) if i % 3 else f"{rng.getrandbits(96):024x}"
    path = f"/api/v{i % 2}/{resource_name}/{ident}/{['items', 'history', 'settings'][i % 3]}"
    status = 500 if rng.random() < 0.03 else 200
    item = {"id": ident, "name": f"n{i}", "active": rng.random() < 0.5}
    body = json.dumps(item)
    if body_bytes:
        body = json.dumps({**item, "blob": "x" * body_bytes})
    wait = rng.uniform(1, 80)
    return {
        "pageref": "page@1",
        "startedDateTime": f"2024-05-01T10:{(i // 600) % 60:02d}:{(i // 10) % 60:02d}.{i % 1000:03d}Z",
        "time": wait + 2,
        "request": {
            "method": "GET" if i % 5 else "POST",
            "url": f"http://127.0.0.1:3000{path}?page={i % 4}",
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [
                {"name": "Host", "value": "127.0.0.1:3000"},
                {"name": "Authorization", "value": "Bearer abc.def.ghi"},
                {"name": "Accept", "value": "application/json"},
            ],
            "queryString": [{"name": "page", "value": str(i % 4)}],
            "headersSize": -1,
            "bodySize": 0,
        },
        "response": {
            "status": status,
            "statusText": "OK" if status == 200 else "Internal Server Error",
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [
                {"name": "Content-Type", "value": "application/json; charset=utf-8"},
                {"name": "Content-Length", "value": str(len(body))},
            ],
            "content": {"size": len(body), "mimeType": "application/json", "text": body},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": len(body),
        },
        "cache": {},
        "timings": {
            "blocked": -1,
            "dns": -1,
            "connect": -1,
            "ssl": -1,
            "send": 0.1,
            "wait": wait,
            "receive": 1.9,
        },
        "_transferSize": len(body) + 120,
    }


def write_har(path: Path, entries: int, body_bytes: int, seed: int = 1) -> None:
    """Written entry by entry, so the bench itself never holds a big HAR either."""
    rng = random.Random(seed)
    head = {
        "version": "1.2",
        "creator": {"name": "bench", "version": "1"},
        "pages": [
            {
                "startedDateTime": "2024-05-01T10:00:00.000Z",
                "id": "page@1",
                "title": "http://127.0.0.1:3000/",
                "pageTimings": {"onContentLoad": -1, "onLoad": -1},
            }
        ],
    }
    with path.open("w", encoding="utf-8") as out:
        out.write('{"log": ' + json.dumps(head)[:-1] + ', "entries": [\n')
        for i in range(entries):
            out.write(("," if i else "") + json.dumps(_entry(rng, i, body_bytes)) + "\n")
        out.write("]}}\n")


def _peak_rss_mb(code: str, *args: str, home: Path) -> float:
    """The RSS high-water mark of running ``code`` in a fresh interpreter, in MB."""
    probe = code + "\nimport resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    done = subprocess.run(
        [sys.executable, "-c", probe, *args],
        env={**os.environ, "RSPROXY_HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.strip().splitlines()[-1]) / 1024  # ru_maxrss is in KB on Linux


IMPORTS = "import sys; from pathlib import Path; from rsproxy.project import Project; " + (
    "from rsproxy.replay import replay"
)
READ = IMPORTS + (
    "; from rsproxy.replay.har import HarReader, entry_event"
    "\nfor e in HarReader(Path(sys.argv[1])).entries(): entry_event(e, 65536)"
)
REPLAY = IMPORTS + "; replay(Path(sys.argv[1]), Project('bench'))"
JSON_LOAD = IMPORTS + "; import json; json.load(open(sys.argv[1], encoding='utf-8'))"


def time_replay(path: Path, rounds: int) -> tuple[float, float]:
    from rsproxy.project import Project
    from rsproxy.replay import replay

    replays, loads = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as home:
            os.environ["RSPROXY_HOME"] = home
            start = time.perf_counter()
            summary = replay(path, Project("bench"))
            replays.append(time.perf_counter() - start)
            if summary.skipped:
                raise SystemExit(f"the bench HAR had skipped entries: {summary.skipped_reasons}")
        start = time.perf_counter()
        with path.open(encoding="utf-8") as handle:
            json.load(handle)
        loads.append(time.perf_counter() - start)
    return statistics.median(replays), statistics.median(loads)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--big-mb", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        small = folder / "small.har"
        write_har(small, args.entries, body_bytes=0)
        replay_s, load_s = time_replay(small, args.rounds)

        body = 100_000
        big = folder / "big.har"
        write_har(big, max(1, args.big_mb * 1_000_000 // (body + 1_500)), body_bytes=body)
        big_mb = big.stat().st_size / 1e6
        idle = _peak_rss_mb(IMPORTS, home=folder / "h0")
        loaded = _peak_rss_mb(JSON_LOAD, str(big), home=folder / "h1")
        read = _peak_rss_mb(READ, str(big), home=folder / "h2")
        peak = _peak_rss_mb(REPLAY, str(big), home=folder / "h3")
    time_verdict = "within budget" if replay_s <= BUDGET_S else "OVER BUDGET"
    memory_verdict = "within budget" if read - idle <= 0.25 * big_mb else "OVER BUDGET"
    print(f"replay, median of {args.rounds} rounds, default pipeline into a fresh store")
    print(f"  baseline json.load of the {args.entries:,}-entry HAR   {load_s:8.3f} s")
    print(
        f"  replay of the {args.entries:,}-entry HAR              {replay_s:8.3f} s "
        f"({replay_s / load_s:.1f}x baseline; {args.entries / replay_s:,.0f} entries/s; "
        f"budget {BUDGET_S:g} s) -> {time_verdict}"
    )
    print(f"peak RSS, {big_mb:.0f} MB HAR with 100 KB bodies, each in a fresh interpreter")
    print(f"  idle (replay modules imported)            {idle:8.1f} MB")
    print(f"  baseline json.load of the file            {loaded:8.1f} MB")
    print(
        f"  streaming read + conversion               {read:8.1f} MB "
        f"(+{read - idle:.1f} MB over idle = {(read - idle) / big_mb:.2f}x the file; "
        f"budget 0.25x) -> {memory_verdict}"
    )
    print(
        f"  whole replay, pipeline and DuckDB         {peak:8.1f} MB "
        f"(+{peak - idle:.1f} MB over idle = {(peak - idle) / big_mb:.2f}x the file; "
        f"{peak / loaded:.2f}x json.load)"
    )
    print(
        json.dumps(
            {
                "bench": "replay",
                "entries": args.entries,
                "replay_s": replay_s,
                "json_load_s": load_s,
                "big_har_mb": big_mb,
                "idle_rss_mb": idle,
                "json_load_rss_mb": loaded,
                "read_rss_mb": read,
                "replay_rss_mb": peak,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
