"""Fixtures for the probe's Chromium tests: the fixture site (fixtures/pages/site.py), a second
origin for cross-origin calls, and a real ``rsproxy start`` in front of the site."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from rsproxy.testing import DaemonProcess, LoopbackServer, load_fixture

SITE_PY = Path(__file__).resolve().parents[2] / "fixtures" / "pages" / "site.py"


def _site_module() -> ModuleType:
    return load_fixture(SITE_PY)


@pytest.fixture(scope="module")
def site_log() -> list[dict[str, Any]]:
    return []


@pytest.fixture(scope="module")
def cors_log() -> list[dict[str, Any]]:
    return []


@pytest.fixture(scope="module")
def site(site_log: list[dict[str, Any]]) -> Iterator[LoopbackServer]:
    module = _site_module()
    with LoopbackServer(lambda: module.app(site_log)) as server:
        yield server


@pytest.fixture(scope="module")
def cross_site(cors_log: list[dict[str, Any]]) -> Iterator[LoopbackServer]:
    module = _site_module()
    with LoopbackServer(lambda: module.cors_app(cors_log)) as server:
        yield server


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, site: LoopbackServer) -> Iterator[Any]:
    with DaemonProcess(
        tmp_path_factory.mktemp("home"), "--target", f":{site.port}", project="probe"
    ) as process:
        yield process
