"""The probe's performance collectors in Chromium, through a real ``rsproxy start``.

The fixture page (fixtures/pages/perf.html) has functions for each thing to observe: a 200 ms
busy loop (a long task), a 600-item insertion (a large DOM mutation) and a late banner that
pushes the content down (a layout shift), and a button whose click takes 250 ms to handle (a
slow interaction). FCP and TTFB are reported once the page has loaded,
a summary of its resources 2 s after load, and LCP, CLS and INP when the page is hidden, here
by navigating away, which sends them in the last beacon.
"""

from __future__ import annotations

from typing import Any

import pytest

from rsproxy.testing import DaemonProcess

RATINGS = {"good", "needs-improvement", "poor"}


def _open(page: Any, daemon: DaemonProcess) -> str:
    page.goto(daemon.proxy_url + "/perf")
    page.wait_for_function("document.readyState === 'complete' && window.__rsproxy")
    page_id: str = page.evaluate("window.__rsproxy.page_id")
    return page_id


def _mine(page_id: str) -> Any:
    return lambda evs: [e for e in evs if e["page_id"] == page_id]


def _vitals(daemon: DaemonProcess, page_id: str, names: set[str]) -> dict[str, dict[str, Any]]:
    mine = _mine(page_id)
    events = daemon.wait_for_events(
        lambda evs: names <= {e["data"]["name"] for e in mine(evs)}, kind="vital"
    )
    return {e["data"]["name"]: e["data"] for e in mine(events)}


@pytest.mark.browser
def test_long_task_dom_mutation_and_load_vitals(daemon: DaemonProcess, page: Any) -> None:
    page_id = _open(page, daemon)
    mine = _mine(page_id)
    assert page.evaluate("busy(200)") == 200
    assert page.evaluate("addNodes(600)") == 600
    assert page.evaluate("addNodes(10)") == 610  # a small insertion is not reported

    tasks = daemon.wait_for_events(
        lambda evs: any(e["data"]["duration_ms"] >= 190 for e in mine(evs)), kind="long_task"
    )
    task = max(mine(tasks), key=lambda e: e["data"]["duration_ms"])
    assert task["source"] == "probe"
    assert task["data"]["start_ms"] > 0 and task["data"]["duration_ms"] < 5000

    mutations = mine(daemon.wait_for_events(lambda evs: bool(mine(evs)), kind="dom_mutation"))
    assert [e["data"] for e in mutations] == [
        {"added_nodes": 600, "target": "body > ul#list.items.big"}
    ]

    vitals = _vitals(daemon, page_id, {"FCP", "TTFB"})
    for name in ("FCP", "TTFB"):
        assert vitals[name]["value"] > 0 and vitals[name]["rating"] in RATINGS
    assert vitals["TTFB"]["value"] <= vitals["FCP"]["value"]
    # a local page is fast
    assert vitals["FCP"]["rating"] == "good" and vitals["TTFB"]["rating"] == "good"


@pytest.mark.browser
def test_resource_summary_after_load(daemon: DaemonProcess, page: Any) -> None:
    page_id = _open(page, daemon)
    mine = _mine(page_id)
    events = daemon.wait_for_events(
        lambda evs: any(e["data"].get("initiator") == "summary" for e in mine(evs)),
        kind="resource",
        timeout=15,
    )
    summaries = [e["data"] for e in mine(events) if e["data"].get("initiator") == "summary"]
    assert len(summaries) == 1
    summary = summaries[0]
    assert summary["count"] >= 1 and summary["by_type"].get("fetch", 0) >= 1
    assert sum(summary["by_type"].values()) == summary["count"]
    assert summary["transfer_bytes"] >= 0
    urls = [s["url"] for s in summary["slowest"]]
    assert 1 <= len(urls) <= 5
    assert f"{daemon.proxy_url}/api/echo?case=perf" in urls
    assert not any("/__rsproxy/" in u for u in urls), "the probe reported its own script"
    durations = [s["duration_ms"] for s in summary["slowest"]]
    assert durations == sorted(durations, reverse=True)


@pytest.mark.browser
def test_lcp_cls_and_inp_are_reported_when_the_page_is_hidden(
    daemon: DaemonProcess, page: Any
) -> None:
    page_id = _open(page, daemon)
    page.evaluate("shift()")
    shifts = page.evaluate("shifts()")
    assert shifts > 0, "the fixture did not cause a layout shift"
    assert not any(
        e["data"]["name"] in {"CLS", "LCP"}
        for e in daemon.events("vital")
        if e["page_id"] == page_id
    ), "CLS and LCP wait for the page to be hidden"

    page.click("#slow")
    page.wait_for_timeout(300)  # the event timing entry follows the next frame

    page.goto("about:blank")  # pagehide + visibilitychange: the probe's last beacon
    vitals = _vitals(daemon, page_id, {"CLS", "LCP", "INP"})
    cls = vitals["CLS"]
    assert cls["value"] == pytest.approx(shifts, abs=1e-3)
    expected = (
        "good" if cls["value"] <= 0.1 else "needs-improvement" if cls["value"] <= 0.25 else "poor"
    )
    assert cls["rating"] == expected
    assert vitals["LCP"]["value"] > 0 and vitals["LCP"]["rating"] in RATINGS
    inp = vitals["INP"]
    assert 250 <= inp["value"] < 2000 and inp["rating"] in {"needs-improvement", "poor"}
    assert inp["rating"] == ("needs-improvement" if inp["value"] <= 500 else "poor")
