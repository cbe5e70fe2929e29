"""Answers rsproxy's reserved paths on the proxied origin; they never reach the app.

``/__rsproxy/probe.js``, ``/__rsproxy/ws`` and ``/__rsproxy/events`` (and anything else under
``/__rsproxy/``) are routed to the runtime's local server with the internal token, so the page
can use them on its own origin (no CORS, no extra CSP host). A request whose ``Origin`` is not
the proxy's own origin is refused here: another site open in the same browser cannot open the
probe socket (which can run code in the page) or post fake events.
"""

from __future__ import annotations

from mitmproxy import http

from rsproxy.api import INTERNAL_HEADER, PROBE_PREFIX

from .lifecycle import Lifecycle

INTERNAL = "rsproxy.internal"


def is_internal(flow: http.HTTPFlow) -> bool:
    return bool(flow.metadata.get(INTERNAL))


class ProbeEndpoint:
    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        # Decided on the headers, so even a large upload to a reserved path is never forwarded.
        request = flow.request
        if not request.path.startswith(PROBE_PREFIX):
            return
        flow.metadata[INTERNAL] = True
        runtime = self.lifecycle.runtime
        if runtime is None or runtime.api_port is None:
            flow.response = http.Response.make(503, b"rsproxy is starting", {"Retry-After": "1"})
            return
        origin = request.headers.get("Origin")
        if origin is not None and origin != own_origin(request):
            flow.response = http.Response.make(
                403,
                f"rsproxy: cross-origin request from {origin} refused".encode(),
                {"Content-Type": "text/plain; charset=utf-8"},
            )
            return
        for secret in ("Cookie", "Authorization"):
            request.headers.pop(secret, None)
        request.scheme = "http"
        request.host = "127.0.0.1"
        request.port = runtime.api_port
        request.headers[INTERNAL_HEADER] = runtime.token


def own_origin(request: http.Request) -> str:
    """The origin the browser addressed: the proxy's, from the Host header it sent."""
    host = request.host_header or f"{request.host}:{request.port}"
    scheme = "https" if request.scheme == "https" else "http"
    return f"{scheme}://{host}"
