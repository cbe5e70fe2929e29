"""Daemon memory: the resident size of `rsproxy start` idle, against bare `mitmdump` in reverse mode.

Both run in front of the same small upstream (an aiohttp JSON API in its own process), in one
run on this machine:

* mitmdump — bare mitmproxy in reverse mode (`mitmdump -q --mode reverse:...`), the baseline: what
  the proxy alone costs;
* rsproxy  — `rsproxy start --target ...` with the default pipeline, in a fresh RSPROXY_HOME.

Each is measured idle twice: once started (settled for a few seconds), and again after 2,000
requests through it and a few seconds more to settle (the store, the stages' tables and the
caches then hold something, as a daemon that has served a page does). The figure is the RSS of
the process (VmRSS), printed with the ratio to mitmdump's and the budget from DESIGN §10:
150 MB.

    python bench/daemon_memory.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_overhead import UPSTREAM, free_port, wait_for

BUDGET_MB = 150.0
SETTLE_S = 3.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def load(url: str, count: int) -> None:
    async with aiohttp.ClientSession() as session:
        for n in range(count):
            async with session.get(f"{url}/api/items/{n % 500}") as response:
                await response.read()


def measure(
    command: list[str], url: str, requests: int, env: dict[str, str]
) -> tuple[float, float]:
    proc = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(url + "/api/items/0")
        time.sleep(SETTLE_S)
        started = rss_mb(proc.pid)
        asyncio.run(load(url, requests))
        time.sleep(SETTLE_S)
        served = rss_mb(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    return started, served


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    upstream_port = free_port()
    upstream = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(upstream_port)])
    try:
        target = f"http://127.0.0.1:{upstream_port}"
        wait_for(target + "/api/items/0")
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "RSPROXY_HOME": home}
            mitm_port = free_port()
            mitm = measure(
                [
                    str(bin_dir / "mitmdump"),
                    "-q",
                    "--mode",
                    f"reverse:{target}",
                    "--listen-host",
                    "127.0.0.1",
                    "--listen-port",
                    str(mitm_port),
                ],
                f"http://127.0.0.1:{mitm_port}",
                args.requests,
                env,
            )
            rs_port = free_port()
            rsproxy = measure(
                [
                    str(bin_dir / "rsproxy"),
                    "start",
                    "--target",
                    target,
                    "--port",
                    str(rs_port),
                    "--project",
                    "membench",
                ],
                f"http://127.0.0.1:{rs_port}",
                args.requests,
                env,
            )
    finally:
        upstream.terminate()
        upstream.wait(10)
    worst = max(rsproxy)
    verdict = "within budget" if worst <= BUDGET_MB else "OVER BUDGET"
    print(f"daemon memory (VmRSS), idle after start and after {args.requests:,} requests")
    print(f"  baseline mitmdump     started {mitm[0]:6.1f} MB   served {mitm[1]:6.1f} MB")
    print(
        f"  rsproxy start         started {rsproxy[0]:6.1f} MB   served {rsproxy[1]:6.1f} MB "
        f"({worst / max(mitm):.2f}x mitmdump; budget {BUDGET_MB:g} MB) -> {verdict}"
    )
    print(
        json.dumps(
            {
                "bench": "daemon_memory",
                "requests": args.requests,
                "mitmdump_mb": mitm,
                "rsproxy_mb": rsproxy,
                "budget_mb": BUDGET_MB,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
