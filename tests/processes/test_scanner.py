"""rsproxy/processes/scanner.py against real processes: a uvicorn app (with its reload worker),
``python -m http.server``, a real Vite dev server from npm, and the database servers of this
machine.

The dev servers run in a folder that is a git root, so their project is that folder's name; one
more http.server runs outside any project to be listed apart. Every process is started in its own
process group and SIGKILLed with it at teardown.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from rsproxy import testing
from rsproxy.errors import NoSuchProcessError
from rsproxy.processes import kill, scan
from rsproxy.processes.projects import ProjectResolver, record_project_directory
from rsproxy.processes.scanner import MEMORY_CRITICAL_BYTES, MEMORY_HIGH_BYTES, memory_warning
from rsproxy.project import Project

ASGI_APP = '''"""A tiny ASGI app for the scanner's tests."""


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})
'''


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("rsproxy-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RSPROXY_HOME", str(folder))
        yield folder


@pytest.fixture(scope="module")
def servers(
    home: Path,
    module_spawn: Any,
    module_project_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    project = module_project_dir
    (project / "app.py").write_text(ASGI_APP)
    uvicorn_port, http_port, outside_port = (testing.free_port() for _ in range(3))
    uvicorn = module_spawn(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app:app",
            "--reload",
            "--host",
            "127.0.0.1",
            "--port",
            str(uvicorn_port),
        ],
        cwd=project,
        port=uvicorn_port,
    )
    http = module_spawn(
        [sys.executable, "-m", "http.server", str(http_port), "--bind", "127.0.0.1"],
        cwd=project,
        port=http_port,
    )
    outside = tmp_path_factory.mktemp("no-project")
    stray = module_spawn(
        [sys.executable, "-m", "http.server", str(outside_port), "--bind", "127.0.0.1"],
        cwd=outside,
        port=outside_port,
    )
    return {
        "project": project,
        "uvicorn": (uvicorn, uvicorn_port),
        "http": (http, http_port),
        "stray": (stray, outside_port),
    }


@pytest.fixture(scope="module")
def result(servers: dict[str, Any]) -> dict[str, Any]:
    return scan()


def _entries(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for g in result["projects"] for e in g["processes"]] + result["unassociated"]


def _entry(result: dict[str, Any], pid: int) -> dict[str, Any]:
    found = [e for e in _entries(result) if e["pid"] == pid]
    assert found, (
        f"pid {pid} not listed; listed: {[(e['pid'], e['type']) for e in _entries(result)]}"
    )
    return found[0]


def test_uvicorn_is_found_with_its_port_and_project(
    result: dict[str, Any], servers: dict[str, Any]
) -> None:
    proc, port = servers["uvicorn"]
    entry = _entry(result, proc.pid)
    assert (entry["type"], entry["category"], entry["label"]) == (
        "uvicorn",
        "dev_server",
        "uvicorn app:app",
    )
    assert port in entry["ports"]
    assert entry["project"]["name"] == servers["project"].name
    assert entry["project"]["source"] == "git"
    assert entry["cwd"] == str(servers["project"])


def test_uvicorn_reload_worker_is_folded_into_its_entry(
    result: dict[str, Any], servers: dict[str, Any]
) -> None:
    proc, _ = servers["uvicorn"]
    entry = _entry(result, proc.pid)
    workers = [c.pid for c in psutil.Process(proc.pid).children()]
    assert workers, "uvicorn --reload should have started a worker process"
    assert {h["pid"] for h in entry["helpers"]} >= set(workers)
    assert not any(e["pid"] in workers for e in _entries(result))
    assert entry["tree_rss_bytes"] > entry["rss_bytes"] > 0


def test_http_server_is_found_in_the_project(
    result: dict[str, Any], servers: dict[str, Any]
) -> None:
    proc, port = servers["http"]
    entry = _entry(result, proc.pid)
    assert (entry["type"], entry["ports"]) == ("http.server", [port])
    assert entry["label"] == f"python -m http.server {port}"
    group = next(g for g in result["projects"] if g["name"] == servers["project"].name)
    assert proc.pid in {e["pid"] for e in group["processes"]}
    assert group["root"] == str(servers["project"])


def test_process_outside_any_project_is_listed_apart(
    result: dict[str, Any], servers: dict[str, Any]
) -> None:
    proc, port = servers["stray"]
    assert proc.pid in {e["pid"] for e in result["unassociated"]}
    assert _entry(result, proc.pid)["project"] is None
    assert _entry(result, proc.pid)["ports"] == [port]


def test_every_entry_has_its_figures(result: dict[str, Any], servers: dict[str, Any]) -> None:
    entry = _entry(result, servers["http"][0].pid)
    started = psutil.Process(entry["pid"]).create_time() * 1000
    assert entry["started_ms"] == pytest.approx(started)
    assert entry["uptime_s"] >= 0
    assert entry["cpu_percent"] is not None and entry["cpu_percent"] >= 0
    assert entry["user"] == psutil.Process().username()
    assert entry["cmdline"][1:3] == ["-m", "http.server"]
    assert entry["stale"] is False  # started seconds ago: cannot be stale yet
    assert entry["memory_warning"] is None
    assert result["counts"]["dev_processes"] >= 3
    assert json.loads(json.dumps(result)) == result  # plain JSON, as the MCP tools will send it


def test_the_scanning_process_is_not_listed(result: dict[str, Any]) -> None:
    own = psutil.Process().pid
    assert own not in {e["pid"] for e in _entries(result)}
    assert own not in {e["pid"] for e in scan(include_all=True, cpu_interval=0)["unassociated"]}


def test_all_lists_processes_that_are_not_dev_processes(spawn: Any, tmp_path: Path) -> None:
    sleeper = spawn(["sleep", "60"], cwd=tmp_path)
    assert sleeper.pid not in {e["pid"] for e in _entries(scan(cpu_interval=0))}
    listed = _entry(scan(include_all=True, cpu_interval=0), sleeper.pid)
    assert (listed["type"], listed["dev"], listed["label"]) == ("other", False, "sleep")


def test_a_zombie_is_skipped_and_cannot_be_killed() -> None:
    # A child that exited and was not waited for is a zombie until this process reaps it.
    child = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 5
        while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.02)
        found = scan(include_all=True, cpu_interval=0)
        assert child.pid not in {e["pid"] for e in _entries(found)}
        assert found["counts"]["zombies_skipped"] >= 1
        with pytest.raises(NoSuchProcessError, match="already exited"):
            kill(child.pid)
    finally:
        child.wait(5)


def test_vite_dev_server_is_found(
    vite_bin: Path, spawn: Any, project_dir: Path, home: Path
) -> None:
    port = testing.free_port()
    vite = spawn(
        [
            "node",
            str(vite_bin),
            str(vite_bin.parents[3]),
            "--port",
            str(port),
            "--strictPort",
            "--host",
            "127.0.0.1",
        ],
        cwd=project_dir,
        port=port,
        timeout=60,
    )
    entry = _entry(scan(), vite.pid)
    assert (entry["type"], entry["category"], entry["label"]) == ("vite", "dev_server", "Vite")
    assert port in entry["ports"]
    assert entry["project"]["name"] == project_dir.name


def test_project_recorded_by_rsproxy_start_names_the_process(
    home: Path, servers: dict[str, Any]
) -> None:
    # `rsproxy start --project storefront` from the checkout records it; the git folder's own
    # name then loses to the project the user chose.
    record_project_directory(Project("storefront"), servers["project"])
    proc, _ = servers["http"]
    found = ProjectResolver().for_process(proc.pid, str(servers["project"]), [])
    assert found is not None
    assert (found.name, found.source, found.rsproxy) == ("storefront", "rsproxy", True)
    assert _entry(scan(cpu_interval=0), proc.pid)["project"]["name"] == "storefront"
    nested = ProjectResolver().for_process(proc.pid, str(servers["project"] / "src" / "x"), [])
    assert nested is not None and nested.name == "storefront"


def test_memory_warning_thresholds() -> None:
    assert memory_warning(None) is None
    assert memory_warning(MEMORY_HIGH_BYTES) is None
    assert memory_warning(MEMORY_HIGH_BYTES + 1) == "high"
    assert memory_warning(MEMORY_CRITICAL_BYTES + 1) == "critical"
    assert MEMORY_HIGH_BYTES == 500 * 2**20 and MEMORY_CRITICAL_BYTES == 2**30


DATABASES = [("postgres", 5432, "PostgreSQL"), ("mariadb|mysql", 3306, "MariaDB or MySQL")]
DATABASES += [("redis", 6379, "Redis")]


@pytest.mark.services
@pytest.mark.parametrize(("types", "port", "what"), DATABASES)
def test_local_database_servers_are_found_with_their_ports(
    types: str, port: int, what: str
) -> None:
    result = scan(cpu_interval=0)
    holders = [e for e in _entries(result) if port in e["ports"]]
    if not holders:
        message = f"no {what} server listens on port {port} on this machine"
        if testing.services_required():
            pytest.fail(f"RSPROXY_REQUIRE_SERVICES=1 but {message}")
        pytest.skip(f"SERVICE TEST SKIPPED: {message}")
    entry = holders[0]
    assert entry["type"] in types.split("|")
    assert entry["category"] == "database"
    assert entry["dev"] is True
