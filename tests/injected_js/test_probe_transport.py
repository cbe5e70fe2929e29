"""The probe's transport in Chromium, through a real ``rsproxy start``.

The socket is forced down from the server side the real way: the daemon is stopped and a new
one started on the same port and project home, so the page's probe reconnects to the same
origin with its backoff. What the page logged meanwhile must reach the new daemon; past 1000
queued events the oldest are dropped and the count reaches the daemon's probe stats. A page
going away hands its queue to a beacon (``/__rsproxy/events``) on pagehide.

An init script (run before the probe, which takes ``window.WebSocket`` when it loads) swaps in a
WebSocket subclass that only records its instances and when they were made and closed, so a
test can wait until the probe's socket is really down and see the retry delays; with
``window.__refuse`` set, ``send`` throws for frames containing that text, so those events can
only leave through the beacon.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rsproxy.testing import DaemonProcess, LoopbackServer, fixture_site

TRACK_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  const log = [];
  class Tracked extends Native {
    constructor(...args) {
      super(...args);
      const entry = { ws: this, made: performance.now(), closed: null };
      log.push(entry);
      this.addEventListener('close', () => { entry.closed = performance.now(); });
    }
    send(data) {
      if (window.__refuse && String(data).includes(window.__refuse)) throw new Error('refused');
      return super.send(data);
    }
  }
  Object.defineProperty(window, '__sockets', { value: log });
  window.WebSocket = Tracked;
})();
"""

OPEN = "() => window.__sockets.some((s) => s.ws.readyState === 1)"
NONE_OPEN = (
    "() => window.__sockets.length > 0 && !window.__sockets.some((s) => s.ws.readyState === 1)"
)


@pytest.fixture(scope="module")
def upstream() -> Iterator[LoopbackServer]:
    with LoopbackServer(fixture_site) as server:
        yield server


def _daemon(home: Path, upstream: LoopbackServer, *extra: str) -> DaemonProcess:
    return DaemonProcess(home, "--target", f":{upstream.port}", *extra, project="transport")


@pytest.fixture
def proxy(tmp_path: Path, upstream: LoopbackServer) -> Iterator[DaemonProcess]:
    with _daemon(tmp_path / "home", upstream) as process:
        yield process


def _restart(old: DaemonProcess, upstream: LoopbackServer, timeout: float = 90.0) -> DaemonProcess:
    """A new daemon on the old one's port and home; retried while the port is still taken."""
    assert old.state is not None
    port = str(old.state.proxy_port)
    deadline = time.monotonic() + timeout
    while True:
        new = _daemon(old.home, upstream, "--port", port)
        try:
            return new.start()
        except RuntimeError as exc:
            if "in use" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _open_page(page: Any, daemon: DaemonProcess) -> str:
    """Load a page through the proxy; its page id once the daemon has heard from its socket."""
    page.add_init_script(TRACK_SOCKETS)
    page.goto(daemon.proxy_url + "/page/transport")
    page_id: str = page.evaluate("window.__rsproxy.page_id")
    _wait_connected(daemon, page_id)
    return page_id


