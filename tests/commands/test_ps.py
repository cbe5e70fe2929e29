"""``rsproxy ps`` as a user runs it: a real CLI process against real processes.

Each test starts a ``python -m http.server`` in a folder that is a git root named
``storefront`` (its own process group, SIGKILLed at teardown) and drives ``rsproxy ps``,
``ps port``, ``ps kill`` and ``ps free-port`` in a subprocess.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rsproxy.testing import Spawner, free_port, run_cli


@pytest.fixture
def server(tmp_path: Path, spawn: Spawner) -> tuple[subprocess.Popen[bytes], int]:
    project = tmp_path / "storefront"
    (project / ".git").mkdir(parents=True)
    port = free_port()
    args = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    return spawn(args, cwd=project, port=port, timeout=20), port


@pytest.fixture
def sleeper(tmp_path: Path, spawn: Spawner) -> subprocess.Popen[bytes]:
    return spawn(["sleep", "60"], cwd=tmp_path)


def test_ps_lists_the_server_in_its_project(
    server: tuple[subprocess.Popen[bytes], int], tmp_path: Path
) -> None:
    proc, port = server
    answer = run_cli(tmp_path / "home", "ps", "--json")
    assert answer.returncode == 0, answer.stderr
    result = json.loads(answer.stdout)
    group = next(g for g in result["projects"] if g["name"] == "storefront")
    entry = next(e for e in group["processes"] if e["pid"] == proc.pid)
    assert (entry["type"], entry["ports"]) == ("http.server", [port])

    table = run_cli(tmp_path / "home", "ps")
    assert table.returncode == 0, table.stderr
    assert "project storefront" in table.stdout
    row = next(line for line in table.stdout.splitlines() if f" {proc.pid} " in line)
    assert "http.server" in row and str(port) in row
    assert "dev processes among" in table.stdout


def test_ps_port_names_the_holder(
    server: tuple[subprocess.Popen[bytes], int], tmp_path: Path
) -> None:
    proc, port = server
    held = run_cli(tmp_path, "ps", "port", str(port))
    assert held.returncode == 0, held.stderr
    assert f"pid {proc.pid}" in held.stdout and "project storefront" in held.stdout
    assert f"python -m http.server {port}" in held.stdout
    as_json = json.loads(run_cli(tmp_path, "ps", "port", str(port), "--json").stdout)
    assert as_json["owners"][0]["pid"] == proc.pid
    free = free_port()
    assert run_cli(tmp_path, "ps", "port", str(free)).stdout.strip() == f"port {free} is free"


def test_ps_free_port_stops_the_server(
    server: tuple[subprocess.Popen[bytes], int], tmp_path: Path
) -> None:
    proc, port = server
    freed = run_cli(tmp_path, "ps", "free-port", str(port))
    assert freed.returncode == 0, freed.stderr
    assert f"stopped python -m http.server {port} (pid {proc.pid}) with TERM" in freed.stdout
    assert f"port {port} is free" in freed.stdout
    assert proc.wait(5) == -signal.SIGTERM
    again = run_cli(tmp_path, "ps", "free-port", str(port))
    assert again.returncode == 0 and "already free" in again.stdout


def test_ps_kill_with_signal_kill(
    server: tuple[subprocess.Popen[bytes], int], tmp_path: Path
) -> None:
    proc, _ = server
    killed = run_cli(tmp_path, "ps", "kill", str(proc.pid), "--signal", "kill", "--json")
    assert killed.returncode == 0, killed.stderr
    assert json.loads(killed.stdout)["signal"] == "KILL"
    assert proc.wait(5) == -signal.SIGKILL


def test_ps_kill_refuses_a_non_dev_process_until_forced(
    sleeper: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    pid = str(sleeper.pid)
    refused = run_cli(tmp_path, "ps", "kill", pid)
    assert refused.returncode == 1
    assert f"pid {pid} (`sleep 60`) is not a recognised dev process" in refused.stderr
    assert "--force" in refused.stderr
    as_json = run_cli(tmp_path, "ps", "kill", pid, "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["reason"] == "not_dev"

    dry = run_cli(tmp_path, "ps", "kill", pid, "--force", "--dry-run")
    assert dry.returncode == 0 and f"would send TERM to sleep (pid {pid})" in dry.stdout
    assert sleeper.poll() is None

    forced = run_cli(tmp_path, "ps", "kill", pid, "--force")
    assert forced.returncode == 0, forced.stderr
    assert sleeper.wait(5) == -signal.SIGTERM


def test_ps_kill_refuses_pid_1(tmp_path: Path) -> None:
    refused = run_cli(tmp_path, "ps", "kill", "1", "--force")
    assert refused.returncode == 1 and "init process" in refused.stderr


def test_ps_help_explains_the_rules(tmp_path: Path) -> None:
    listing = run_cli(tmp_path, "ps", "--help")
    for command in ("kill", "port", "free-port"):
        assert command in listing.stdout
    kill_help = run_cli(tmp_path, "ps", "kill", "--help").stdout
    assert "Refused: PID 1" in kill_help
    for option in ("--signal", "--force", "--name", "--grace", "--dry-run", "--json"):
        assert option in kill_help
