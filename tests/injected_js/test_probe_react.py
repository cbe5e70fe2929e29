"""React renders seen by the probe in Chromium, through a real ``rsproxy start``.

The React fixture app (fixtures/react_app, a React 19 development build) is served from its
dist/ folder by a local aiohttp server, with the daemon in front of it. The probe installs a
minimal ``__REACT_DEVTOOLS_GLOBAL_HOOK__`` before the app's bundle loads and reports, per
component and 500 ms window, a ``render`` event: how many renders, why (mount, props, state,
context, parent), identical-props renders and the size of the largest commit. The app behaves
exactly as it does when loaded directly, without the probe.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from rsproxy.testing import DaemonProcess, LoopbackServer, react_app_dist

APP_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "react_app"


def _dist() -> Path:
    return react_app_dist()


def _static_app(dist: Path) -> web.Application:
    async def index(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(dist / "index.html", headers={"Content-Type": "text/html"})

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_static("/assets", dist / "assets")
    return app


@pytest.fixture(scope="module")
def react_site() -> Iterator[LoopbackServer]:
    dist = _dist()
    with LoopbackServer(lambda: _static_app(dist)) as server:
        yield server


@pytest.fixture(scope="module")
def react_daemon(
    tmp_path_factory: pytest.TempPathFactory, react_site: LoopbackServer
) -> Iterator[DaemonProcess]:
    with DaemonProcess(
        tmp_path_factory.mktemp("home"), "--target", f":{react_site.port}", project="probe"
    ) as process:
        yield process


def _open(page: Any, url: str) -> None:
    page.goto(url + "/")
    page.wait_for_function("document.getElementById('count') !== null")


def _renders(daemon: DaemonProcess, page_id: str, predicate: Any) -> list[dict[str, Any]]:
    def mine(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e["data"] for e in events if e["page_id"] == page_id]

    events = daemon.wait_for_events(lambda evs: predicate(mine(evs)), kind="render")
    return mine(events)


def _by_component(renders: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in renders if r["component"] == name]


def _texts(page: Any) -> dict[str, str]:
    ids = ["count", "refresh-count", "cascade-count", "theme", "cart-count", "currency"]
    return {i: page.inner_text("#" + i) for i in ids}


def _click_through(page: Any) -> list[dict[str, str]]:
    seen = [_texts(page)]
    for button in [
        "increment",
        "increment",
        "refresh-same",
        "cascade",
        "toggle-theme",
        "add-to-cart",
    ]:
        page.click("#" + button)
        seen.append(_texts(page))
    return seen


@pytest.mark.browser
def test_mount_and_state_renders(react_daemon: DaemonProcess, page: Any) -> None:
    _open(page, react_daemon.proxy_url)
    page_id = page.evaluate("window.__rsproxy.page_id")
    mounts = _renders(
        react_daemon, page_id, lambda rs: any(r["component"] == "Counter" for r in rs)
    )
    counter = _by_component(mounts, "Counter")[0]
    assert counter["reasons"] == {"mount": 1}
    assert counter["renders"] == 1
    assert counter["actual_duration_ms"] >= 0
    assert _by_component(mounts, "ProductRow")[0]["reasons"]["mount"] == 30

    page.click("#increment")
    page.wait_for_function("document.getElementById('count').textContent === '1'")
    renders = _renders(
        react_daemon,
        page_id,
        lambda rs: any(r["component"] == "Counter" and "state" in r["reasons"] for r in rs),
    )
    after = next(r for r in _by_component(renders, "Counter") if "state" in r["reasons"])
    assert after["reasons"] == {"state": 1}  # the mount's window was reported already
    assert after["renders"] == 1 and after["commit_components"] == 1
    assert after["identical_props"] == 1  # no parent rendered: the same props object


@pytest.mark.browser
def test_identical_props_renders(react_daemon: DaemonProcess, page: Any) -> None:
    _open(page, react_daemon.proxy_url)
    page_id = page.evaluate("window.__rsproxy.page_id")
    page.click("#refresh-same")
    page.wait_for_function("document.getElementById('refresh-count').textContent === '1'")
    renders = _renders(
        react_daemon,
        page_id,
        lambda rs: any(r["component"] == "ProductRow" and r["identical_props"] >= 30 for r in rs),
    )
    rows = next(r for r in _by_component(renders, "ProductRow") if r["identical_props"] >= 30)
    # The mount may fall in the same 500 ms window.
    assert rows["reasons"]["parent"] == 30
    assert rows["renders"] == 30 + rows["reasons"].get("mount", 0)
    lists = [r for r in _by_component(renders, "ProductList") if "state" in r["reasons"]]
    assert lists, renders


@pytest.mark.browser
def test_cascade_commit_size(react_daemon: DaemonProcess, page: Any) -> None:
    _open(page, react_daemon.proxy_url)
    page_id = page.evaluate("window.__rsproxy.page_id")
    page.click("#cascade")
    page.wait_for_function("document.getElementById('cascade-count').textContent === '1'")
    renders = _renders(
        react_daemon,
        page_id,
        lambda rs: any(r["component"] == "App" and "state" in r["reasons"] for r in rs),
    )
    app = next(r for r in _by_component(renders, "App") if "state" in r["reasons"])
    assert app["commit_components"] > 20
    assert any(r["commit_components"] > 20 and "parent" in r["reasons"] for r in renders)


@pytest.mark.browser
def test_context_renders(react_daemon: DaemonProcess, page: Any) -> None:
    _open(page, react_daemon.proxy_url)
    page_id = page.evaluate("window.__rsproxy.page_id")
    page.click("#toggle-theme")
    page.wait_for_function("document.getElementById('theme').textContent === 'dark'")
    renders = _renders(
        react_daemon,
        page_id,
        lambda rs: any(r["component"] == "ThemeLabel" and "context" in r["reasons"] for r in rs),
    )
    assert any(r["component"] == "ThemeToggle" and "context" in r["reasons"] for r in renders)
    provider = [r for r in _by_component(renders, "ThemeProvider") if "state" in r["reasons"]]
    assert provider, renders


@pytest.mark.browser
def test_app_behaves_as_without_the_probe(
    react_daemon: DaemonProcess, react_site: LoopbackServer, page: Any
) -> None:
    _open(page, react_site.url)
    assert page.evaluate("typeof window.__rsproxy") == "undefined"
    assert page.evaluate("typeof window.__REACT_DEVTOOLS_GLOBAL_HOOK__") == "undefined"
    direct = _click_through(page)

    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and problems.append(msg.text))
    _open(page, react_daemon.proxy_url)
    assert page.evaluate("typeof window.__rsproxy") == "object"
    assert page.evaluate("window.__REACT_DEVTOOLS_GLOBAL_HOOK__.renderers.size") == 1
    # The hook is on Window.prototype: window's only own addition stays __rsproxy.
    assert not page.evaluate("Object.hasOwn(window, '__REACT_DEVTOOLS_GLOBAL_HOOK__')")
    proxied = _click_through(page)
    assert problems == []
    assert proxied == direct
    assert direct[-1] == {
        "count": "2",
        "refresh-count": "1",
        "cascade-count": "1",
        "theme": "dark",
        "cart-count": "1",
        "currency": "USD",
    }


@pytest.mark.browser
def test_a_real_devtools_hook_is_wrapped_not_replaced(
    react_daemon: DaemonProcess, page: Any
) -> None:
    page.add_init_script(
        """
        window.__seenCommits = 0;
        window.__REACT_DEVTOOLS_GLOBAL_HOOK__ = {
          supportsFiber: true, renderers: new Map(), isDisabled: false,
          inject(r) { this.renderers.set(7, r); return 7; },
          onCommitFiberRoot() { window.__seenCommits++; },
          onCommitFiberUnmount() {}, onPostCommitFiberRoot() {}, checkDCE() {},
        };
        window.__ownHook = window.__REACT_DEVTOOLS_GLOBAL_HOOK__;
        """
    )
    _open(page, react_daemon.proxy_url)
    page_id = page.evaluate("window.__rsproxy.page_id")
    assert page.evaluate("window.__REACT_DEVTOOLS_GLOBAL_HOOK__ === window.__ownHook")
    page.click("#increment")
    page.wait_for_function("document.getElementById('count').textContent === '1'")
    assert page.evaluate("window.__seenCommits") >= 2
    _renders(
        react_daemon,
        page_id,
        lambda rs: any(r["component"] == "Counter" and "state" in r["reasons"] for r in rs),
    )
