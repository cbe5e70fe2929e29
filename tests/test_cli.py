"""The command line: pipeline checks, start refusals, hot reload, status/stop/requests.

Commands that only read files run in-process through Typer's runner; everything that starts a
daemon runs the real `rsproxy start` in a subprocess.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from rsproxy.cli import app
from rsproxy.pipeline.spec import default_pipeline_path
from rsproxy.testing import DaemonProcess, LoopbackServer, fixture_site, free_port

runner = CliRunner()

BROKEN_PIPELINE = """\
version: 1
stages:
  - type: redcat
  - type: redact
    headerz: [authorization]
  - type: persist
    on_error: explode
"""


def _rsproxy(*args: str, home: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rsproxy", *args],
        env={**__import__("os").environ, "RSPROXY_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def site() -> LoopbackServer:
    with LoopbackServer(fixture_site) as server:
        yield server


def test_pipeline_validate_accepts_the_default() -> None:
    result = runner.invoke(app, ["pipeline", "validate", str(default_pipeline_path())])
    assert result.exit_code == 0, result.output
    assert "valid (redact → normalize → detect → catalog → persist)" in result.output


def test_pipeline_validate_reports_every_problem_with_its_place(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN_PIPELINE)
    result = runner.invoke(app, ["pipeline", "validate", str(broken)])
    assert result.exit_code == 2
    out = result.output
    assert "3 problems" in out
    assert "stages[0] (redcat), line 3: unknown stage type 'redcat'; did you mean 'redact'?" in out
    assert "stages[1] (redact), line 4: headerz: unknown key; did you mean 'headers'?" in out
    assert "stages[2] (persist), line 6: on_error: must be one of" in out


def test_pipeline_stages_lists_schema_and_example() -> None:
    result = runner.invoke(app, ["pipeline", "stages", "--json"])
    assert result.exit_code == 0, result.output
    stages = {s["name"]: s for s in json.loads(result.output)}
    assert {"redact", "persist"} <= set(stages)
    assert "body_keys" in stages["redact"]["config_schema"]["properties"]
    assert stages["redact"]["example"].startswith("- type: redact")
    human = runner.invoke(app, ["pipeline", "stages"])
    assert "query_params" in human.output and "example:" in human.output


def test_start_with_invalid_pipeline_exits_before_binding(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN_PIPELINE)
    port = free_port()
    result = _rsproxy(
        "start", "--target", ":9", "--port", str(port), "--pipeline", str(broken), home=tmp_path
    )
    assert result.returncode == 2
    assert "not starting: the pipeline is invalid" in result.stderr
    assert "did you mean 'redact'" in result.stderr and "line 6" in result.stderr
    with socket.socket() as sock:  # nothing was bound, so the port is still ours to take
        sock.bind(("127.0.0.1", port))
    assert not list(tmp_path.glob("projects/*/daemon.json"))


def test_start_refuses_a_bad_target_and_a_taken_port(tmp_path: Path) -> None:
    bad = _rsproxy("start", "--target", "ftp://example.com", home=tmp_path)
    assert bad.returncode == 2
    assert "invalid --target 'ftp://example.com'" in bad.stderr and ":3000" in bad.stderr
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        busy = _rsproxy("start", "--target", ":9", "--port", str(taken), home=tmp_path)
    assert busy.returncode == 1
    assert f"port {taken} on 127.0.0.1 is in use" in busy.stderr


def test_hot_reload_applies_valid_edits_and_keeps_running_on_invalid_ones(
    tmp_path: Path, site: LoopbackServer
) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text("version: 1\nstages:\n  - type: redact\n  - type: persist\n")
    with DaemonProcess(
        tmp_path, "--target", f":{site.port}", "--pipeline", str(pipeline)
    ) as daemon:

        def send(marker: str) -> None:
            httpx.get(
                f"{daemon.proxy_url}/echo/{marker}", headers={"X-Api-Key": "k-123"}, trust_env=False
            )

        def api_key_of(marker: str) -> str:
            events = daemon.wait_for_events(
                lambda evs: any(e["data"]["path"] == f"/echo/{marker}" for e in evs), kind="http"
            )
            event = next(e for e in events if e["data"]["path"] == f"/echo/{marker}")
            return {k.lower(): v for k, v in event["data"]["request_headers"]}["x-api-key"]

        send("before")
        assert api_key_of("before") == "[REDACTED]"

        pipeline.write_text(
            "version: 1\nstages:\n  - type: redact\n    replacement: '[HIDDEN]'\n  - type: persist\n"
        )
        _wait_status(daemon, lambda s: s["pipeline"]["reloads"] == 1)
        send("after")
        assert api_key_of("after") == "[HIDDEN]"

        pipeline.write_text("version: 1\nstages:\n  - type: redcat\n")
        status = _wait_status(daemon, lambda s: s["pipeline"]["last_error"] is not None)
        assert "did you mean 'redact'" in status["pipeline"]["last_error"]
        assert status["pipeline"]["reloads"] == 1 and status["pipeline"]["stages"] == [
            "redact",
            "persist",
        ]
        send("still")
        assert api_key_of("still") == "[HIDDEN]"


def _wait_status(daemon: DaemonProcess, predicate, timeout: float = 15.0) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    with daemon.api() as api:
        while True:
            status = api.get("/api/status").json()
            if predicate(status):
                return status  # type: ignore[no-any-return]
            if time.monotonic() > deadline:
                raise AssertionError(f"status never matched: {status}")
            time.sleep(0.1)


def test_status_requests_stop_and_offline_reads(tmp_path: Path, site: LoopbackServer) -> None:
    daemon = DaemonProcess(tmp_path, "--target", f":{site.port}", project="cli").start()
    try:
        httpx.get(f"{daemon.proxy_url}/page/listed?x=1", trust_env=False)
        daemon.wait_for_events(lambda evs: len(evs) >= 1, kind="http")

        status = _rsproxy("status", "--project", "cli", "--json", home=tmp_path)
        assert status.returncode == 0, status.stderr
        info = json.loads(status.stdout)
        assert info["running"] is True and info["proxy_url"] == daemon.proxy_url
        assert info["events"]["dropped"] == 0

        again = _rsproxy("start", "--project", "cli", "--target", f":{site.port}", home=tmp_path)
        assert again.returncode == 1 and "already running for project 'cli'" in again.stderr

        live = _rsproxy("requests", "--project", "cli", home=tmp_path)
        assert "/page/listed?x=1" in live.stdout and " 200 " in live.stdout

        stopped = _rsproxy("stop", "--project", "cli", home=tmp_path)
        assert stopped.returncode == 0, stopped.stderr
        assert daemon.proc is not None and daemon.proc.wait(10) == 0
    finally:
        daemon.stop()

    not_running = _rsproxy("status", "--project", "cli", home=tmp_path)
    assert not_running.returncode == 1 and "not running" in not_running.stdout
    offline = _rsproxy("requests", "--project", "cli", "--json", home=tmp_path)
    assert offline.returncode == 0, offline.stderr
    rows = json.loads(offline.stdout)
    assert [r["data"]["path"] for r in rows] == ["/page/listed"]


def test_requests_without_any_capture_says_so(tmp_path: Path) -> None:
    result = _rsproxy("requests", "--project", "empty", home=tmp_path)
    assert result.returncode == 1
    assert "nothing has been captured for this project yet" in result.stderr


def test_start_supervises_the_dev_server_command_and_stops_its_group(tmp_path: Path) -> None:
    import os

    import psutil

    port = free_port()
    command = ["--", sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    daemon = DaemonProcess(tmp_path, "--target", f":{port}", *command, project="supervised").start()
    try:
        deadline = time.monotonic() + 20
        while True:  # the dev server needs a moment to listen; until then the proxy answers 502
            answer = httpx.get(daemon.proxy_url + "/", trust_env=False)
            if answer.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert answer.status_code == 200 and "Directory listing" in answer.text
        assert daemon.proc is not None
        children = psutil.Process(daemon.proc.pid).children()
        server = next(c for c in children if "http.server" in " ".join(c.cmdline()))
        group = os.getpgid(server.pid)
        assert group != os.getpgid(daemon.proc.pid), "the command must run in its own process group"
    finally:
        assert daemon.stop() == 0, daemon.output()
    with pytest.raises(ProcessLookupError):
        os.killpg(group, 0)
