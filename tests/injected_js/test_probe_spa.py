"""Single-page-app route changes seen by the probe in Chromium, through a real ``rsproxy start``.

pushState, replaceState and Back each start a new page view: a new page_id (in
``window.__rsproxy.page_id`` too) and a ``page_view`` event with the navigation kind; events
raised afterwards carry the new page_id. The History API behaves as before.
"""

from __future__ import annotations

from typing import Any

import pytest

from rsproxy.testing import DaemonProcess


@pytest.mark.browser
def test_history_navigation_starts_new_page_views(daemon: DaemonProcess, page: Any) -> None:
    base = daemon.proxy_url
    page.goto(base + "/spa")
    page.wait_for_function("window.__rsproxy && window.__rsproxy.page_id")
    current = "window.__rsproxy.page_id"
    first = page.evaluate(current)

    assert page.evaluate("navigate('pushState', '/spa/a')") == "undefined"
    pushed = page.evaluate(current)
    assert page.evaluate("history.state") == {"path": "/spa/a"}
    assert page.evaluate("navigate('replaceState', '/spa/b')") == "undefined"
    replaced = page.evaluate(current)
    page.evaluate("navigate('replaceState', '/spa/b')")  # same URL: still the same page view
    assert page.evaluate(current) == replaced
    page.go_back()
    page.wait_for_function("location.pathname === '/spa'")
    popped = page.evaluate(current)
    assert page.evaluate("[history.pushState.name, history.pushState.length]") == ["pushState", 2]

    ids = [first, pushed, replaced, popped]
    assert len(set(ids)) == 4, ids
    page.evaluate("setTimeout(() => { throw new Error('after navigation'); })")

    views = daemon.wait_for_events(
        lambda evs: {e["page_id"] for e in evs} >= set(ids), kind="page_view"
    )
    by_id = {e["page_id"]: e["data"] for e in views if e["page_id"] in ids}
    assert by_id[first]["navigation"] == "load" and by_id[first]["url"] == base + "/spa"
    assert by_id[pushed] == {
        "url": base + "/spa/a",
        "title": "spa fixture",
        "referrer": base + "/spa",
        "navigation": "push",
        "previous_page_id": first,
    }
    assert by_id[replaced]["navigation"] == "replace"
    assert by_id[replaced]["url"] == base + "/spa/b"
    assert by_id[replaced]["previous_page_id"] == pushed
    assert by_id[popped]["navigation"] == "pop" and by_id[popped]["url"] == base + "/spa"
    assert by_id[popped]["referrer"] == base + "/spa/b"

    errors = daemon.wait_for_events(
        lambda evs: any("after navigation" in e["data"]["message"] for e in evs), kind="error"
    )
    error = next(e for e in errors if "after navigation" in e["data"]["message"])
    assert error["page_id"] == popped
