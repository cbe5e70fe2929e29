"""Two live sessions of the demo app, the second with a planted regression, diffed by the CLI.

The demo app runs in-process; for the second session a middleware makes one endpoint 300 ms
slower and another answer 500. The same traffic goes through a real ``rsproxy start`` both
times, and ``rsproxy sessions diff --json`` must report exactly those two endpoints as
regressions (any other regressed endpoint fails the test), plus, when the detect stage is in the
pipeline, the new failed-request finding as a new issue.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from aiohttp import web

from rsproxy.demo_app.app import make_app
from rsproxy.testing import DaemonProcess, LoopbackServer, run_cli

SLOW = "/api/products/2"
FAILING = "/api/users/1/orders"


def _demo(regressed: bool) -> web.Application:
    app = make_app(slow_seconds=0.0)

    @web.middleware
    async def regress(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if regressed and request.path == SLOW:
            await asyncio.sleep(0.3)
        if regressed and request.path == FAILING:
            return web.json_response({"error": "orders service unavailable"}, status=500)
        return await handler(request)

    app.middlewares.append(regress)
    return app


def _traffic(proxy: str) -> None:
    with httpx.Client(base_url=proxy, trust_env=False, timeout=10) as client:
        for _ in range(5):
            for path in ["/api/products", "/api/products/1", SLOW, FAILING, "/api/health"]:
                client.get(path)


def _capture(home: Path, regressed: bool) -> None:
    with (
        LoopbackServer(lambda: _demo(regressed)) as upstream,
        DaemonProcess(home, "--target", f":{upstream.port}", project="diff") as daemon,
    ):
        _traffic(daemon.proxy_url)
        daemon.wait_for_events(lambda evs: len(evs) >= 25, kind="http")


def test_a_slower_endpoint_and_a_new_error_diff_into_exactly_those_regressions(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    _capture(home, regressed=False)
    _capture(home, regressed=True)

    listed = run_cli(home, "sessions", "--project", "diff", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)["sessions"]) == 2

    result = run_cli(home, "sessions", "diff", "latest-1", "latest", "--project", "diff", "--json")
    assert result.returncode == 0, result.stderr
    diff = json.loads(result.stdout)
    regressions = [c for c in diff["changes"] if c["change"] == "regression"]
    endpoints = {(c["key"], c["metric"]) for c in regressions if c["area"] == "endpoint"}
    # Templated by the normalize stage when it runs, else the literal path.
    slow = {
        k for k, _ in endpoints if k.startswith("GET /api/products/") and k != "GET /api/products"
    }
    assert len(slow) == 1, endpoints
    (slow_key,) = slow
    failing_key = next(k for k, m in endpoints if m == "error_rate")
    assert failing_key.startswith("GET /api/users/") and failing_key.endswith("/orders")
    assert endpoints == {(slow_key, "p50_ms"), (slow_key, "p95_ms"), (failing_key, "error_rate")}
    others = [c for c in regressions if c["area"] != "endpoint"]
    assert all(c["area"] == "issue" for c in others), others
    assert not [c for c in diff["changes"] if c["change"] == "improvement"], diff["changes"]

    human = run_cli(home, "sessions", "diff", "--project", "diff")
    assert human.returncode == 0, human.stderr
    assert "regression" in human.stdout and slow_key.split(" ", 1)[1] in human.stdout
