"""Presents the right Host to the target: the browser's for a local dev server, the target's own
name for a remote one.

rsproxy runs mitmproxy with ``keep_host_header`` so that rsproxy can check the name the browser
used (DNS rebinding, see ``probe_endpoint``) and so that a local dev server builds its absolute
URLs and redirects with the proxy's address, keeping the browser on the proxy. A remote target
(a staging host behind a CDN, say) routes by name and must see its own, which this addon sets.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from mitmproxy import ctx, http

from rsproxy.daemon import is_loopback

from .lifecycle import Lifecycle
from .probe_endpoint import is_internal


class UpstreamHost:
    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        runtime = self.lifecycle.runtime
        if (
            runtime is None
            or is_internal(flow)
            or not getattr(ctx.options, "keep_host_header", False)
        ):
            return
        target = runtime.settings.target
        if target and not is_loopback(target):
            flow.request.host_header = urlsplit(target).netloc
