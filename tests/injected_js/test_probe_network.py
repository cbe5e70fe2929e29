"""The probe's network collector in Chromium, through a real ``rsproxy start``.

The fixture page (fixtures/pages/network.html) makes fetch and XHR calls of every outcome and
returns what it observed; the same page is also loaded directly from the upstream, where there
is no probe, and both observations must be identical. The daemon's events and what the servers
received show the collector's side: resource events with their fields, and the correlation
header on same-origin calls only (so no CORS preflight).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from rsproxy.testing import DaemonProcess, LoopbackServer, free_port

RID = "x-rsproxy-request-id"


def _run(page: Any, base: str, cross: LoopbackServer, closed: int) -> dict[str, Any]:
    page.goto(base + "/network")
    result: dict[str, Any] = page.evaluate(
        "(a) => window.runNetwork(a)", {"cross": cross.url, "closed": closed}
    )
    return result


def _by_path(events: list[dict[str, Any]], fragment: str) -> dict[str, Any]:
    matches = [e for e in events if e["data"]["url"].endswith(fragment)]
    assert len(matches) == 1, (fragment, [e["data"]["url"] for e in events])
    return matches[0]


@pytest.mark.browser
def test_fetch_and_xhr_are_reported_and_behave_as_without_the_probe(
    daemon: DaemonProcess,
    site: LoopbackServer,
    cross_site: LoopbackServer,
    site_log: list[dict[str, Any]],
    cors_log: list[dict[str, Any]],
    page: Any,
) -> None:
    closed = free_port()
    direct = _run(page, site.url, cross_site, closed)
    assert page.evaluate("typeof window.__rsproxy") == "undefined"
    assert not any(RID in r["headers"] for r in site_log), "direct run must carry no probe header"
    site_log.clear()
    cors_log.clear()

    proxied = _run(page, daemon.proxy_url, cross_site, closed)
    page_id = page.evaluate("window.__rsproxy.page_id")

    # The page sees exactly what it sees without the probe.
    assert proxied == direct
    assert direct["ok"]["resolved"] and direct["ok"]["isResponse"] and not direct["ok"]["bodyUsed"]
    assert '"x_custom": "object"' in direct["ok"]["body"]
    assert direct["fail"]["status"] == 500 and direct["fail"]["ok"] is False
    assert direct["network"]["resolved"] is False and direct["network"]["name"] == "TypeError"
    assert direct["abort"]["name"] == "AbortError" and direct["abort"]["isDOMException"]
    assert '"x_custom": "headers"' in direct["request"]["body"]
    assert '"x_custom": "array"' in direct["array"]["body"]
    assert direct["cross"]["type"] == "cors" and direct["cross"]["status"] == 200
    assert direct["thisBinding"]["resolved"] is False
    assert direct["fetchName"] == ["fetch", 1]
    start = ["rs1", "open:undefined", "rs1", "set:undefined", "loadstart", "send:undefined"]
    assert direct["xhr"]["log"] == [
        *start,
        "after-send1",
        "rs2",
        "rs3",
        "progress",
        "rs4",
        "load",
        "loadend",
    ]
    assert direct["xhrAbort"]["log"][-3:] == ["rs4", "abort", "loadend"]
    assert direct["xhrError"]["log"][-3:] == ["rs4", "error", "loadend"]
    assert direct["rejections"] == ["TypeError"]

    # What reached the servers: the correlation header on same-origin calls only.
    def sent(fragment: str) -> dict[str, Any]:
        hits = [r for r in site_log if r["path"] == fragment]
        assert len(hits) == 1, (fragment, [r["path"] for r in site_log])
        return hits[0]["headers"]

    ids = {}
    for fragment in [
        "/api/echo?case=ok",
        "/api/fail",
        "/api/slow",
        "/api/echo?case=request",
        "/api/echo?case=array",
        "/api/echo?case=xhr",
        "/api/slow?case=xhrabort",
    ]:
        headers = sent(fragment)
        assert re.fullmatch(rf"{page_id}-\d+", headers.get(RID, "")), (fragment, headers)
        ids[fragment] = headers[RID]
    assert sent("/api/echo?case=request")["x-custom"] == "headers"
    assert sent("/api/echo?case=array")["x-custom"] == "array"
    assert len(set(ids.values())) == len(ids)
    assert [r["method"] for r in cors_log] == ["GET"], "a CORS preflight reached the other origin"
    assert RID not in cors_log[0]["headers"]

    # What the probe reported.
    def calls(evs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # Without the page's resource summary (initiator "summary", 2 s after load).
        return [
            e for e in evs if e["page_id"] == page_id and e["data"].get("initiator") != "summary"
        ]

    events = calls(daemon.wait_for_events(lambda evs: len(calls(evs)) >= 13, kind="resource"))
    assert all(e["source"] == "probe" for e in events)

    ok = _by_path(events, "case=ok")["data"]
    assert ok["initiator"] == "fetch" and ok["method"] == "GET" and ok["status"] == 200
    assert ok["ok"] is True and ok["error"] is None and ok["aborted"] is False
    assert ok["url"] == f"{daemon.proxy_url}/api/echo?case=ok"
    assert ok["request_id"] == ids["/api/echo?case=ok"]
    assert 0 <= ok["ttfb_ms"] <= ok["duration_ms"]
    assert ok["response_size"] == len(direct["ok"]["body"].encode())
    assert '"x_custom": "object"' in ok["response_body"]

    fail = _by_path(events, "/api/fail")["data"]
    assert fail["status"] == 500 and fail["ok"] is False and "boom" in fail["response_body"]
    assert fail["error"] is None  # an HTTP error status is not a failed call

    network = _by_path(events, f"{closed}/nothing")["data"]
    assert network["status"] == 0 and network["ok"] is False and network["error"] == "network"
    assert "request_id" not in network and network["ttfb_ms"] is None

    aborted = _by_path(events, "/api/slow")["data"]
    assert aborted["status"] == 0 and aborted["error"] == "abort" and aborted["aborted"] is True
    assert aborted["request_id"] == ids["/api/slow"]

    request = _by_path(events, "case=request")["data"]
    assert request["method"] == "POST" and request["request_id"] == ids["/api/echo?case=request"]
    array = _by_path(events, "case=array")["data"]
    assert array["method"] == "PUT" and array["request_body"] == "plain text"
    assert array["request_size"] == len("plain text")

    cross = _by_path(events, "/cors")["data"]
    assert cross["status"] == 200 and cross["url"] == cross_site.url + "/cors"
    assert "request_id" not in cross

    xhr = _by_path(events, "case=xhr")["data"]
    assert xhr["initiator"] == "xhr" and xhr["method"] == "POST" and xhr["status"] == 200
    assert xhr["request_body"] == '{"x":1}' and xhr["request_id"] == ids["/api/echo?case=xhr"]
    assert '"case": "xhr"' in xhr["response_body"] and xhr["ttfb_ms"] is not None

    xhr_json = _by_path(events, "case=xhrjson")["data"]
    assert xhr_json["status"] == 200 and '"xhrjson"' in xhr_json["response_body"]

    xhr_abort = _by_path(events, "case=xhrabort")["data"]
    assert xhr_abort["aborted"] is True and xhr_abort["error"] == "abort"
    assert xhr_abort["status"] == 0
    xhr_error = _by_path(events, f"{closed}/xhr")["data"]
    assert xhr_error["error"] == "network" and "request_id" not in xhr_error
