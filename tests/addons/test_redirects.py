"""Unit tests for addons/redirects.py: redirects to the target's own origin stay on the proxy.

The runtime stand-in says the target is ``http://localhost:3000`` and the proxy
``http://127.0.0.1:8080``; ``keep_host_header`` is mitmproxy's own option, set per test the way
``rsproxy start`` sets it (on for loopback targets); mitmproxy's Proxyserver addon, which
declares it, is loaded in the context for that.
"""

from __future__ import annotations

import pytest
from mitmproxy import http
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.test import tflow

from rsproxy.addons.probe_endpoint import INTERNAL
from rsproxy.addons.redirects import Redirects


@pytest.fixture
def redirects(addon_context, lifecycle):
    addon = Redirects(lifecycle)
    # Proxyserver is mitmproxy's own addon: it declares keep_host_header.
    with addon_context(Proxyserver(), lifecycle, addon) as tctx:
        addon.tctx = tctx  # type: ignore[attr-defined]
        yield addon


def redirect_flow(location: str | None, *, host_header: str = "localhost:8080") -> http.HTTPFlow:
    flow = tflow.tflow(resp=True)
    flow.request.host = "localhost"
    flow.request.port = 3000
    flow.request.headers["Host"] = host_header
    flow.response.status_code = 302
    if location is not None:
        flow.response.headers["Location"] = location
    return flow


def location_after(redirects: Redirects, flow: http.HTTPFlow) -> str | None:
    redirects.response(flow)
    assert flow.response is not None
    return flow.response.headers.get("Location")


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("http://localhost:3000/login", "http://127.0.0.1:8080/login"),
        (
            "http://localhost:3000/login?next=/cart#top",
            "http://127.0.0.1:8080/login?next=/cart#top",
        ),
        ("http://127.0.0.1:3000/", "http://127.0.0.1:8080/"),  # another name for the same loopback
        ("http://[::1]:3000/a", "http://127.0.0.1:8080/a"),
        ("https://localhost:3000/secure", "http://127.0.0.1:8080/secure"),
        ("//localhost:3000/scheme-relative", "http://127.0.0.1:8080/scheme-relative"),
    ],
)
def test_location_naming_the_target_is_rewritten_to_the_proxy(redirects, location, expected):
    assert location_after(redirects, redirect_flow(location)) == expected


@pytest.mark.parametrize(
    "location",
    [
        "/login",
        "login?x=1",
        "https://accounts.example.com/oauth?redirect_uri=http://localhost:3000/cb",
        "http://localhost:4000/other-app",
        "http://localhost/no-port",
        "http://app.example:3000/same-port-other-host",
    ],
)
def test_other_locations_are_untouched(redirects, location):
    assert location_after(redirects, redirect_flow(location)) == location


def test_with_keep_host_header_the_browsers_host_is_used(redirects):
    redirects.tctx.configure(redirects, keep_host_header=True)
    flow = redirect_flow("http://localhost:3000/login", host_header="shop.localhost:8080")
    assert location_after(redirects, flow) == "http://shop.localhost:8080/login"


def test_without_keep_host_header_the_proxy_url_is_used(redirects):
    redirects.tctx.configure(redirects, keep_host_header=False)
    flow = redirect_flow("http://localhost:3000/login", host_header="localhost:3000")
    assert location_after(redirects, flow) == "http://127.0.0.1:8080/login"


def test_internal_flows_are_untouched(redirects):
    flow = redirect_flow("http://localhost:3000/login")
    flow.metadata[INTERNAL] = True
    assert location_after(redirects, flow) == "http://localhost:3000/login"


def test_nothing_happens_before_the_runtime_is_up_or_without_a_target(redirects, runtime):
    redirects.lifecycle.runtime = None
    assert location_after(redirects, redirect_flow("http://localhost:3000/a")) == (
        "http://localhost:3000/a"
    )
    redirects.lifecycle.runtime = runtime
    runtime.settings.target = None
    assert location_after(redirects, redirect_flow("http://localhost:3000/a")) == (
        "http://localhost:3000/a"
    )


def test_responses_without_location_are_untouched(redirects):
    flow = redirect_flow(None)
    before = list(flow.response.headers.items(multi=True))
    redirects.response(flow)
    assert list(flow.response.headers.items(multi=True)) == before


def test_remote_target_redirects_are_rewritten(redirects, runtime):
    runtime.settings.target = "https://staging.example.com:443"
    flow = redirect_flow("https://staging.example.com:443/login")
    assert location_after(redirects, flow) == "http://127.0.0.1:8080/login"


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("https://staging.example.com:443", "https://staging.example.com/login"),
        ("http://myapp.test:80", "http://myapp.test/login"),
    ],
)
def test_default_port_in_location_matches_the_target(redirects, runtime, target, location):
    runtime.settings.target = target
    assert location_after(redirects, redirect_flow(location)) == "http://127.0.0.1:8080/login"
