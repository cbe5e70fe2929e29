"""Answers rsproxy's reserved paths on the proxied origin; they never reach the app.

``/__rsproxy/probe.js``, ``/__rsproxy/ws`` and ``/__rsproxy/events`` (and anything else under
``/__rsproxy/``) are routed to the runtime's local server with the internal token, so the page
can use them on its own origin (no CORS, no extra CSP host). A request whose ``Origin`` is not
the proxy's own origin is refused here: another site open in the same browser cannot open the
probe socket (which can run code in the page) or post fake events.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from mitmproxy import ctx, http

from rsproxy.api import INTERNAL_HEADER, PROBE_PREFIX

from .lifecycle import Lifecycle

INTERNAL = "rsproxy.internal"
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


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
        kept = getattr(
            ctx.options, "keep_host_header", False
        )  # declared by mitmproxy's proxyserver
        if kept and not trusted_host(request.host_header or "", flow):
            # A DNS-rebound name (evil.example resolving to 127.0.0.1) reaching the proxy port.
            flow.response = http.Response.make(
                403,
                f"rsproxy: host {request.host_header} refused".encode(),
                {"Content-Type": "text/plain; charset=utf-8"},
            )
            return
        origin = request.headers.get("Origin")
        if origin is not None and not trusted_origin(origin, flow):
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


def trusted_origin(origin: str, flow: http.HTTPFlow) -> bool:
    """Is ``origin`` a page served by this proxy?

    The Host header cannot tell (in reverse mode mitmproxy may already have rewritten it to the
    target's), so the test is on what the browser connected to: the origin's port must be the
    proxy's listening port, and its host a loopback name or the address the proxy listens on. A
    DNS-rebinding page (``http://evil.example:8080`` resolving to 127.0.0.1) fails the host test.
    """
    try:
        parts = urlsplit(origin)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    sockname = flow.client_conn.sockname
    if not sockname or port != sockname[1]:
        return False
    return _trusted_name(parts.hostname or "", flow)


def trusted_host(host_header: str, flow: http.HTTPFlow) -> bool:
    """Is the Host header a name of this proxy (a loopback name or the listening address)?"""
    try:
        hostname = urlsplit(f"//{host_header}").hostname or ""
    except ValueError:
        return False
    return _trusted_name(hostname, flow)


def _trusted_name(hostname: str, flow: http.HTTPFlow) -> bool:
    host = hostname.lower()
    sockname = flow.client_conn.sockname
    listening = str(sockname[0]) if sockname else ""
    return host in _LOOPBACK_NAMES or host.endswith(".localhost") or host == listening