def _wait_connected(daemon: DaemonProcess, page_id: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    with daemon.api() as api:
        while True:
            pages = api.get("/api/pages").json()["pages"]
            if any(p["page_id"] == page_id for p in pages):
                return
            assert time.monotonic() < deadline, f"page {page_id} never connected: {pages}"
            time.sleep(0.1)


def _messages(events: list[dict[str, Any]], page_id: str, prefix: str) -> list[str]:
    return [
        e["data"]["message"]
        for e in events
        if e["page_id"] == page_id and e["data"]["message"].startswith(prefix)
    ]


def _status(daemon: DaemonProcess) -> dict[str, Any]:
    with daemon.api() as api:
        response = api.get("/api/status")
        response.raise_for_status()
        status: dict[str, Any] = response.json()
        return status


@pytest.mark.browser
def test_events_logged_while_the_socket_is_down_arrive_after_reconnect(
    tmp_path: Path, upstream: LoopbackServer, page: Any
) -> None:
    first = _daemon(tmp_path / "home", upstream).start()
    second: DaemonProcess | None = None
    try:
        page_id = _open_page(page, first)
        stopped_ms = time.time() * 1000
        first.stop()
        page.wait_for_function(NONE_OPEN, timeout=10_000)

        wanted = [f"while down {n}" for n in range(1, 4)]
        for message in wanted:
            page.evaluate("(m) => console.error(m)", message)
        # Down long enough to see a few retries, each later than the one before.
        time.sleep(4)
        logged_ms = time.time() * 1000

        second = _restart(first, upstream)
        events = second.wait_for_events(
            lambda evs: len(_messages(evs, page_id, "while down")) >= len(wanted),
            kind="console",
            timeout=60,
        )
        page.wait_for_function(OPEN, timeout=5_000)
        got = [
            e for e in events if e["page_id"] == page_id and "while down" in e["data"]["message"]
        ]
        assert sorted(e["data"]["message"] for e in got) == wanted  # each once
        for event in got:
            assert event["source"] == "probe" and event["data"]["level"] == "error"
            # The page's own timestamps: logged while the daemon was down, not on reconnect.
            assert stopped_ms - 1000 <= event["ts"] <= logged_ms + 1000, event

        # The retries while down: the first after ~500 ms, then each delay about twice the last
        # (jitter is ±25 %, so consecutive delays grow by a factor between 1.2 and 3.3).
        sockets = page.evaluate(
            "() => window.__sockets.map((s) => ({ made: s.made, closed: s.closed }))"
        )
        assert len(sockets) >= 4, sockets  # the first socket, then at least three retries
        lost = sockets[0]["closed"]
        assert lost is not None
        made = [s["made"] for s in sockets[1:]]
        delays = [made[0] - lost] + [b - a for a, b in itertools.pairwise(made)]
        assert 500 * 0.75 - 50 <= delays[0] <= 500 * 1.25 + 500, delays
        # Compared below the 30 s cap only (a delay under 12 s is at most 8 s before jitter).
        for before, after in itertools.pairwise(delays):
            if before < 12_000:
                assert after > before * 1.1, delays
        assert max(delays) <= 30_000 * 1.25 + 1000, delays
    finally:
        if second is not None:
            second.stop()
        first.stop()


@pytest.mark.browser
@pytest.mark.parametrize("leave", ["close", "navigate"])
def test_a_closing_page_sends_its_last_events_by_beacon(
    proxy: DaemonProcess, page: Any, leave: str
) -> None:
    page_id = _open_page(page, proxy)
    marker = f"last words before {leave}"
    # Logged and left at once, well inside the 250 ms batch timer: only the pagehide flush
    # (a beacon) can deliver it.
    page.evaluate("(m) => console.error(m)", marker)
    if leave == "close":
        page.close(run_before_unload=True)
    else:
        page.goto("about:blank")
    events = proxy.wait_for_events(
        lambda evs: bool(_messages(evs, page_id, marker)), kind="console", timeout=15
    )
    assert _messages(events, page_id, marker) == [marker]


@pytest.mark.browser
def test_events_the_socket_cannot_send_leave_in_the_pagehide_beacon(
    proxy: DaemonProcess, page: Any
) -> None:
    page_id = _open_page(page, proxy)
    marker = "only by beacon"
    page.evaluate("(m) => { window.__refuse = m; console.error(m); }", marker)
    # The socket is open but refuses the frame, so the event stays queued past its batch timer.
    time.sleep(1.5)
    assert not _messages(proxy.events("console"), page_id, marker)
    page.goto("about:blank")
    events = proxy.wait_for_events(
        lambda evs: bool(_messages(evs, page_id, marker)), kind="console", timeout=15
    )
    assert _messages(events, page_id, marker) == [marker]


@pytest.mark.browser
def test_the_queue_keeps_the_newest_1000_events_and_reports_the_dropped_count(
    tmp_path: Path, upstream: LoopbackServer, page: Any
) -> None:
    first = _daemon(tmp_path / "home", upstream).start()
    second: DaemonProcess | None = None
    try:
        page_id = _open_page(page, first)
        time.sleep(2.5)  # past the page's resource summary (2 s after load): nothing else queued
        first.stop()
        page.wait_for_function(NONE_OPEN, timeout=10_000)
        page.evaluate("() => { for (let i = 0; i < 1200; i++) console.log('q ' + i); }")

        second = _restart(first, upstream)
        page.wait_for_function(OPEN, timeout=60_000)

        def done(evs: list[dict[str, Any]]) -> bool:
            return "q 1199" in _messages(evs, page_id, "q ")

        second.wait_for_events(done, kind="console", timeout=20)
        time.sleep(1)  # anything still in flight
        status = _status(second)
        received = status["probe"]["events"]
        events = second.events("console", limit=1000)
        got = _messages(events, page_id, "q ")
        indices = sorted(int(m.split()[1]) for m in got)

        assert received <= 1000, status["probe"]  # every event the new daemon was sent
        assert len(got) == len(set(got)) <= 1000
        # The oldest were dropped: what is left is the newest, with no gap.
        assert indices == list(range(1200 - len(indices), 1200)), indices[:5]
        assert len(indices) >= 990, len(indices)
        assert status["probe"]["page_dropped"] >= 200, status["probe"]
        assert status["probe"]["page_dropped"] + received >= 1200, status["probe"]
    finally:
        if second is not None:
            second.stop()
        first.stop()
