"""Captures recorded once per test run, by the real tools: the replay tests' input files.

* ``catalog_har`` — Chromium (Playwright's ``record_har_path``, bodies embedded) loading
  fixtures/apps/catalog_api.py's page, which fetches users, a user page and the health check,
  then a few more fetches from the page: a 404, a 401, POSTed orders (201 and 422), stats
  with an API key in the query (200, then 500).
* ``planted_har`` — Chromium on fixtures/apps/planted running ``plantAll()``: the HTTP-visible
  planted bugs (a 500, a 3.3 s request, N+1 item fetches, two profile shapes, 12 settings
  writes, an auth mismatch).
* ``catalog_flows`` — real ``mitmdump -w FILE`` in reverse mode in front of catalog_api, with
  the fixture's own ``drive`` sending its traffic through it; the same run writes mitmproxy's
  own HAR export (``--set hardump=FILE``), ``catalog_mitmproxy_har``.

Variants for other tools' quirks and malformed files are derived from these in the tests.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from rsproxy.testing import FIXTURES, LoopbackServer, free_port, load_fixture

PAGE_FETCHES = """async () => {
  const auth = {headers: {Authorization: "Bearer " + TOKEN}};
  const key = {"X-API-Key": API_KEY, "Content-Type": "application/json"};
  const out = [];
  out.push((await fetch("/api/users/99", auth)).status);
  out.push((await fetch("/api/users/1")).status);
  out.push((await fetch("/api/users?page=2&q=c", auth)).status);
  for (const body of [{items: [{sku: "a", qty: 1}]}, {items: [{sku: "b", qty: 2}]}, {note: 1}]) {
    out.push((await fetch("/api/orders", {method: "POST", headers: key,
                                          body: JSON.stringify(body)})).status);
  }
  out.push((await fetch("/api/stats?api_key=" + API_KEY)).status);
  out.push((await fetch("/api/stats?cold=1&api_key=" + API_KEY)).status);
  return out;
}"""


@pytest.fixture(scope="session")
def catalog_api() -> ModuleType:
    return load_fixture(FIXTURES / "apps" / "catalog_api.py")


@pytest.fixture(scope="session")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recordings")


def _record_har(browser: Any, path: Path, url: str, drive: Any) -> None:
    context = browser.new_context(record_har_path=str(path), record_har_content="embed")
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(url)
        drive(page)
    finally:
        context.close()  # the HAR is written when its context closes
    assert path.stat().st_size > 0


@pytest.fixture(scope="session")
def catalog_har(browser: Any, catalog_api: ModuleType, recordings: Path) -> Path:
    path = recordings / "catalog.har"

    def drive(page: Any) -> None:
        page.wait_for_function("document.getElementById('status').textContent.startsWith('done')")
        script = PAGE_FETCHES.replace("TOKEN", repr(catalog_api.TOKEN)).replace(
            "API_KEY", repr(catalog_api.API_KEY)
        )
        assert page.evaluate(script) == [404, 401, 200, 201, 201, 422, 200, 500]

    with LoopbackServer(catalog_api.app) as site:
        _record_har(browser, path, site.url + "/", drive)
    return path


@pytest.fixture(scope="session")
def planted_har(browser: Any, recordings: Path) -> Path:
    planted = load_fixture(FIXTURES / "apps" / "planted" / "app.py")
    path = recordings / "planted.har"

    def drive(page: Any) -> None:
        page.wait_for_function("typeof window.plantAll === 'function'")
        assert page.evaluate("plantAll()") == "done"

    with LoopbackServer(lambda: planted.make_app(None)) as site:
        _record_har(browser, path, site.url + "/", drive)
    return path


@pytest.fixture(scope="session")
def catalog_flows(catalog_api: ModuleType, recordings: Path) -> Iterator[Path]:
    path = recordings / "catalog.flows"
    mitmdump = Path(sys.executable).with_name("mitmdump")
    with LoopbackServer(catalog_api.app) as site:
        port = free_port()
        log = (recordings / "mitmdump.log").open("w")
        proc = subprocess.Popen(
            [
                str(mitmdump),
                "--mode",
                f"reverse:{site.url}",
                "--listen-host",
                "127.0.0.1",
                "--listen-port",
                str(port),
                "-w",
                str(path),
                "--set",
                f"hardump={recordings / 'catalog.mitmproxy.har'}",
                "-q",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(base + "/api/health", timeout=2)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise AssertionError((recordings / "mitmdump.log").read_text()) from None
                    time.sleep(0.1)
            with httpx.Client(base_url=base, timeout=10) as client:
                catalog_api.drive(client)
        finally:
            proc.terminate()  # mitmdump flushes its -w file as it stops
            proc.wait(20)
            log.close()
    assert path.stat().st_size > 0
    yield path


@pytest.fixture(scope="session")
def catalog_mitmproxy_har(catalog_flows: Path, recordings: Path) -> Path:
    path = recordings / "catalog.mitmproxy.har"
    assert path.stat().st_size > 0, "mitmdump wrote no HAR"
    return path
