"""Adds the probe's ``<script>`` to every HTML document the proxy serves, exactly once.

Only whole documents get it: a response to ``fetch``/XHR (``Sec-Fetch-Dest: empty``), an HTML
fragment for htmx or Turbo, a ``HEAD``, a 204/304, a streamed body or a body that cannot be
decoded are left exactly as the server sent them. mitmproxy decodes gzip, deflate, br and zstd
for us and re-encodes with the same coding, fixing Content-Length. The page's
Content-Security-Policy (headers and ``<meta>``) is changed only as far as the probe needs.
"""

from __future__ import annotations

import logging

from mitmproxy import http

from rsproxy.injection import inject, rewrite_csp, rewrite_meta_csp

from .probe_endpoint import is_internal

log = logging.getLogger("rsproxy.inject")

INJECTED = "rsproxy.injected"
_DOCUMENT_DESTINATIONS = frozenset({"document", "iframe", "frame", "embed", "object"})
_CSP_HEADERS = ("content-security-policy", "content-security-policy-report-only")


def wants_probe(flow: http.HTTPFlow) -> bool:
    response = flow.response
    if response is None or is_internal(flow) or response.stream:
        return False
    if (
        flow.request.method == "HEAD"
        or response.status_code in (204, 304)
        or response.status_code < 200
    ):
        return False
    ctype = response.headers.get("content-type", "").lower()
    if "text/html" not in ctype and "application/xhtml+xml" not in ctype:
        return False
    destination = flow.request.headers.get("sec-fetch-dest")
    return destination is None or destination in _DOCUMENT_DESTINATIONS


class Inject:
    def response(self, flow: http.HTTPFlow) -> None:
        if not wants_probe(flow):
            return
        response = flow.response
        assert response is not None
        try:
            body = response.get_content(strict=True)
        except ValueError as exc:
            log.warning("not injecting into %s: cannot decode the body (%s)", flow.request.url, exc)
            return
        if not body:
            return
        nonce: str | None = None
        policies: dict[str, list[str]] = {}
        for name in _CSP_HEADERS:
            for policy in response.headers.get_all(name):
                rewritten, nonce = rewrite_csp(policy, nonce)
                policies.setdefault(name, []).append(rewritten)
        if b"content-security-policy" in body.lower():
            body, nonce = rewrite_meta_csp(body, nonce)
        injected = inject(body, nonce)
        if injected is None:
            return  # not a document: headers and body stay exactly as the server sent them
        for name, values in policies.items():
            response.headers.set_all(name, values)
        response.content = injected  # re-encoded with the response's Content-Encoding
        flow.metadata[INJECTED] = True
