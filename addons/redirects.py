"""Keeps the browser on the proxy when the app redirects to its own absolute URL.

A dev server that answers ``Location: http://localhost:3000/login`` would send the browser
straight to itself, around the proxy, and everything after that would go uncaptured. Redirects
that name the target's origin are rewritten to the proxy's origin (the one the browser used).
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit, urlunsplit

from mitmproxy import ctx, http

from .lifecycle import Lifecycle
from .probe_endpoint import is_internal

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


class Redirects:
    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle

    def response(self, flow: http.HTTPFlow) -> None:
        runtime = self.lifecycle.runtime
        response = flow.response
        if runtime is None or response is None or is_internal(flow):
            return
        location = response.headers.get("location")
        target = runtime.settings.target
        if not location or not target:
            return
        moved = urlsplit(location)
        aimed = urlsplit(target)
        if not moved.netloc or _port(moved) != _port(aimed):
            return
        same_host = moved.hostname == aimed.hostname or (
            moved.hostname in _LOOPBACK and aimed.hostname in _LOOPBACK
        )
        if same_host:
            proxy = urlsplit(runtime.settings.proxy_url)
            # With the Host header kept, it is the name the browser used (cookies are per host).
            netloc = flow.request.host_header if ctx.options.keep_host_header else None
            response.headers["location"] = urlunsplit(
                moved._replace(scheme=proxy.scheme, netloc=netloc or proxy.netloc)
            )


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None
