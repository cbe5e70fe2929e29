"""Redux and Zustand store changes seen by the probe in Chromium, through a real ``rsproxy start``.

The React fixture app (fixtures/react_app) has a Redux Toolkit store "cart" (configureStore
composes with ``__REDUX_DEVTOOLS_EXTENSION_COMPOSE__``) and a Zustand store "preferences" with
the devtools middleware (``__REDUX_DEVTOOLS_EXTENSION__.connect``). The probe provides both
hooks when there is no Redux DevTools extension, and wraps a real one transparently. Each action
is a ``state`` event with the top-level keys it changed, before and after.
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


def _states(daemon: DaemonProcess, page_id: str, predicate: Any) -> list[dict[str, Any]]:
    def mine(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e["data"] for e in events if e["page_id"] == page_id]

    events = daemon.wait_for_events(lambda evs: predicate(mine(evs)), kind="state")
    return mine(sorted(events, key=lambda e: e["id"]))  # the API lists the newest first


def _actions(states: list[dict[str, Any]], library: str) -> list[str]:
    return [s["action"] for s in states if s["library"] == library]


@pytest.mark.browser
def test_redux_actions(react_daemon: DaemonProcess, page: Any) -> None:
    _open(page, react_daemon.proxy_url)
    page_id = page.evaluate("window.__rsproxy.page_id")
    page.click("#add-to-cart")
    page.click("#add-to-cart")
    page.wait_for_function("document.getElementById('cart-count').textContent === '2'")
    page.click("#clear-cart")
    page.wait_for_function("document.getElementById('cart-count').textContent === '0'")
    states = _states(react_daemon, page_id, lambda ss: "cart/clear" in _actions(ss, "redux"))
    redux = [s for s in states if s["library"] == "redux"]
    assert [s["action"] for s in redux] == ["cart/addItem", "cart/addItem", "cart/clear"]
    assert all(s["store"] == "cart" for s in redux)
    first, second, cleared = redux
    assert list(first["diff"]) == ["cart"]
    assert first["diff"]["cart"]["before"] == {"items": []}
    assert first["diff"]["cart"]["after"] == {"items": [{"id": 1, "name": "Product 1", "price": 5}]}
    assert len(second["diff"]["cart"]["after"]["items"]) == 2
    assert cleared["diff"]["cart"]["after"] == {"items": []}


@pytest.mark.browser
def test_zustand_set_currency(react_daemon: DaemonProcess, page: Any) -> None:
    _open(page, react_daemon.proxy_url)
    page_id = page.evaluate("window.__rsproxy.page_id")
    page.click("#set-currency")
    page.wait_for_function("document.getElementById('currency').textContent === 'EUR'")
    states = _states(
        react_daemon,
        page_id,
        lambda ss: "preferences/setCurrency" in _actions(ss, "zustand"),
    )
    event = next(s for s in states if s["action"] == "preferences/setCurrency")
    assert event == {
        "library": "zustand",
        "store": "preferences",
        "action": "preferences/setCurrency",
        "diff": {"currency": {"before": "USD", "after": "EUR"}},
    }


@pytest.mark.browser
def test_zustand_thrash(react_daemon: DaemonProcess, page: Any) -> None:
    _open(page, react_daemon.proxy_url)
    page_id = page.evaluate("window.__rsproxy.page_id")
    page.click("#thrash")
    page.wait_for_function("document.getElementById('thrash-status').textContent === 'done'")
    assert page.inner_text("#thrash-count") == "30"
    states = _states(
        react_daemon,
        page_id,
        lambda ss: _actions(ss, "zustand").count("preferences/thrash") >= 30,
    )
    thrash = [s for s in states if s["action"] == "preferences/thrash"]
    assert len(thrash) == 30
    assert "preferences/thrashStart" in _actions(states, "zustand")
    assert thrash[-1]["diff"] == {
        "thrashCount": {"before": 29, "after": 30},
        "thrashing": {"before": True, "after": False},
    }


@pytest.mark.browser
def test_stores_behave_as_without_the_probe(
    react_daemon: DaemonProcess, react_site: LoopbackServer, page: Any
) -> None:
    def run(url: str) -> list[str]:
        _open(page, url)
        seen = []
        for button in ["add-to-cart", "add-to-cart", "clear-cart", "add-to-cart", "set-currency"]:
            page.click("#" + button)
            seen.append(page.inner_text("#cart-count") + "/" + page.inner_text("#cart-total"))
        page.click("#thrash")
        page.wait_for_function("document.getElementById('thrash-status').textContent === 'done'")
        seen += [page.inner_text("#currency"), page.inner_text("#thrash-count")]
        return seen

    direct = run(react_site.url)
    assert page.evaluate("typeof window.__REDUX_DEVTOOLS_EXTENSION__") == "undefined"
    proxied = run(react_daemon.proxy_url)
    assert page.evaluate("typeof window.__REDUX_DEVTOOLS_EXTENSION__") == "function"
    assert proxied == direct == ["1/5", "2/10", "0/0", "1/5", "1/5", "EUR", "30"]


@pytest.mark.browser
def test_a_real_extension_is_wrapped_not_replaced(react_daemon: DaemonProcess, page: Any) -> None:
    # A stand-in for the Redux DevTools extension that records what the app sends it.
    page.add_init_script(
        """
        window.__ext = {connects: [], sent: [], inits: 0, composed: 0};
        const ext = function () { return (next) => next; };
        ext.connect = (options) => {
          window.__ext.connects.push(options.name);
          return {
            init() { window.__ext.inits++; },
            send(action) { window.__ext.sent.push(action.type); },
            subscribe() { return () => {}; }, unsubscribe() {}, error() {},
          };
        };
        window.__REDUX_DEVTOOLS_EXTENSION__ = ext;
        window.__REDUX_DEVTOOLS_EXTENSION_COMPOSE__ = function (...args) {
          window.__ext.composed++;
          const compose = (...fns) => fns.reduce((f, g) => (...a) => f(g(...a)), (x) => x);
          if (args.length === 1 && typeof args[0] === 'object') return compose;
          return compose(...args);
        };
        window.__ownExt = ext;
        """
    )
    _open(page, react_daemon.proxy_url)
    page_id = page.evaluate("window.__rsproxy.page_id")
    assert page.evaluate("window.__REDUX_DEVTOOLS_EXTENSION__ === window.__ownExt")
    page.click("#set-currency")
    page.click("#add-to-cart")
    page.wait_for_function("document.getElementById('cart-count').textContent === '1'")
    ext = page.evaluate("window.__ext")
    assert ext["connects"] == ["preferences"] and ext["inits"] == 1
    assert ext["sent"] == ["preferences/setCurrency"]
    assert ext["composed"] == 1
    states = _states(
        react_daemon,
        page_id,
        lambda ss: (
            "cart/addItem" in _actions(ss, "redux")
            and "preferences/setCurrency" in _actions(ss, "zustand")
        ),
    )
    assert {s["store"] for s in states} == {"cart", "preferences"}
