"""The React fixture app (fixtures/react_app) builds from its lockfile into a usable dist/.

Browser tests rely on it for React renders, Redux actions and Zustand store changes; this pins
down what they need from the build: an entry page that loads a built bundle, React's
*development* build (component names, profiling data) and the app's own components.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from rsproxy import testing
from rsproxy.testing import load_fixture

APP_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "react_app"

# Logged only by react-dom's development build (React 18 and 19 alike).
REACT_DEV_MARKER = "Download the React DevTools for a better development experience"


def _load_build_module() -> ModuleType:
    return load_fixture(APP_DIR / "build.py")


@pytest.fixture(scope="module")
def dist() -> Path:
    if shutil.which("npm") is None:
        message = "npm is not installed (Node.js and npm are needed to build fixtures/react_app)"
        if testing.browser_required():
            pytest.fail(f"RSPROXY_REQUIRE_BROWSER=1 but {message}")
        pytest.skip(f"REACT FIXTURE SKIPPED: {message}")
    path: Path = _load_build_module().build()
    return path


@pytest.fixture(scope="module")
def bundle(dist: Path) -> str:
    html = (dist / "index.html").read_text()
    scripts = re.findall(r'<script[^>]+src="([^"]+\.js)"', html)
    assert scripts, f"dist/index.html loads no script:\n{html}"
    assert all(not src.startswith("/") for src in scripts), "asset paths must be relative"
    return "\n".join((dist / src).read_text() for src in scripts)


def test_dist_has_entry_page(dist: Path) -> None:
    assert dist == APP_DIR / "dist"
    assert (dist / "index.html").is_file()


def test_bundle_is_react_development_build(bundle: str) -> None:
    assert REACT_DEV_MARKER in bundle
    assert "actualDuration" in bundle


def test_bundle_keeps_component_names(bundle: str) -> None:
    for name in ("Counter", "ProductList", "ProductRow", "ThemeProvider", "Cart", "Preferences"):
        assert f"function {name}(" in bundle, name


def test_bundle_wires_stores_to_devtools(bundle: str) -> None:
    assert "__REDUX_DEVTOOLS_EXTENSION_COMPOSE__" in bundle  # RTK configureStore
    assert "__REDUX_DEVTOOLS_EXTENSION__" in bundle  # zustand devtools middleware
    for action in ("preferences/setCurrency", "preferences/thrash"):
        assert action in bundle, action


def test_second_build_is_a_no_op(dist: Path) -> None:
    before = (dist / "index.html").stat().st_mtime_ns
    module = _load_build_module()
    assert not module.needs_install()
    assert not module.needs_build()
    assert module.build() == dist
    assert (dist / "index.html").stat().st_mtime_ns == before
