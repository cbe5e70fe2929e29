"""The probe's tracking collector in Chromium, through a real ``rsproxy start``.

The fixture page (fixtures/pages/tracking.html) has the standard Google tag snippet (a
``dataLayer`` array and ``gtag()`` pushing its arguments to it) and calls both. It is also
loaded directly from the upstream, where there is no probe, and the page must see the same:
return values, ``this``, names and arities, and the dataLayer's contents. Each call is one
``tracking`` event; gtag's own push to the dataLayer is not reported a second time.
"""

from __future__ import annotations

from typing import Any

import pytest

from rsproxy.testing import DaemonProcess, LoopbackServer


def _run(page: Any, base: str) -> dict[str, Any]:
    page.goto(base + "/tracking")
    page.wait_for_load_state("load")
    result: dict[str, Any] = page.evaluate("window.runTracking()")
    return result


@pytest.mark.browser
def test_datalayer_and_gtag_calls_are_reported_and_behave_as_without_the_probe(
    daemon: DaemonProcess, site: LoopbackServer, page: Any
) -> None:
    direct = _run(page, site.url)
    assert page.evaluate("typeof window.__rsproxy") == "undefined"
    proxied = _run(page, daemon.proxy_url)
    page_id = page.evaluate("window.__rsproxy.page_id")
    assert page.evaluate("window.dataLayer.push !== Array.prototype.push"), "push was not wrapped"

    assert proxied == direct
    assert direct["pushed"] == 1 and direct["gtagResult"] == "undefined"
    assert direct["other"] == [1, ["elsewhere"]]
    assert direct["names"] == ["push", 1, "gtag", 0]
    assert direct["isArray"] is True
    assert direct["layer"] == [
        {"event": "purchase", "value": 3},
        {"args": ["event", "sign_up", {"method": "x"}]},
    ]

    events = daemon.wait_for_events(
        lambda evs: len([e for e in evs if e["page_id"] == page_id]) >= 3, kind="tracking"
    )
    page.wait_for_timeout(500)  # nothing more should follow (gtag's push is not reported twice)
    events = sorted(
        (e for e in daemon.events("tracking") if e["page_id"] == page_id), key=lambda e: e["id"]
    )
    assert all(e["source"] == "probe" for e in events)
    assert [e["data"] for e in events] == [
        {"api": "dataLayer", "event": "purchase", "params": {"value": 3}},
        {"api": "gtag", "event": "sign_up", "params": {"method": "x"}},
        {"api": "dataLayer", "event": None, "params": "elsewhere"},
    ]
