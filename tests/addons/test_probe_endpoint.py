"""Unit tests for addons/probe_endpoint.py: rsproxy's reserved paths on the proxied origin.

The flows look like what mitmproxy hands the addon in reverse mode: the request already aimed at
the target (localhost:3000) and the client connection's ``sockname`` the proxy's own listening
address (127.0.0.1:8080), which is what the addon's idea of "the proxy's origin" is built on.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from mitmproxy import http
from mitmproxy.test import tflow, tutils

from rsproxy.addons.probe_endpoint import INTERNAL, ProbeEndpoint, is_internal, trusted_origin
from rsproxy.api import INTERNAL_HEADER

PROXY = ("127.0.0.1", 8080)


@pytest.fixture
def endpoint(addon_context, lifecycle):
    addon = ProbeEndpoint(lifecycle)
    with addon_context(lifecycle, addon):
        yield addon


def probe_flow(
    path: str = "/__rsproxy/ws",
    *,
    origin: str | None = "http://localhost:8080",
    sockname: tuple[str, int] = PROXY,
    extra: Sequence[tuple[str, str]] = (),
) -> http.HTTPFlow:
    headers = [("Host", "localhost:3000")]
    if origin is not None:
        headers.append(("Origin", origin))
    headers.extend(extra)
    req = tutils.treq(
        host="localhost",
        port=3000,
        path=path.encode(),
        headers=http.Headers([(k.encode(), v.encode()) for k, v in headers]),
        content=b"",
    )
    flow = tflow.tflow(req=req)
    flow.client_conn.sockname = sockname
    return flow


def assert_rerouted(flow: http.HTTPFlow, runtime) -> None:
    assert flow.response is None
    assert is_internal(flow)
    request = flow.request
    assert (request.scheme, request.host, request.port) == ("http", "127.0.0.1", runtime.api_port)
    assert request.headers.get_all(INTERNAL_HEADER) == [runtime.token]


def assert_not_rerouted(flow: http.HTTPFlow) -> None:
    request = flow.request
    assert (request.host, request.port) == ("localhost", 3000)
    assert INTERNAL_HEADER not in request.headers


# ---- routing to the local server -----------------------------------------------------------------


def test_probe_paths_are_marked_internal_and_rerouted_with_the_token(endpoint, runtime):
    flow = probe_flow(
        extra=[
            ("Cookie", "sessionid=secret"),
            ("Authorization", "Bearer app-secret"),
            ("Accept", "*/*"),
        ]
    )
    endpoint.requestheaders(flow)
    assert_rerouted(flow, runtime)
    assert "Cookie" not in flow.request.headers
    assert "Authorization" not in flow.request.headers
    assert flow.request.headers["Accept"] == "*/*"
    assert flow.request.path == "/__rsproxy/ws"


@pytest.mark.parametrize(
    "path", ["/__rsproxy/probe.js", "/__rsproxy/events", "/__rsproxy/probe.js?v=3", "/__rsproxy/ui"]
)
def test_every_path_under_the_prefix_is_rerouted(endpoint, runtime, path):
    flow = probe_flow(path, origin=None)
    endpoint.requestheaders(flow)
    assert_rerouted(flow, runtime)
    assert flow.request.path == path


def test_a_client_cannot_choose_the_internal_token(endpoint, runtime):
    flow = probe_flow(extra=[(INTERNAL_HEADER, "guessed"), (INTERNAL_HEADER, "again")])
    endpoint.requestheaders(flow)
    assert_rerouted(flow, runtime)


def test_a_request_without_origin_is_rerouted(endpoint, runtime):
    flow = probe_flow("/__rsproxy/probe.js", origin=None)
    endpoint.requestheaders(flow)
    assert_rerouted(flow, runtime)


@pytest.mark.parametrize(
    "path", ["/", "/app/page", "/__rsproxy", "/__rsproxyx/ws", "/api/__rsproxy/ws"]
)
def test_other_paths_are_not_touched(endpoint, path):
    flow = probe_flow(path, extra=[("Cookie", "a=1")])
    endpoint.requestheaders(flow)
    assert not is_internal(flow)
    assert flow.response is None
    assert_not_rerouted(flow)
    assert flow.request.headers["Cookie"] == "a=1"


# ---- the Origin check ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "sockname"),
    [
        ("http://localhost:8080", PROXY),
        ("http://127.0.0.1:8080", PROXY),
        ("http://[::1]:8080", PROXY),
        ("http://shop.localhost:8080", PROXY),
        ("http://LOCALHOST:8080", PROXY),
        # listening on 0.0.0.0, browsed from another machine through the LAN address
        ("http://192.168.1.5:8080", ("192.168.1.5", 8080)),
    ],
)
def test_pages_served_by_the_proxy_are_trusted(endpoint, runtime, origin, sockname):
    flow = probe_flow(origin=origin, sockname=sockname)
    endpoint.requestheaders(flow)
    assert_rerouted(flow, runtime)


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example:8080",  # DNS rebinding: a foreign name on the proxy's port
        "http://127.0.0.1.nip.io:8080",
        "http://localhost:3000",  # the dev server itself, or any other local app
        "http://localhost:8081",
        "http://localhost",
        "https://evil.example",
        "http://192.168.1.66:8080",  # another machine's page
        "null",
        "http://localhost:8080.evil.example",
        "http://[::1",
    ],
)
def test_foreign_origins_get_403_and_are_not_rerouted(endpoint, origin):
    flow = probe_flow(origin=origin, extra=[("Cookie", "sessionid=s")])
    endpoint.requestheaders(flow)
    assert flow.response is not None
    assert flow.response.status_code == 403
    assert origin.encode() in flow.response.content
    assert is_internal(flow)  # so capture skips it and it is never forwarded to the app
    assert_not_rerouted(flow)


def test_origin_check_uses_the_port_the_browser_connected_to_not_the_host_header():
    # In reverse mode mitmproxy may rewrite Host to the target's before any hook runs, so a Host
    # naming the target must not make the target's origin look trusted.
    flow = probe_flow(origin="http://localhost:3000")
    assert flow.request.host_header == "localhost:3000"
    assert trusted_origin("http://localhost:3000", flow) is False
    assert trusted_origin("http://localhost:8080", flow) is True


def test_no_sockname_trusts_nothing():
    flow = probe_flow(sockname=None)  # type: ignore[arg-type]
    assert trusted_origin("http://localhost:8080", flow) is False


# ---- before the runtime is up ---------------------------------------------------------------------


def test_503_before_the_runtime_is_up(endpoint):
    endpoint.lifecycle.runtime = None
    flow = probe_flow()
    endpoint.requestheaders(flow)
    assert flow.response is not None
    assert flow.response.status_code == 503
    assert flow.response.headers["Retry-After"] == "1"
    assert is_internal(flow)
    assert_not_rerouted(flow)


def test_503_while_the_local_server_has_no_port_yet(endpoint, runtime):
    runtime.api_port = None
    flow = probe_flow()
    endpoint.requestheaders(flow)
    assert flow.response is not None and flow.response.status_code == 503
    assert flow.metadata[INTERNAL] is True
    assert_not_rerouted(flow)
