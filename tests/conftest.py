"""Shared fixtures: an isolated RSPROXY_HOME per test, and Chromium that skips or fails loudly.

Browser tests skip with a reason when Chromium is missing, unless RSPROXY_REQUIRE_BROWSER=1
(as in CI), where a missing browser is a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rsproxy import testing


@pytest.fixture
def rsproxy_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "rsproxy-home"
    monkeypatch.setenv("RSPROXY_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if testing.chromium_executable() is None:
        message = "Chromium is not installed (Debian package `chromium`; `make setup` installs it)"
        if testing.browser_required():
            pytest.fail(f"RSPROXY_REQUIRE_BROWSER=1 but {message}")
        pytest.skip(f"BROWSER TESTS SKIPPED: {message}")
    with testing.chromium() as instance:
        yield instance


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[testing.Spawner]:
    """Start real processes (own process group each); all are SIGKILLed after the test."""
    spawner = testing.Spawner(tmp_path)
    try:
        yield spawner
    finally:
        spawner.close()
