"""The local API and the probe endpoints refuse what other web pages could try (DESIGN §7).

A page on another origin, a DNS-rebound host name, a request without the token, a direct hit on
the probe endpoints and hostile probe messages are all tried against a real daemon.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from rsproxy.testing import DaemonProcess, run_async


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with DaemonProcess(tmp_path_factory.mktemp("home"), project="api") as running:
        yield running


def _api_url(daemon: DaemonProcess) -> str:
    assert daemon.state is not None
    return daemon.state.api_url


def test_token_is_required_and_checked(daemon: DaemonProcess) -> None:
    url = _api_url(daemon) + "/api/status"
    assert httpx.get(url, trust_env=False).status_code == 401
    wrong = httpx.get(url, headers={"Authorization": "Bearer nope"}, trust_env=False)
    assert wrong.status_code == 401 and "state file" in wrong.json()["error"]
    with daemon.api() as api:
        assert api.get("/api/status").json()["project"] == "api"


def test_foreign_host_is_refused_even_with_the_token(daemon: DaemonProcess) -> None:
    assert daemon.state is not None
    with daemon.api() as api:
        refused = api.get(
            "/api/status", headers={"Host": f"attacker.example:{daemon.state.api_port}"}
        )
        assert refused.status_code == 403
        assert "foreign Host" in refused.json()["error"]
        assert api.get("/readyz", headers={"Host": "attacker.example"}).status_code == 403


def test_cross_origin_request_is_refused_even_with_the_token(daemon: DaemonProcess) -> None:
    with daemon.api() as api:
        refused = api.get("/api/events", headers={"Origin": "http://attacker.example"})
        assert refused.status_code == 403 and "cross-origin" in refused.json()["error"]
        # the proxied app's own origin is a different origin than the API, so it is refused too
        assert api.get("/api/events", headers={"Origin": daemon.proxy_url}).status_code == 403


def test_probe_endpoints_are_not_reachable_directly(daemon: DaemonProcess) -> None:
    direct = httpx.get(_api_url(daemon) + "/__rsproxy/probe.js", trust_env=False)
    assert direct.status_code == 403
    via_proxy = httpx.get(daemon.proxy_url + "/__rsproxy/probe.js", trust_env=False)
    assert via_proxy.status_code == 200 and "__rsproxy" in via_proxy.text


def test_foreign_origin_cannot_post_probe_events(daemon: DaemonProcess) -> None:
    message = {"type": "events", "events": [{"kind": "custom", "ts": 0, "data": {"forged": True}}]}
    for origin in (
        "http://attacker.example",
        daemon.proxy_url.replace("127.0.0.1", "rebound.example"),
    ):
        answer = httpx.post(
            daemon.proxy_url + "/__rsproxy/events",
            content=json.dumps(message),
            headers={"Origin": origin},
            trust_env=False,
        )
        assert answer.status_code == 403, origin
    assert not [e for e in daemon.events("custom") if e["data"].get("forged")]


def test_hostile_probe_messages_are_counted_and_the_daemon_keeps_serving(
    daemon: DaemonProcess,
) -> None:
    ws_url = daemon.proxy_url.replace("http://", "ws://") + "/__rsproxy/ws"

    async def attack() -> str:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url, headers={"Origin": daemon.proxy_url}) as ws,
        ):
            hello = await ws.receive_json(timeout=10)
            await ws.send_str("not json at all")
            await ws.send_str(json.dumps({"type": "events", "events": "nope"}))
            await ws.send_str(
                json.dumps({"type": "events", "events": [{"kind": "issue", "data": {}}]})
            )
            flood = {
                "type": "events",
                "events": [{"kind": "custom", "ts": 0, "data": {"n": i}} for i in range(400)],
            }
            for _ in range(30):  # 12,000 events at once: far over the rate limit
                await ws.send_str(json.dumps(flood))
            await ws.send_str(
                json.dumps({"type": "events", "events": [{"kind": "custom", "data": {"ok": 1}}]})
            )
            return str(hello["type"])

    assert run_async(attack()) == "hello"
    with daemon.api() as api:
        probe = api.get("/api/status").json()["probe"]
    assert probe["rejected"]["not_json"] >= 1
    assert probe["rejected"]["bad_shape"] >= 1
    assert probe["rejected"]["bad_event"] >= 1
    assert probe["rejected"]["rate_limited"] >= 1
    stored = daemon.wait_for_events(lambda evs: len(evs) > 0, kind="custom")
    assert len(stored) < 12_000
    assert not daemon.events("issue"), "a page forged an issue event"


def test_oversized_probe_message_closes_only_that_socket(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    ws_url = daemon.proxy_url.replace("http://", "ws://") + "/__rsproxy/ws"

    async def oversized() -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url, headers={"Origin": daemon.proxy_url}) as ws,
        ):
            await ws.receive_json(timeout=10)
            await ws.send_str("x" * (2 * 1024 * 1024))
            return (await ws.receive(timeout=10)).type

    closed = run_async(oversized())
    assert closed in (
        aiohttp.WSMsgType.CLOSE,
        aiohttp.WSMsgType.CLOSED,
        aiohttp.WSMsgType.CLOSING,
        aiohttp.WSMsgType.ERROR,
    )
    with daemon.api() as api:
        assert api.get("/readyz").json() == {"ok": True}


def test_dns_rebound_host_cannot_reach_probe_endpoints(daemon: DaemonProcess) -> None:
    assert daemon.state is not None
    rebound = httpx.get(
        daemon.proxy_url + "/__rsproxy/probe.js",
        headers={"Host": f"rebound.example:{daemon.state.proxy_port}"},
        trust_env=False,
    )
    assert rebound.status_code == 403 and "host rebound.example" in rebound.text
    local = httpx.get(
        daemon.proxy_url + "/__rsproxy/probe.js",
        headers={"Host": f"localhost:{daemon.state.proxy_port}"},
        trust_env=False,
    )
    assert local.status_code == 200
