"""Proxy overhead: rsproxy against bare `mitmdump` in reverse mode, and against no proxy at all.

Three ways to reach the same upstream (a small aiohttp JSON API in its own process), measured in
one run on this machine, interleaved over several rounds so drift in the machine's load hits all
three alike:

* direct     — the upstream itself, the floor;
* mitmdump   — bare mitmproxy in reverse mode (`mitmdump -q --mode reverse:...`), the baseline;
* rsproxy    — `rsproxy start --target ...` with the default pipeline (capture, redact, persist).

For each: throughput (req/s with 8 keep-alive connections for a fixed time) and latency (p50 and
p95 of sequential requests on one connection). Printed with the ratios to the mitmdump baseline
and the budget from DESIGN §10: at most 10% fewer req/s and at most 0.5 ms more p50.

    python bench/proxy_overhead.py [--seconds 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

UPSTREAM = r"""
import json, sys
from aiohttp import web
ITEM = json.dumps({"id": 42, "name": "widget", "tags": ["a", "b", "c"], "price": 9.99,
                   "description": "x" * 400}).encode()
async def item(request):
    return web.Response(body=ITEM, content_type="application/json")
app = web.Application()
app.router.add_get("/api/items/{id}", item)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, trust_env=False, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up")


async def throughput(url: str, seconds: float, connections: int = 8) -> float:
    done = 0
    stop_at = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(n: int) -> None:
            nonlocal done
            i = n
            while time.perf_counter() < stop_at:
                async with session.get(f"{url}/api/items/{i % 500}") as response:
                    await response.read()
                done += 1
                i += connections

        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(connections)))
        return done / (time.perf_counter() - started)


async def latency(url: str, count: int) -> tuple[float, float]:
    samples = []
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        for i in range(count + 20):
            started = time.perf_counter()
            async with session.get(f"{url}/api/items/{i % 500}") as response:
                await response.read()
            if i >= 20:  # the first requests open connections and warm caches
                samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95)]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="throughput window per round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--latency-requests", type=int, default=400)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="rsproxy-bench-"))
    env = {**os.environ, "RSPROXY_HOME": str(home)}
    bin_dir = Path(sys.executable).parent
    up_port, mitm_port, rs_port = free_port(), free_port(), free_port()
    procs = [
        subprocess.Popen([sys.executable, "-c", UPSTREAM, str(up_port)]),
        subprocess.Popen(
            [
                str(bin_dir / "mitmdump"),
                "-q",
                "--mode",
                f"reverse:http://127.0.0.1:{up_port}",
                "--listen-host",
                "127.0.0.1",
                "-p",
                str(mitm_port),
                "--set",
                f"confdir={home / 'mitm'}",
            ],
            env=env,
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rsproxy",
                "start",
                "--project",
                "bench",
                "--target",
                f":{up_port}",
                "--port",
                str(rs_port),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    targets = {
        "direct": f"http://127.0.0.1:{up_port}",
        "mitmdump": f"http://127.0.0.1:{mitm_port}",
        "rsproxy": f"http://127.0.0.1:{rs_port}",
    }
    try:
        for url in targets.values():
            wait_for(f"{url}/api/items/1")
        rps: dict[str, list[float]] = {name: [] for name in targets}
        p50: dict[str, list[float]] = {name: [] for name in targets}
        p95: dict[str, list[float]] = {name: [] for name in targets}
        for round_no in range(args.rounds):
            # Alternate the order so whatever drifts during a round (CPU steal on a shared
            # machine, caches) does not always favour the same target.
            order = list(targets.items())
            for name, url in order if round_no % 2 == 0 else reversed(order):
                rps[name].append(asyncio.run(throughput(url, args.seconds)))
                a, b = asyncio.run(latency(url, args.latency_requests))
                p50[name].append(a)
                p95[name].append(b)
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    result = {
        name: {
            "rps": statistics.median(rps[name]),
            "p50_ms": statistics.median(p50[name]),
            "p95_ms": statistics.median(p95[name]),
        }
        for name in targets
    }
    base = result["mitmdump"]
    print(
        f"proxy overhead ({args.rounds} rounds, {args.seconds:g} s throughput windows, 8 connections)"
    )
    print(
        f"{'':10} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'req/s vs mitmdump':>18} {'p50 vs mitmdump':>16}"
    )
    for name, r in result.items():
        print(
            f"{name:10} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p95_ms']:8.2f} "
            f"{r['rps'] / base['rps']:17.2f}x {r['p50_ms'] - base['p50_ms']:+15.2f}ms"
        )
    rs = result["rsproxy"]
    rps_loss = 1 - rs["rps"] / base["rps"]
    p50_extra = rs["p50_ms"] - base["p50_ms"]
    within = rps_loss <= 0.10 and p50_extra <= 0.5
    print(
        f"rsproxy vs mitmdump: {rps_loss:+.1%} fewer req/s (budget 10%), {p50_extra:+.2f} ms p50 "
        f"(budget 0.5 ms) -> {'within budget' if within else 'OVER BUDGET'}"
    )
    print(
        json.dumps(
            {"bench": "proxy_overhead", **result, "rps_loss": rps_loss, "p50_extra_ms": p50_extra}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
