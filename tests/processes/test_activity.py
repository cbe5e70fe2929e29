"""rsproxy/processes/activity.py: the stale verdict and its two signals, read from real files, a
real store and a real daemon.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from rsproxy import testing
from rsproxy.events import new_id
from rsproxy.processes import scan
from rsproxy.processes.activity import Changes, TrafficIndex, newest_change, staleness
from rsproxy.processes.projects import ProjectResolver
from rsproxy.project import Project
from rsproxy.store import SessionInfo, Store
from rsproxy.testing import DaemonProcess

HOUR_AGO = time.time() - 3600


def _write(path: Path, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    os.utime(path, (mtime, mtime))


def test_newest_change_skips_dependency_vcs_and_build_folders(tmp_path: Path) -> None:
    _write(tmp_path / "src" / "app.py", HOUR_AGO)
    for ignored in ("node_modules/react/index.js", ".git/index", "dist/app.js", ".venv/x.py"):
        _write(tmp_path / ignored, time.time())
    changes = newest_change(tmp_path)
    assert changes.complete is True
    assert changes.newest_ms == pytest.approx(HOUR_AGO * 1000, abs=1000)
    _write(tmp_path / "src" / "new.py", time.time())
    assert newest_change(tmp_path).newest_ms == pytest.approx(time.time() * 1000, abs=5000)


def test_a_walk_over_its_budget_is_incomplete(tmp_path: Path) -> None:
    for n in range(30):
        _write(tmp_path / f"f{n}.txt", HOUR_AGO)
    assert newest_change(tmp_path, max_entries=10).complete is False
    assert newest_change(tmp_path / "missing") == Changes(None, True, 0)


NOW = 10_000_000.0
WINDOW = 1800.0
OLD = NOW - 2 * WINDOW * 1000
RECENT = NOW - 60_000


@pytest.mark.parametrize(
    ("started", "traffic", "known", "changes", "stale", "reason"),
    [
        (RECENT, None, True, Changes(OLD, True, 1), False, "started less than"),
        (OLD, None, False, Changes(OLD, True, 1), False, "traffic unknown"),
        (OLD, RECENT, True, Changes(OLD, True, 1), False, "recent traffic"),
        (OLD, OLD, True, None, False, "no project folder"),
        (OLD, OLD, True, Changes(OLD, False, 9), False, "too large"),
        (OLD, None, True, Changes(RECENT, True, 1), False, "recent file changes"),
        (OLD, OLD, True, Changes(OLD, True, 1), True, "no traffic through rsproxy"),
        (OLD, None, True, Changes(None, True, 0), True, "no file changes for 30 min"),
    ],
)
def test_stale_only_when_both_signals_are_known_and_old(
    started: float,
    traffic: float | None,
    known: bool,
    changes: Changes | None,
    stale: bool,
    reason: str,
) -> None:
    verdict = staleness(
        now_ms=NOW,
        started_ms=started,
        last_traffic_ms=traffic,
        traffic_known=known,
        changes=changes,
        stale_after_s=WINDOW,
    )
    assert verdict["stale"] is stale
    assert reason in verdict["reason"]
    assert verdict["last_traffic_ms"] == traffic


def test_traffic_is_read_from_a_stopped_projects_store(rsproxy_home: Path) -> None:
    port = testing.free_port()
    store = Store.open(Project("shop").store_path)
    session = new_id()
    store.start_session(
        SessionInfo(session, "shop", "proxy", f"http://127.0.0.1:{port}", time.time() * 1000)
    )
    event = testing.make_http_event()
    event.session_id, event.ts = session, 1_700_000_000_000.0
    store.write_events([event])
    store.close()
    index = TrafficIndex({})
    assert index.last_traffic([port], "shop") == (1_700_000_000_000.0, True)
    assert index.last_traffic([port + 1], "shop") == (None, True)
    assert index.last_traffic([port], "never-captured") == (None, True)


def test_an_old_server_in_an_untouched_project_is_stale(
    spawn: Any, project_dir: Path, rsproxy_home: Path
) -> None:
    _write(project_dir / "index.html", HOUR_AGO)
    port = testing.free_port()
    server = spawn(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=project_dir,
        port=port,
    )
    time.sleep(1.2)  # older than the 1 s window this test uses
    result = scan(stale_after_s=1.0, cpu_interval=0)
    entry = next(e for g in result["projects"] for e in g["processes"] if e["pid"] == server.pid)
    assert entry["stale"] is True
    assert entry["activity"]["last_file_change_ms"] == pytest.approx(HOUR_AGO * 1000, abs=1000)
    assert any(w["kind"] == "stale" and w["pid"] == server.pid for w in result["warnings"])

    _write(project_dir / "index.html", time.time())  # the developer is back at work
    again = scan(stale_after_s=1.0, cpu_interval=0)
    entry = next(e for g in again["projects"] for e in g["processes"] if e["pid"] == server.pid)
    assert entry["stale"] is False and "recent file changes" in entry["activity"]["reason"]


def test_traffic_through_a_live_daemon_is_seen(
    spawn: Any, project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = testing.free_port()
    server = spawn(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=project_dir,
        port=port,
    )
    home = tmp_path / "home"
    monkeypatch.setenv("RSPROXY_HOME", str(home))
    with DaemonProcess(home, "--target", f":{port}", project="live") as daemon:
        before = time.time() * 1000
        assert httpx.get(daemon.proxy_url + "/", trust_env=False).status_code == 200
        daemon.wait_for_events(lambda events: bool(events), kind="http")
        daemons = ProjectResolver().daemons
        assert daemon.proc is not None and daemon.proc.pid in daemons
        last, known = TrafficIndex(daemons).last_traffic([port], project_dir.name)
        assert known is True and last is not None and last >= before - 1000

        result = scan(cpu_interval=0)
        entries = [e for g in result["projects"] for e in g["processes"]]
        rsproxy = next(e for e in entries if e["pid"] == daemon.proc.pid)
        assert (rsproxy["type"], rsproxy["label"]) == ("rsproxy", "rsproxy daemon")
        assert rsproxy["project"]["name"] == "live"
        assert rsproxy["project"]["source"] == "rsproxy-daemon"
        assert daemon.state is not None and daemon.state.proxy_port in rsproxy["ports"]
        assert any(e["pid"] == server.pid for e in entries)
