"""The exec channel's server side (rsproxy/pages.py, /api/exec, `rsproxy exec`).

A page is played here by a WebSocket client speaking the probe's wire format through the real
proxy; the probe's own side is tested in Chromium in tests/injected_js/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from rsproxy.testing import DaemonProcess, run_async


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with DaemonProcess(tmp_path_factory.mktemp("home"), project="pages") as running:
        yield running


def _exec_cli(daemon: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rsproxy", "exec", "--project", "pages", *args],
        env={**os.environ, "RSPROXY_HOME": str(daemon.home)},
        capture_output=True,
        text=True,
        timeout=60,
    )


class FakePage:
    """Connects like the probe, announces a page_id, and answers exec requests with ``reply``."""

    def __init__(self, daemon: DaemonProcess, page_id: str, reply: Any) -> None:
        self.url = daemon.proxy_url.replace("http://", "ws://") + "/__rsproxy/ws"
        self.origin = daemon.proxy_url
        self.page_id = page_id
        self.reply = reply
        self.received: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=lambda: run_async(self._run(), timeout=120), daemon=True
        )

    async def _run(self) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(self.url, headers={"Origin": self.origin}) as ws,
        ):
            await ws.receive_json(timeout=10)  # hello
            await ws.send_str(json.dumps({"type": "events", "page_id": self.page_id, "events": []}))
            self.ready.set()
            while not self.stop.is_set():
                try:
                    message = await ws.receive_json(timeout=0.2)
                except TimeoutError:
                    continue
                self.received.append(message)
                answer = self.reply(message)
                if answer is not None:
                    await ws.send_str(
                        json.dumps(
                            {
                                "type": "exec_result",
                                "id": message["id"],
                                "page_id": self.page_id,
                                **answer,
                            }
                        )
                    )

    def __enter__(self) -> FakePage:
        self.thread.start()
        assert self.ready.wait(15), "the fake page never connected"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(15)


def test_exec_without_a_connected_page_says_what_to_do(daemon: DaemonProcess) -> None:
    result = _exec_cli(daemon, "document.title")
    assert result.returncode == 1
    assert "no page is connected" in result.stderr


def test_exec_returns_the_value_and_records_the_call(daemon: DaemonProcess) -> None:
    with FakePage(
        daemon, "page-one", lambda m: {"ok": True, "value": {"title": "Demo", "code": m["code"]}}
    ) as page:
        result = _exec_cli(daemon, "document.title", "--json")
        assert result.returncode == 0, result.stderr
        answer = json.loads(result.stdout)
        assert answer["ok"] is True and answer["page_id"] == "page-one"
        assert answer["value"] == {"title": "Demo", "code": "document.title"}
        assert page.received[0]["type"] == "exec" and page.received[0]["timeout_ms"] == 5000
    recorded = daemon.wait_for_events(lambda evs: len(evs) >= 1, kind="exec_result")
    assert recorded[0]["data"]["code"] == "document.title" and recorded[0]["source"] == "agent"


def test_exec_reports_the_page_error(daemon: DaemonProcess) -> None:
    error = {"name": "ReferenceError", "message": "nope is not defined", "stack": "at <anonymous>"}
    with FakePage(daemon, "page-two", lambda m: {"ok": False, "error": error}):
        result = _exec_cli(daemon, "nope()", "--page", "page-two")
    assert result.returncode == 1
    assert "ReferenceError: nope is not defined (page page-two)" in result.stderr


def test_exec_times_out_when_the_page_stays_silent(daemon: DaemonProcess) -> None:
    with FakePage(daemon, "page-silent", lambda m: None):
        result = _exec_cli(daemon, "while(true){}", "--timeout", "0.3")
    assert result.returncode == 1
    assert "did not answer within 300 ms" in result.stderr


def test_exec_refuses_unknown_pages_and_bad_requests(daemon: DaemonProcess) -> None:
    with FakePage(daemon, "page-three", lambda m: {"ok": True, "value": 1}):
        unknown = _exec_cli(daemon, "1", "--page", "no-such-page")
        assert (
            unknown.returncode == 1
            and "no connected page has page_id 'no-such-page'" in unknown.stderr
        )
        with daemon.api() as api:
            listing = api.get("/api/pages").json()["pages"]
            assert any(p["page_id"] == "page-three" for p in listing)
            assert api.post("/api/exec", json={"code": ""}).status_code == 400
            assert (
                api.post("/api/exec", json={"code": "1", "timeout_ms": "soon"}).status_code == 400
            )
            assert api.post("/api/exec", content=b"not json").status_code == 400


def test_exec_needs_the_api_token(daemon: DaemonProcess) -> None:
    assert daemon.state is not None
    answer = httpx.post(daemon.state.api_url + "/api/exec", json={"code": "1"}, trust_env=False)
    assert answer.status_code == 401


def test_exec_results_from_pages_cannot_be_forged_as_events(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    # A page may only answer requests; an unsolicited exec_result is ignored, not stored.
    before = len(daemon.events("exec_result"))
    with FakePage(daemon, "page-forger", lambda m: None) as page:

        async def forge() -> None:
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(page.url, headers={"Origin": page.origin}) as ws,
            ):
                await ws.receive_json(timeout=10)
                await ws.send_str(
                    json.dumps({"type": "exec_result", "id": "x999", "ok": True, "value": 1})
                )

        run_async(forge())
    with daemon.api() as api:
        assert api.get("/readyz").status_code == 200
    assert len(daemon.events("exec_result")) == before


@pytest.mark.browser
def test_exec_in_a_real_page_returns_values_promises_and_errors(
    daemon: DaemonProcess, page: Any
) -> None:
    page.goto(daemon.proxy_url + "/products")
    page.wait_for_function("window.__rsproxy && window.__rsproxy.page_id")
    page_id = page.evaluate("window.__rsproxy.page_id")
    with daemon.api() as api:  # the socket is open once the page has said hello
        deadline = time.monotonic() + 10
        while not any(p["page_id"] == page_id for p in api.get("/api/pages").json()["pages"]):
            assert time.monotonic() < deadline, "the page never connected"
            page.wait_for_timeout(100)

    title = _exec_cli(daemon, "document.title", "--page", page_id, "--json")
    assert title.returncode == 0, title.stderr
    assert json.loads(title.stdout)["value"] == page.title()

    promised = _exec_cli(
        daemon, "new Promise(r => setTimeout(() => r({n: 6 * 7}), 50))", "--page", page_id, "--json"
    )
    assert json.loads(promised.stdout)["value"] == {"n": 42}

    thrown = _exec_cli(daemon, "throw new TypeError('bad input')", "--page", page_id)
    assert thrown.returncode == 1 and "TypeError: bad input" in thrown.stderr

    statement = _exec_cli(
        daemon, "document.body.dataset.touched = 'yes'; 1 + 1", "--page", page_id, "--json"
    )
    assert json.loads(statement.stdout)["value"] == 2
    assert page.evaluate("document.body.dataset.touched") == "yes"
