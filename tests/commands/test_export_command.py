"""``rsproxy export`` (rsproxy/commands/export.py) run as a subprocess against a real capture.

Traffic goes through a real ``rsproxy start`` in front of the fixture site (rsproxy/testing.py);
the command must write the session as HAR to a file atomically or to stdout with its summary on
stderr, read the store once the daemon is gone, and fail clearly with no format, an unknown
session or no store at all. What the HAR holds is tested in tests/reports/test_export_har.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from rsproxy.testing import DaemonProcess, LoopbackServer, fixture_site, run_cli

PROJECT = "harcli"


def _traffic(proxy: str) -> None:
    with httpx.Client(base_url=proxy, trust_env=False, timeout=10) as client:
        client.get("/page/home")
        client.post(
            "/echo/orders",
            json={"item": 1},
            headers={"Authorization": "Bearer cli-secret-token"},
        )


def test_export_writes_har_to_a_file_or_stdout_live_and_from_the_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = tmp_path / "exports" / "nested" / "session.har"
    with (
        LoopbackServer(fixture_site) as upstream,
        DaemonProcess(home, "--target", f":{upstream.port}", project=PROJECT) as daemon,
    ):
        _traffic(daemon.proxy_url)
        daemon.wait_for_events(lambda evs: len(evs) >= 2, kind="http")
        live = run_cli(home, "export", "--har", "-o", str(out), "--project", PROJECT)
    assert live.returncode == 0, live.stderr
    assert live.stdout == ""
    assert live.stderr.strip() == f"exported HAR 1.2: 2 entries, 0 pages -> {out}"
    # Atomic: the document and nothing else (no temporary file left beside it).
    assert [p.name for p in out.parent.iterdir()] == ["session.har"]
    written = json.loads(out.read_text())
    entries = written["log"]["entries"]
    assert [(e["request"]["method"], e["request"]["url"].split("/", 3)[3]) for e in entries] == [
        ("GET", "page/home"),
        ("POST", "echo/orders"),
    ]
    assert "cli-secret-token" not in out.read_text()

    stored = run_cli(home, "export", "--har", "--project", PROJECT, "--session", "latest")
    assert stored.returncode == 0, stored.stderr
    assert json.loads(stored.stdout) == written
    assert "2 entries, 0 pages -> stdout" in stored.stderr

    bare = run_cli(home, "export", "--har", "--no-bodies", "--project", PROJECT)
    assert bare.returncode == 0, bare.stderr
    assert all(
        "text" not in e["response"]["content"] for e in json.loads(bare.stdout)["log"]["entries"]
    )

    unknown = run_cli(home, "export", "--har", "--project", PROJECT, "--session", "nope")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert "no session 'nope'" in unknown.stderr


def test_export_without_a_format_lists_the_valid_ones(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "home", "export", "--project", PROJECT)
    assert result.returncode == 2
    assert "no format given; choose one of: --har" in result.stderr


def test_export_without_a_store_says_so(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "home", "export", "--har", "--project", "never-captured")
    assert result.returncode == 1 and result.stdout == ""
    assert "no store at" in result.stderr and "never-captured" in result.stderr, result.stderr
    assert "nothing has been captured for this project yet" in result.stderr
