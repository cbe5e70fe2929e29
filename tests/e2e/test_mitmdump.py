"""The addons work in a user's own mitmproxy: `mitmdump -s addons/rsproxy.py` (DESIGN §2).

The same runtime comes up from mitmproxy's options, and a page loaded through plain mitmdump is
injected, captured and reports back through the probe, like under `rsproxy start`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rsproxy.state import DaemonState
from rsproxy.testing import LoopbackServer, fixture_site, free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.browser
def test_mitmdump_with_the_addon_script_captures_and_injects(tmp_path: Path, page: Any) -> None:
    mitmdump = Path(sys.executable).with_name("mitmdump")
    port = free_port()
    log = tmp_path / "mitmdump.log"
    with LoopbackServer(fixture_site) as site, log.open("w") as log_file:
        proc = subprocess.Popen(
            [
                str(mitmdump),
                "-q",
                "-s",
                str(REPO / "addons" / "rsproxy.py"),
                "--mode",
                f"reverse:{site.url}",
                "--listen-host",
                "127.0.0.1",
                "-p",
                str(port),
                "--set",
                "rsproxy_project=standalone",
                "--set",
                f"confdir={tmp_path / 'mitmproxy'}",
            ],
            env={**os.environ, "RSPROXY_HOME": str(tmp_path)},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            state_path = tmp_path / "projects" / "standalone" / "daemon.json"
            deadline = time.monotonic() + 30
            state = None
            while state is None and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.1)
                state = DaemonState.read(state_path)
            assert state is not None, (
                proc.stdout.read() if proc.stdout and proc.poll() is not None else "no state file"
            )

            page.goto(f"http://127.0.0.1:{port}/page/standalone")
            assert (
                page.evaluate(
                    "document.querySelectorAll('script[src=\"/__rsproxy/probe.js\"]').length"
                )
                == 1
            )
            page.wait_for_function("window.__rsproxy && window.__rsproxy.page_id")
            page.evaluate("console.warn('from standalone mitmdump')")

            import httpx

            with httpx.Client(
                base_url=state.api_url,
                headers={"Authorization": f"Bearer {state.token}"},
                trust_env=False,
            ) as api:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    events = api.get("/api/events", params={"kind": "http,console"}).json()[
                        "events"
                    ]
                    kinds = {
                        (e["kind"], e["data"].get("path") or e["data"].get("message"))
                        for e in events
                    }
                    if {
                        ("http", "/page/standalone"),
                        ("console", "from standalone mitmdump"),
                    } <= kinds:
                        break
                    time.sleep(0.1)
                else:
                    raise AssertionError(f"not captured: {kinds}")
        finally:
            proc.terminate()
            proc.wait(20)
    assert not state_path.exists(), "the state file outlived the process"
