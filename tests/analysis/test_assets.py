"""What counts as a static asset or dev-server traffic (rsproxy/analysis/assets.py), and that the
catalog, the detectors and the network listing all set the same requests aside."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsproxy.analysis.assets import extension, is_asset_path, is_asset_type, is_dev_server_path
from rsproxy.analysis.detectors import is_api_call
from rsproxy.events import Event
from rsproxy.pipeline.stage import StageContext
from rsproxy.reports.events import _is_static
from rsproxy.stages.catalog import Catalog, CatalogConfig
from rsproxy.store import Store
from rsproxy.testing import make_http_event


def _catalogued(event: Event, tmp_path: Path) -> int:
    """How many endpoints the catalog stage stores for this one event."""
    store = Store.open(tmp_path / "store.duckdb")
    try:
        catalog = Catalog(CatalogConfig(), StageContext("test", event.session_id, store))
        catalog.process([event], lambda e, exc: False)
        catalog.flush()
        return int(store.query("SELECT count(*) AS n FROM endpoints")[0]["n"])
    finally:
        store.close()


@pytest.mark.parametrize(
    ("path", "found"),
    [
        ("/assets/index-4f2a9c.js", ".js"),
        ("/static/Logo.PNG", ".png"),
        ("/backup.tar.gz", ".gz"),
        ("/api/v1.2/users", ""),  # a dot in an earlier segment is no extension
        ("/api/users", ""),
        ("/", ""),
        ("", ""),
    ],
)
def test_extension_is_that_of_the_last_segment(path: str, found: str) -> None:
    assert extension(path) == found


@pytest.mark.parametrize(
    ("path", "asset"),
    [
        ("/assets/index-4f2a9c.js", True),
        ("/src/App.tsx", True),  # Vite answers sources with scripts
        ("/static/Logo.PNG", True),
        ("/fonts/inter.woff2", True),
        ("/site.webmanifest", True),
        ("/api/users", False),
        ("/api/v1.2/users", False),
        ("/api/report.json", False),  # data, or an API: not an asset by its name
        ("/download.js/status", False),
    ],
)
def test_asset_paths(path: str, asset: bool) -> None:
    assert is_asset_path(path) is asset


@pytest.mark.parametrize(
    ("content_type", "asset"),
    [
        ("text/javascript; charset=utf-8", True),
        ("application/javascript", True),
        ("image/svg+xml", True),
        ("Font/WOFF2", True),
        ("text/css", True),
        ("application/wasm", True),
        ("application/manifest+json", True),
        ("application/json", False),
        ("text/html; charset=utf-8", False),
        ("text/event-stream", False),
        ("", False),
    ],
)
def test_asset_content_types(content_type: str, asset: bool) -> None:
    assert is_asset_type(content_type) is asset


@pytest.mark.parametrize(
    ("path", "internal"),
    [
        ("/@vite/client", True),
        ("/@react-refresh", True),
        ("/node_modules/.vite/deps/react.js", True),
        ("/main.4f2a.hot-update.json", True),
        ("/_next/webpack-hmr", True),
        ("/api/vite", False),
        ("/api/modules", False),
    ],
)
def test_dev_server_paths(path: str, internal: bool) -> None:
    assert is_dev_server_path(path) is internal


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/assets/index-4f2a9c.js", "text/javascript"),
        ("/src/App.tsx", "text/javascript"),
        ("/logo.svg", "image/svg+xml"),
        ("/fonts/inter.woff2", "font/woff2"),
        ("/styles/app.css", "text/css"),
        ("/pkg/engine_bg.wasm", "application/wasm"),
        ("/img/hero", "image/webp"),  # no extension: known by its type
        ("/bundle.mjs", "application/octet-stream"),  # a wrong type: known by its name
    ],
)
def test_the_catalog_the_detectors_and_the_listing_agree_on_assets(
    path: str, content_type: str, tmp_path: Path
) -> None:
    event = make_http_event(
        path=path,
        url=f"http://127.0.0.1:3000{path}",
        query="",
        path_template=path,
        service="app",
        response_content_type=content_type,
        response_body=None,
    )
    assert _catalogued(event, tmp_path) == 0
    assert not is_api_call(event.data, "GET")
    assert _is_static(event.data)


def test_an_api_call_is_no_asset_to_any_of_them(tmp_path: Path) -> None:
    event = make_http_event(
        path="/api/users/42", path_template="/api/users/{userId}", service="app"
    )
    assert _catalogued(event, tmp_path) == 1
    assert is_api_call(event.data, "GET")
    assert not _is_static(event.data)
