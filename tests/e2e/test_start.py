"""`rsproxy start` end to end: a real daemon, real Chromium, real upstreams, the real store.

These are the acceptance tests of the spine: what a developer does (start, open the URL, use
the app, look at what was captured) with nothing stubbed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from rsproxy.store import Store
from rsproxy.testing import DaemonProcess, LoopbackServer, fixture_site, run_async

PROBE_COUNT = "document.querySelectorAll('script[src=\"/__rsproxy/probe.js\"]').length"


@pytest.fixture(scope="module")
def site() -> Any:
    with LoopbackServer(fixture_site) as server:
        yield server


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """rsproxy start with no target: the bundled demo app."""
    with DaemonProcess(tmp_path_factory.mktemp("home"), project="demo") as daemon:
        yield daemon


@pytest.fixture(scope="module")
def proxied_site(tmp_path_factory: pytest.TempPathFactory, site: LoopbackServer) -> Any:
    with DaemonProcess(
        tmp_path_factory.mktemp("home"), "--target", f":{site.port}", project="site"
    ) as daemon:
        yield daemon


def _paths(events: list[dict[str, Any]]) -> set[str]:
    return {e["data"]["path"] for e in events if e["kind"] == "http"}


@pytest.mark.browser
def test_demo_app_in_chromium_is_captured_with_probe_once(demo: DaemonProcess, page: Any) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(demo.proxy_url + "/checkout")
    with page.expect_console_message(lambda m: "checkout failed" in m.text):
        page.click("#checkout-button")
    page.goto(demo.proxy_url + "/products")
    page.wait_for_selector("#product-list a")

    assert page.evaluate(PROBE_COUNT) == 1
    assert page.evaluate("typeof window.__rsproxy.page_id") == "string"

    errors = demo.wait_for_events(
        lambda evs: any("checkout failed" in e["data"].get("message", "") for e in evs),
        kind="console",
    )
    logged = next(e for e in errors if "checkout failed" in e["data"]["message"])
    assert logged["data"]["level"] == "error"
    assert logged["source"] == "probe" and logged["page_id"]

    app_paths = {httpx.URL(u).path for u in requested if "/__rsproxy/" not in u}
    assert {
        "/checkout",
        "/api/checkout",
        "/products",
        "/api/products",
        "/static/app.js",
    } <= app_paths
    captured = demo.wait_for_events(lambda evs: app_paths <= _paths(evs), kind="http")
    assert not any(p.startswith("/__rsproxy/") for p in _paths(captured)), "probe traffic captured"
    checkout = next(e for e in captured if e["data"]["path"] == "/api/checkout")
    assert checkout["data"]["status"] == 500
    assert checkout["data"]["method"] == "POST"
    assert "payment provider unavailable" in checkout["data"]["response_body"]
    assert checkout["data"]["timings"]["ttfb_ms"] is not None


@pytest.mark.browser
def test_store_holds_the_capture_after_stop(tmp_path: Path, page: Any) -> None:
    with DaemonProcess(tmp_path, project="flush") as daemon:
        page.goto(daemon.proxy_url + "/")
        page.evaluate("console.error('written before stop')")
        page.wait_for_timeout(300)  # the probe batches for up to 250 ms
    assert daemon.proc is not None and daemon.proc.returncode == 0, daemon.output()
    store = Store.open_readonly(tmp_path / "projects" / "flush" / "rsproxy.duckdb")
    try:
        messages = [r["message"] for r in store.query("SELECT message FROM console")]
        paths = [r["path"] for r in store.query("SELECT path FROM http")]
        ended = store.query("SELECT ended_ms FROM sessions")
    finally:
        store.close()
    assert "written before stop" in messages
    assert "/" in paths
    assert ended and ended[0]["ended_ms"] is not None
    assert not (tmp_path / "projects" / "flush" / "daemon.json").exists()


@pytest.mark.browser
@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_encoded_html_is_injected_and_renders(
    proxied_site: DaemonProcess, page: Any, coding: str
) -> None:
    page.goto(f"{proxied_site.proxy_url}/encoded/{coding}")
    assert page.text_content("#ok") == "rendered"
    assert page.title() == f"encoded {coding}"
    assert page.evaluate(PROBE_COUNT) == 1
    page.wait_for_function("window.__rsproxy && window.__rsproxy.page_id")
    page_id = page.evaluate("window.__rsproxy.page_id")
    proxied_site.wait_for_events(
        lambda evs: any(e["page_id"] == page_id for e in evs), kind="page_view"
    )


@pytest.mark.browser
def test_strict_csp_page_runs_probe_and_keeps_its_policy(
    proxied_site: DaemonProcess, site: LoopbackServer, page: Any
) -> None:
    direct = httpx.get(f"{site.url}/csp/strict").headers["content-security-policy"]
    via_proxy = httpx.get(f"{proxied_site.proxy_url}/csp/strict", trust_env=False).headers[
        "content-security-policy"
    ]
    # The page already has a nonce, which the probe borrows, so every directive stays as it was;
    # the one addition lets the probe's socket connect under `default-src 'none'`.
    assert via_proxy == direct + "; connect-src 'self'"

    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{proxied_site.proxy_url}/csp/strict")
    assert page.text_content("#ok") == "inline ran"
    page.wait_for_function("window.__rsproxy && window.__rsproxy.page_id")
    page_id = page.evaluate("window.__rsproxy.page_id")
    proxied_site.wait_for_events(
        lambda evs: any(e["page_id"] == page_id for e in evs), kind="page_view"
    )
    assert violations == []


def test_sse_first_event_arrives_before_the_stream_ends(proxied_site: DaemonProcess) -> None:
    url = f"{proxied_site.proxy_url}/sse?count=3&gap=1.5"
    arrivals: list[tuple[float, str]] = []
    started = time.monotonic()
    with httpx.stream("GET", url, timeout=20, trust_env=False) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                arrivals.append((time.monotonic() - started, line))
    assert [line for _, line in arrivals] == ["data: event 0", "data: event 1", "data: event 2"]
    # The stream lasts 3 s upstream; the first event must not have waited for the end.
    assert arrivals[0][0] < arrivals[-1][0] - 2.0
    captured = proxied_site.wait_for_events(lambda evs: "/sse" in _paths(evs), kind="http")
    sse = next(e for e in captured if e["data"]["path"] == "/sse")
    assert sse["data"]["streamed"] is True
    assert "data: event 0" in sse["data"]["response_body"]


def test_websocket_echo_through_the_proxy(proxied_site: DaemonProcess) -> None:
    async def talk() -> list[str]:
        ws_url = proxied_site.proxy_url.replace("http://", "ws://") + "/ws/echo"
        async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
            replies = []
            for text in ("hello", "hmr update"):
                await ws.send_str(text)
                replies.append((await ws.receive(timeout=10)).data)
            return replies

    assert run_async(talk()) == ["hello", "hmr update"]
    frames = proxied_site.wait_for_events(
        lambda evs: sum(1 for e in evs if e["data"].get("text") == "hmr update") >= 2,
        kind="ws_message",
    )
    directions = {e["data"]["direction"] for e in frames if e["data"].get("text") == "hmr update"}
    assert directions == {"client", "server"}


def test_stopped_target_gives_a_clear_502_and_the_daemon_keeps_running(tmp_path: Path) -> None:
    server = LoopbackServer(fixture_site).__enter__()
    with DaemonProcess(tmp_path, "--target", f":{server.port}", project="dead") as daemon:
        assert httpx.get(f"{daemon.proxy_url}/page/alive", trust_env=False).status_code == 200
        server.stop()
        answer = httpx.get(f"{daemon.proxy_url}/page/gone", trust_env=False)
        assert answer.status_code == 502
        assert f"http://127.0.0.1:{server.port}" in answer.text
        assert "Is the dev server running?" in answer.text
        with daemon.api() as api:
            assert api.get("/api/status").json()["proxy_url"] == daemon.proxy_url
        failed = daemon.wait_for_events(lambda evs: "/page/gone" in _paths(evs), kind="http")
        gone = next(e for e in failed if e["data"]["path"] == "/page/gone")
        assert gone["data"].get("status") is None and gone["data"]["error"]


def test_planted_secrets_never_reach_the_store_or_the_api(
    tmp_path: Path, site: LoopbackServer
) -> None:
    secrets = {
        "authorization": "Bearer-secret-AAAA1111",
        "cookie": "cookie-secret-BBBB2222",
        "password": "password-secret-CCCC3333",
        "query": "query-secret-DDDD4444",
    }
    with DaemonProcess(tmp_path, "--target", f":{site.port}", project="secrets") as daemon:
        response = httpx.post(
            f"{daemon.proxy_url}/echo/login?token={secrets['query']}&page=1",
            headers={
                "Authorization": f"Bearer {secrets['authorization']}",
                "Cookie": f"session={secrets['cookie']}; theme=dark",
            },
            json={
                "user": "visible-marker-EEEE5555",
                "credentials": {"password": secrets["password"]},
            },
            trust_env=False,
        )
        assert response.status_code == 200
        # The upstream really received the secrets: redaction is for the record, not the wire.
        assert secrets["password"] in response.text
        events = daemon.wait_for_events(lambda evs: "/echo/login" in _paths(evs), kind="http")
        api_text = json.dumps(daemon.events())
        login = next(e for e in events if e["data"]["path"] == "/echo/login")
        assert login["data"]["auth"] == "bearer"
        assert "page=1" in login["data"]["query"]
    for name, secret in secrets.items():
        assert secret not in api_text, f"{name} secret in /api/events"
    store_bytes = b"".join(
        p.read_bytes() for p in (tmp_path / "projects" / "secrets").glob("rsproxy.duckdb*")
    )
    # Positive control: a harmless value from the same request is findable in the file's bytes,
    # so the absence of the secrets below is not an artefact of compression.
    assert b"visible-marker-EEEE5555" in store_bytes
    for name, secret in secrets.items():
        assert secret.encode() not in store_bytes, f"{name} secret in the DuckDB file"
