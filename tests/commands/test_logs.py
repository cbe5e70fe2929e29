"""``rsproxy logs`` end to end: ``rsproxy start --target :PORT -- CMD`` runs a real dev server,
proxies it, stores what it prints, shows it while running and after stopping, and leaves no
process of the command's group behind after Ctrl+C (SIGINT).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from rsproxy.events import new_id
from rsproxy.store import SessionInfo, Store
from rsproxy.testing import DaemonProcess, free_port, run_cli


def _logs(home: Path, *args: str) -> dict[str, Any]:
    answer = run_cli(home, "logs", "--project", "logged", "--json", *args)
    assert answer.returncode == 0, answer.stderr
    result: dict[str, Any] = json.loads(answer.stdout)
    return result


def test_start_supervises_a_command_whose_output_rsproxy_logs_shows(tmp_path: Path) -> None:
    port = free_port()
    # A background `sleep` shares the group: it must be gone too after rsproxy stops.
    script = (
        "sleep 300 & echo out-marker; echo err-marker >&2; "
        f"exec {sys.executable} -m http.server {port} --bind 127.0.0.1"
    )
    daemon = DaemonProcess(
        tmp_path, "--target", f":{port}", "--", "sh", "-c", script, project="logged"
    )
    daemon.start()
    group = None
    try:
        assert daemon.proc is not None
        deadline = time.monotonic() + 20
        while True:  # the dev server needs a moment to listen; until then the proxy answers 502
            page = httpx.get(daemon.proxy_url + "/", trust_env=False)
            if page.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert page.status_code == 200 and "Directory listing" in page.text
        assert httpx.get(daemon.proxy_url + "/logs-probe", trust_env=False).status_code == 404

        server = next(
            c for c in psutil.Process(daemon.proc.pid).children() if "http.server" in c.cmdline()
        )
        group = os.getpgid(server.pid)
        members = [p for p in psutil.process_iter(["pid"]) if _pgid(p.pid) == group]
        assert any(p.name() == "sleep" for p in members), "the background sleep is in the group"

        # While running: through the daemon's API.
        deadline = time.monotonic() + 15
        while True:
            live = _logs(tmp_path)
            text = [line["line"] for line in live["lines"]]
            if any("GET /logs-probe" in line for line in text) or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert live["live"] is True
        by_line = {line["line"]: line for line in live["lines"]}
        assert by_line["out-marker"]["stream"] == "stdout"
        assert by_line["err-marker"]["stream"] == "stderr"
        assert by_line["out-marker"]["pid"] == server.pid  # sh exec'd into the server
        assert "http.server" in by_line["out-marker"]["command"]
        request = [
            line for line in live["lines"] if '"GET /logs-probe HTTP/1.1" 404' in line["line"]
        ]
        assert request and request[0]["stream"] == "stderr"

        narrowed = _logs(tmp_path, "--stream", "stderr", "--grep", "GET /[a-z-]+", "--tail", "1")
        assert [line["line"] for line in narrowed["lines"]] == [request[0]["line"]]

        assert "out-marker" in daemon.output()  # echoed to rsproxy's terminal as well
    finally:
        assert daemon.stop(signal.SIGINT) == 0, daemon.output()

    # After Ctrl+C nothing of the command's process group is left.
    assert group is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(group, 0)
    assert not [p for p in psutil.process_iter(["pid"]) if _pgid(p.pid) == group]

    # Stopped: the same lines from the read-only store.
    offline = run_cli(tmp_path, "logs", "--project", "logged")
    assert offline.returncode == 0, offline.stderr
    assert "out | out-marker" in offline.stdout and "err | err-marker" in offline.stdout
    assert _logs(tmp_path)["live"] is False
    bad = run_cli(tmp_path, "logs", "--project", "logged", "--grep", "(")
    assert bad.returncode == 1 and "bad --grep pattern" in bad.stderr


def _pgid(pid: int) -> int | None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        return os.getpgid(pid)
    return None


def test_logs_without_a_supervised_command_says_how_to_get_some(tmp_path: Path) -> None:
    # A session captured without `-- CMD` (written straight to the project's store).
    store = Store.open(tmp_path / "projects" / "plain" / "rsproxy.duckdb")
    store.start_session(SessionInfo(new_id(), "plain", "proxy", None, time.time() * 1000))
    store.close()
    answer = run_cli(tmp_path, "logs", "--project", "plain")
    assert answer.returncode == 0, answer.stderr
    assert "rsproxy start --target :PORT -- CMD" in answer.stdout
