"""Fixtures for the process scanner's tests: real processes, started and always cleaned up.

``Spawner`` (the ``spawn`` fixture, or module-scoped in a test module) starts a command in its
own process group, optionally as another user, and SIGKILLs the whole group at teardown whatever
the test did; ``project_dir`` is a folder that looks like a git checkout; ``vite_bin`` installs the Vite fixture app (fixtures/vite_app) from its
lockfile with ``npm ci`` once, and skips loudly — or fails under RSPROXY_REQUIRE_SERVICES=1 —
when npm cannot.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rsproxy import testing

VITE_APP = Path(__file__).resolve().parents[2] / "fixtures" / "vite_app"


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            state = f"exited with {proc.returncode}" if proc.poll() is not None else "timed out"
            raise AssertionError(
                f"{proc.args} never listened on {port} ({state}):\n{log.read_text()}"
            )
        time.sleep(0.05)


class Spawner:
    """Starts commands in their own process groups; ``close`` SIGKILLs every group it started."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[subprocess.Popen[bytes]] = []

    def __call__(
        self,
        args: list[str],
        *,
        cwd: Path,
        port: int | None = None,
        user: str | None = None,
        timeout: float = 30.0,
    ) -> subprocess.Popen[bytes]:
        if user is not None:
            # As root: the same command under another user's ids (setpriv execs it, so the pid
            # is the command's own), as a foreign process is.
            gid = pwd.getpwnam(user).pw_gid
            args = ["setpriv", f"--reuid={user}", f"--regid={gid}", "--clear-groups", *args]
        log = self.log_dir / f"spawn-{os.getpid()}-{len(self.started)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                args,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.started.append(proc)
        if port is not None:
            wait_listening(port, proc, log, timeout)
        return proc

    def close(self) -> None:
        for proc in self.started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawner]:
    spawner = Spawner(tmp_path)
    try:
        yield spawner
    finally:
        spawner.close()


def make_project_dir(parent: Path, name: str = "shop") -> Path:
    """A folder that is a git root (``.git`` is all rsproxy looks for), named like a project."""
    folder = parent / f"{name}-{os.getpid()}"
    (folder / ".git").mkdir(parents=True)
    return folder


@pytest.fixture(scope="module")
def module_spawn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spawner]:
    """``spawn`` for processes a whole test module shares (started once, killed at its end)."""
    spawner = Spawner(tmp_path_factory.mktemp("spawn"))
    try:
        yield spawner
    finally:
        spawner.close()


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    return make_project_dir(tmp_path)


@pytest.fixture(scope="module")
def module_project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project_dir(tmp_path_factory.mktemp("projects"))


def _npm_problem(message: str) -> None:
    if testing.services_required():
        pytest.fail(f"RSPROXY_REQUIRE_SERVICES=1 but {message}")
    pytest.skip(f"VITE TESTS SKIPPED: {message}")


@pytest.fixture(scope="session")
def vite_bin() -> Path:
    """fixtures/vite_app's Vite, installed by `npm ci` from the lockfile when due."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        _npm_problem("Node.js and npm are not installed")
    assert npm is not None
    modules = VITE_APP / "node_modules"
    stamp = modules / ".rsproxy-npm-ci"
    lock = VITE_APP / "package-lock.json"
    with open(VITE_APP / ".install.lock", "w") as guard:  # one install at a time (xdist, CI)
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
            try:
                done = subprocess.run(
                    [npm, "ci", "--include=dev", "--no-audit", "--no-fund", "--prefer-offline"],
                    cwd=VITE_APP,
                    capture_output=True,
                    text=True,
                    timeout=300,
                    stdin=subprocess.DEVNULL,
                )
            except subprocess.TimeoutExpired:
                _npm_problem("`npm ci` in fixtures/vite_app timed out")
            if done.returncode != 0:
                _npm_problem(f"`npm ci` in fixtures/vite_app failed:\n{done.stderr[-2000:]}")
            stamp.touch()
    script = modules / "vite" / "bin" / "vite.js"
    if not script.is_file():
        _npm_problem(f"{script} is missing after `npm ci`")
    return script
