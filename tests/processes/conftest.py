"""Fixtures for the process scanner's tests: real processes, started and always cleaned up.

``Spawner`` (the ``spawn`` fixture, or module-scoped in a test module) starts a command in its
own process group, optionally as another user, and SIGKILLs the whole group at teardown whatever
the test did; ``project_dir`` is a folder that looks like a git checkout; ``vite_bin`` installs the Vite fixture app (fixtures/vite_app) from its
lockfile with ``npm ci`` once, and skips loudly — or fails under RSPROXY_REQUIRE_SERVICES=1 —
when npm cannot.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rsproxy import testing
from rsproxy.testing import Spawner, make_project_dir

VITE_APP = Path(__file__).resolve().parents[2] / "fixtures" / "vite_app"


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


@pytest.fixture(scope="session")
def vite_bin() -> Path:
    """fixtures/vite_app's Vite, installed by `npm ci` from the lockfile when due."""
    modules = testing.npm_install(VITE_APP, "vite tests")
    script = modules / "vite" / "bin" / "vite.js"
    if not script.is_file():
        pytest.fail(f"{script} is missing after `npm ci`")
    return script
