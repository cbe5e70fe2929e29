"""rsproxy/processes/kill.py: stopping real processes, and every refusal of the safety rules.

Each test starts the processes it acts on (its own process group, killed at teardown whatever
happens); the machine's own services are only ever the subject of refusals.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from rsproxy import testing
from rsproxy.errors import ConfigError, KillRefusedError, NoSuchProcessError, ProcessError
from rsproxy.processes import free_port, kill, port_owner
from rsproxy.processes.scanner import Snapshot
from rsproxy.testing import DaemonProcess

# A server that ignores SIGTERM: only the escalation to SIGKILL stops it.
STUBBORN = """
import signal, socket, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
server = socket.socket()
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen()
while True:
    time.sleep(1)
"""


def _http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(autouse=True)
def _home(rsproxy_home: Path) -> Path:
    return rsproxy_home  # no daemon of the machine's own RSPROXY_HOME is seen by these tests


def test_kill_stops_a_dev_server_and_frees_its_port(spawn: Any, project_dir: Path) -> None:
    port = testing.free_port()
    server = spawn(_http_server(port), cwd=project_dir, port=port)
    result = kill(server.pid)
    assert result["ok"] is True
    assert (result["type"], result["signal"], result["escalated_to_kill"]) == (
        "http.server",
        "TERM",
        False,
    )
    assert result["stopped"] == [server.pid] and result["still_running"] == []
    assert json.loads(json.dumps(result)) == result
    assert server.wait(5) == -signal.SIGTERM
    assert port_owner(port) == {"port": port, "in_use": False, "owners": []}


def test_term_is_followed_by_kill_after_the_grace_period(spawn: Any, project_dir: Path) -> None:
    (project_dir / "server.py").write_text(STUBBORN)
    port = testing.free_port()
    server = spawn([sys.executable, "server.py", str(port)], cwd=project_dir, port=port)
    # A Python process listening inside a project is recognised as a Python server.
    result = kill(server.pid, grace_s=0.3)
    assert result["type"] == "python"
    assert result["escalated_to_kill"] is True and result["ok"] is True
    assert server.wait(5) == -signal.SIGKILL
    assert result["duration_ms"] >= 300


def test_kill_with_kill_signal_is_immediate(spawn: Any, project_dir: Path) -> None:
    port = testing.free_port()
    server = spawn(_http_server(port), cwd=project_dir, port=port)
    result = kill(server.pid, "KILL")
    assert result["signal"] == "KILL" and result["ok"]
    assert server.wait(5) == -signal.SIGKILL


def test_dry_run_says_what_would_stop_and_sends_nothing(spawn: Any, project_dir: Path) -> None:
    port = testing.free_port()
    server = spawn(_http_server(port), cwd=project_dir, port=port)
    plan = kill(server.pid, dry_run=True)
    assert plan["dry_run"] is True and plan["tree"] == [server.pid] and plan["ports"] == [port]
    assert plan["project"]["name"] == project_dir.name
    assert _running(server.pid)


def test_pid_1_is_refused() -> None:
    with pytest.raises(KillRefusedError, match="init process") as refused:
        kill(1, force=True)
    assert refused.value.reason == "pid1"
    assert _running(1)


def test_own_process_and_its_parents_are_refused() -> None:
    for pid in (os.getpid(), os.getppid()):
        with pytest.raises(KillRefusedError, match="does not stop its own caller") as refused:
            kill(pid, force=True)
        assert refused.value.reason == "self"


def test_a_non_dev_process_is_refused_unless_forced(spawn: Any, tmp_path: Path) -> None:
    sleeper = spawn(["sleep", "60"], cwd=tmp_path)
    with pytest.raises(KillRefusedError, match="not a recognised dev process") as refused:
        kill(sleeper.pid)
    assert refused.value.reason == "not_dev" and refused.value.pid == sleeper.pid
    assert "force" in str(refused.value)
    assert _running(sleeper.pid)
    result = kill(sleeper.pid, force=True)
    assert result["ok"] and result["forced"] is True
    assert sleeper.wait(5) == -signal.SIGTERM


@pytest.mark.skipif(os.geteuid() != 0, reason="starting a process as another user needs root")
def test_another_users_process_is_refused_even_when_forced(spawn: Any) -> None:
    port = testing.free_port()
    # A dev server (http.server) whose only fault is its owner; / is a folder nobody may enter.
    server = spawn(_http_server(port), cwd=Path("/"), port=port, user="nobody")
    assert psutil.Process(server.pid).uids().real == pwd.getpwnam("nobody").pw_uid
    for force in (False, True):
        with pytest.raises(KillRefusedError, match="belongs to nobody, not to you") as refused:
            kill(server.pid, force=force)
        assert refused.value.reason == "foreign_user"
        assert "even with force" in str(refused.value)
    assert _running(server.pid)
    with pytest.raises(KillRefusedError, match="belongs to nobody"):
        free_port(port)
    assert _running(server.pid)


def test_a_foreign_process_of_this_machine_is_refused() -> None:
    # Whoever runs the suite, some process here belongs to someone else (as root: the database
    # servers' users; as a user: root's processes).
    mine = os.getuid()
    foreign = next(
        (
            p.info["pid"]
            for p in psutil.process_iter(["pid", "uids", "ppid"])
            if p.info["uids"] is not None
            and p.info["uids"].real != mine
            and p.info["pid"] > 2
            and p.info["ppid"] != 2
        ),
        None,
    )
    if foreign is None:
        pytest.skip("no process of another user is visible here")
    with pytest.raises(KillRefusedError) as refused:
        kill(foreign, force=True)
    assert refused.value.reason == "foreign_user"


def test_a_mismatched_name_is_refused(spawn: Any, project_dir: Path) -> None:
    port = testing.free_port()
    server = spawn(_http_server(port), cwd=project_dir, port=port)
    with pytest.raises(KillRefusedError, match="not 'vite'") as refused:
        kill(server.pid, name="vite")
    assert refused.value.reason == "name_mismatch"
    assert _running(server.pid)
    assert kill(server.pid, name="http.server")["ok"]


def test_unknown_pid_and_bad_arguments() -> None:
    gone = psutil.Popen(["true"])
    gone.wait()
    with pytest.raises(NoSuchProcessError, match=f"no process has pid {gone.pid}"):
        kill(gone.pid)
    with pytest.raises(ProcessError, match="not a process id"):
        kill(0)
    with pytest.raises(ConfigError, match="use TERM"):
        kill(os.getpid(), "HUP")
    with pytest.raises(ConfigError, match="out of range"):
        port_owner(70000)


def test_refusal_is_json_able() -> None:
    with pytest.raises(KillRefusedError) as refused:
        kill(1)
    assert refused.value.as_dict() == {
        "error": "kill_refused",
        "reason": "pid1",
        "pid": 1,
        "message": str(refused.value),
    }


def test_port_owner_and_free_port_stop_the_reloader_not_just_its_worker(
    spawn: Any, project_dir: Path
) -> None:
    (project_dir / "app.py").write_text("async def app(scope, receive, send):\n    pass\n")
    port = testing.free_port()
    uvicorn = spawn(
        [sys.executable, "-m", "uvicorn", "app:app", "--reload", "--port", str(port)],
        cwd=project_dir,
        port=port,
    )
    workers = [c.pid for c in psutil.Process(uvicorn.pid).children(recursive=True)]
    owners = port_owner(port)
    assert owners["in_use"] is True
    owner = owners["owners"][0]
    assert owner["dev"] is True and owner["type"] == "uvicorn"
    assert owner["pid"] == uvicorn.pid or owner["part_of"] == uvicorn.pid
    assert owner["project"]["name"] == project_dir.name

    result = free_port(port)
    assert result["was_in_use"] is True and result["freed"] is True
    stopped = result["stopped"][0]
    assert stopped["pid"] == uvicorn.pid
    assert set(stopped["stopped"]) >= {uvicorn.pid, *workers}
    assert not any(_running(pid) for pid in (uvicorn.pid, *workers))
    assert free_port(port) == {"port": port, "was_in_use": False, "freed": True, "stopped": []}


def test_free_port_refusal_leaves_the_holder_running(spawn: Any, tmp_path: Path) -> None:
    # A bare socket server outside any project is not a dev process.
    (tmp_path / "holder.py").write_text(STUBBORN.replace("signal.signal", "# signal.signal"))
    port = testing.free_port()
    holder = spawn([sys.executable, "holder.py", str(port)], cwd=tmp_path, port=port)
    with pytest.raises(KillRefusedError, match=f"cannot free port {port}") as refused:
        free_port(port)
    assert refused.value.reason == "not_dev"
    assert _running(holder.pid)
    assert free_port(port, force=True)["freed"] is True


def test_a_port_held_by_an_invisible_process_is_refused() -> None:
    hidden = Snapshot.take().hidden_listeners
    if not hidden:
        pytest.skip("every listening socket's owner is visible here")
    port = hidden[0][1]
    owners = port_owner(port)
    assert owners["in_use"] and any(o["pid"] is None for o in owners["owners"])
    with pytest.raises(KillRefusedError, match="cannot see") as refused:
        free_port(port)
    assert refused.value.reason == "hidden"


def test_rsproxy_daemon_is_stopped_only_when_asked_by_name(tmp_path: Path) -> None:
    with DaemonProcess(tmp_path / "home", project="killme") as daemon:
        assert daemon.proc is not None
        pid = daemon.proc.pid
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("RSPROXY_HOME", str(tmp_path / "home"))
            with pytest.raises(KillRefusedError, match="rsproxy stop --project killme") as refused:
                kill(pid, force=True)
            assert refused.value.reason == "rsproxy_daemon"
            assert "--name rsproxy" in str(refused.value)
            result = kill(pid, name="rsproxy")
        assert result["ok"] and result["type"] == "rsproxy"
        assert result["project"]["name"] == "killme"
        # TERM is a clean stop: the store is flushed and the state file removed.
        assert daemon.proc.wait(10) == 0
        assert not daemon.state_path.exists()
