"""The probe's cost per intercepted fetch, in real Chromium.

A page makes 1,000 same-origin fetches of a small JSON reply (reading each body, as apps do)
through the probe's wrapped `fetch` and 1,000 through the browser's own, kept by a script that
runs before the probe. The two alternate in blocks so drift in the machine's load weighs on both
alike; the figure is the median over block pairs of the extra time per call.

Two runs of that page:

* memory  — the page's `fetch` answers from memory (a real `Response`, no network), and the probe
  wraps that. What differs between the two sides is then only the probe's own work (the wrapper,
  the correlation header, reading a clone of the body, building and queueing the event): this
  is the figure held to the budget (DESIGN §10: 0.1 ms median).
* network — real requests to a local HTTP server. The honest end-to-end figure, but a loopback
  round trip varies by more than the budget from block to block, so it is printed with its noise
  floor: the same comparison between the browser's fetch and itself, in the same run.

The page and the probe are served by a small local server with no rsproxy behind it, so the
proxy's handling of the events is not in the figure; with no socket to send to, events queue
as they do while disconnected.

    python bench/probe_fetch_cost.py [--fetches 1000] [--probe FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from rsproxy.api import probe_script
from rsproxy.testing import LoopbackServer, chromium

BUDGET_MS = 0.1

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>fetch cost</title>
<script>
window.__originalFetch = window.fetch.bind(window);
if (location.search === '?memory') {
  const body = JSON.stringify({i: 1, ok: true, items: [1, 2, 3]});
  window.fetch = function fetch(input, init) {
    return Promise.resolve(new Response(body, {
      status: 200, headers: {'content-type': 'application/json', 'content-length': String(body.length)},
    }));
  };
  window.__originalFetch = window.fetch;
}
</script>
<script src="/__rsproxy/probe.js"></script>
</head><body>
<script>
// Blocks of calls, each pair in alternating order: Chromium coarsens performance.now() to
// 0.1 ms, so single calls cannot be timed, but a block can. "again" is the original fetch once
// more: its difference from "original" is the noise floor.
async function measure(n, block) {
  const variants = [['probed', window.fetch], ['original', window.__originalFetch], ['again', window.__originalFetch]];
  const perCall = {probed: [], original: [], again: []};
  for (let b = 0; b < n / block; b++) {
    const order = b % 2 ? variants.slice().reverse() : variants;
    for (const [name, f] of order) {
      const t = performance.now();
      for (let i = 0; i < block; i++) {
        const response = await f('/item?i=' + i);
        await response.json();
      }
      perCall[name].push((performance.now() - t) / block);
    }
  }
  return Object.assign(perCall, {wrapped: window.fetch !== window.__originalFetch});
}
</script></body></html>"""


def site(script: bytes) -> web.Application:
    app = web.Application()

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def probe(_request: web.Request) -> web.Response:
        return web.Response(body=script, content_type="application/javascript")

    async def item(request: web.Request) -> web.Response:
        return web.json_response({"i": request.query.get("i"), "ok": True, "items": [1, 2, 3]})

    app.router.add_get("/", page)
    app.router.add_get("/item", item)
    app.router.add_get("/__rsproxy/probe.js", probe)
    return app


def _extra(result: dict[str, Any], name: str) -> float:
    return statistics.median(p - o for p, o in zip(result[name], result["original"], strict=True))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fetches", type=int, default=1000)
    parser.add_argument(
        "--probe",
        type=Path,
        help="serve this script instead of the built probe (to compare builds)",
    )
    args = parser.parse_args()
    script = args.probe.read_bytes() if args.probe else probe_script()
    results = {}
    with LoopbackServer(lambda: site(script)) as server, chromium() as browser:
        for mode, block in [("memory", 100), ("network", 50)]:
            page = browser.new_page()
            page.goto(f"{server.url}/?{mode}")
            page.wait_for_function("window.__rsproxy && window.__rsproxy.page_id")
            results[mode] = page.evaluate(f"measure({args.fetches}, {block})")
            page.close()
    if not all(r["wrapped"] for r in results.values()):
        print("the probe did not wrap fetch; nothing to measure")
        return 1

    memory, network = results["memory"], results["network"]
    cost = _extra(memory, "probed")
    original = statistics.median(memory["original"])
    print(f"probe fetch cost ({args.fetches} fetches per side, same page, alternating blocks)")
    print(f"  memory  browser's fetch  median {original * 1000:.1f} us per call (baseline)")
    print(
        f"  memory  probe's fetch    median {statistics.median(memory['probed']) * 1000:.1f} us "
        f"per call ({statistics.median(memory['probed']) / original:.2f}x)"
    )
    verdict = "within budget" if cost <= BUDGET_MS else "OVER BUDGET"
    print(f"  probe's cost per fetch   median {cost:+.4f} ms (budget {BUDGET_MS} ms) -> {verdict}")
    net_original = statistics.median(network["original"])
    net_extra = _extra(network, "probed")
    noise = _extra(network, "again")
    print(
        f"  network browser's fetch  median {net_original:.3f} ms per call; probe's fetch "
        f"{net_extra:+.3f} ms; noise floor (browser's fetch against itself) {noise:+.3f} ms"
    )
    print(
        json.dumps(
            {
                "bench": "probe_fetch_cost",
                "memory_original_ms": original,
                "memory_extra_ms": cost,
                "network_original_ms": net_original,
                "network_extra_ms": net_extra,
                "network_noise_ms": noise,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
