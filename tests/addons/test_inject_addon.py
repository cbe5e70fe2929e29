"""Unit tests for addons/inject.py, driven the mitmproxy way (taddons context, tflow flows).

An injected body is decoded with the codec libraries themselves (not with mitmproxy) to prove it
is still a valid body in its Content-Encoding, carries the tag exactly once and that
Content-Length describes the bytes actually sent.
"""

from __future__ import annotations

import gzip
import re
import zlib

import brotli
import pytest
import zstandard
from mitmproxy import http
from mitmproxy.test import tflow

from rsproxy.addons.inject import INJECTED, Inject
from rsproxy.addons.probe_endpoint import INTERNAL
from rsproxy.injection import PROBE_PATH, probe_tag

DOC = (
    b"<!doctype html><html><head><meta charset='utf-8'><title>Shop</title></head>"
    b"<body><h1>Shop</h1>" + b"<p>item</p>" * 200 + b"</body></html>"
)
INJECTED_DOC = DOC.replace(b"</head>", probe_tag() + b"</head>")


def html_flow(
    body: bytes = DOC,
    *,
    ctype: str = "text/html; charset=utf-8",
    method: str = "GET",
    status: int = 200,
    dest: str | None = "document",
) -> http.HTTPFlow:
    flow = tflow.tflow(resp=True)
    flow.request.method = method
    if dest is not None:
        flow.request.headers["Sec-Fetch-Dest"] = dest
    flow.response.status_code = status
    flow.response.headers["Content-Type"] = ctype
    flow.response.content = body
    return flow


def snapshot(flow: http.HTTPFlow) -> tuple[bytes | None, list[tuple[str, str]]]:
    assert flow.response is not None
    return flow.response.raw_content, list(flow.response.headers.items(multi=True))


def decode(raw: bytes, coding: str) -> bytes:
    if coding == "gzip":
        return gzip.decompress(raw)
    if coding == "deflate":
        try:
            return zlib.decompress(raw)
        except zlib.error:
            return zlib.decompress(raw, -zlib.MAX_WBITS)
    if coding == "br":
        return brotli.decompress(raw)
    if coding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    raise AssertionError(coding)


@pytest.fixture
def inject(addon_context):
    addon = Inject()
    with addon_context(addon):
        yield addon


# ---- what gets the probe ---------------------------------------------------------------------


def test_plain_html_document_is_injected_once_before_head_end(inject):
    flow = html_flow()
    inject.response(flow)
    assert flow.response.content == INJECTED_DOC
    assert flow.response.headers["content-length"] == str(len(INJECTED_DOC))
    assert flow.metadata[INJECTED] is True


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_encoded_html_is_injected_once_and_stays_encoded(inject, coding):
    flow = html_flow()
    flow.response.encode(coding)
    assert flow.response.raw_content != DOC

    inject.response(flow)

    raw = flow.response.raw_content
    assert flow.response.headers["content-encoding"] == coding
    assert flow.response.headers["content-length"] == str(len(raw))
    decoded = decode(raw, coding)
    assert decoded == INJECTED_DOC
    assert decoded.count(PROBE_PATH.encode()) == 1


def test_running_twice_still_injects_once(inject):
    flow = html_flow()
    flow.response.encode("gzip")
    inject.response(flow)
    inject.response(flow)
    assert gzip.decompress(flow.response.raw_content) == INJECTED_DOC


def test_a_page_that_already_has_the_probe_is_left_alone(inject):
    flow = html_flow(INJECTED_DOC)
    before = snapshot(flow)
    inject.response(flow)
    assert snapshot(flow) == before
    assert INJECTED not in flow.metadata


@pytest.mark.parametrize("dest", [None, "document", "iframe", "frame", "embed", "object"])
def test_document_destinations_and_no_fetch_metadata_are_injected(inject, dest):
    flow = html_flow(dest=dest)
    inject.response(flow)
    assert flow.response.content == INJECTED_DOC


@pytest.mark.parametrize(
    "ctype", ["application/xhtml+xml", "TEXT/HTML", "text/html;charset=ISO-8859-1"]
)
def test_html_content_types_are_injected(inject, ctype):
    flow = html_flow(ctype=ctype)
    inject.response(flow)
    assert flow.response.content == INJECTED_DOC


def test_error_pages_are_documents_too(inject):
    flow = html_flow(status=500)
    inject.response(flow)
    assert flow.response.content == INJECTED_DOC


# ---- what is left exactly as sent ------------------------------------------------------------


def _streamed(flow: http.HTTPFlow) -> None:
    flow.response.stream = True


def _internal(flow: http.HTTPFlow) -> None:
    flow.metadata[INTERNAL] = True


@pytest.mark.parametrize(
    ("build", "tweak"),
    [
        (lambda: html_flow(method="HEAD"), None),
        (lambda: html_flow(status=204), None),
        (lambda: html_flow(status=304), None),
        (lambda: html_flow(status=101), None),
        (lambda: html_flow(ctype="application/json"), None),
        (lambda: html_flow(ctype="text/plain"), None),
        (lambda: html_flow(ctype=""), None),
        (lambda: html_flow(dest="empty"), None),
        (lambda: html_flow(dest="script"), None),
        (lambda: html_flow(), _streamed),
        (lambda: html_flow(), _internal),
        (lambda: html_flow(b""), None),
        (lambda: html_flow(b'<div id="cart">3 items</div>'), None),
    ],
    ids=[
        "HEAD",
        "204",
        "304",
        "101",
        "json",
        "text-plain",
        "no-content-type",
        "sec-fetch-dest-empty",
        "sec-fetch-dest-script",
        "streamed",
        "internal",
        "empty-body",
        "fragment",
    ],
)
def test_untouched(inject, build, tweak):
    flow = build()
    if tweak is not None:
        tweak(flow)
    before = snapshot(flow)
    inject.response(flow)
    assert snapshot(flow) == before
    assert INJECTED not in flow.metadata


def test_flow_without_response_is_ignored(inject):
    flow = tflow.tflow(err=True)
    inject.response(flow)
    assert flow.response is None


def test_undecodable_body_is_left_untouched(inject):
    flow = html_flow()
    flow.response.headers["Content-Security-Policy"] = "script-src 'sha256-abc'"
    flow.response.headers["Content-Encoding"] = "gzip"
    flow.response.raw_content = b"this is not gzip at all"
    before = snapshot(flow)
    inject.response(flow)
    assert snapshot(flow) == before
    assert INJECTED not in flow.metadata


def test_unknown_content_encoding_is_left_untouched(inject):
    flow = html_flow()
    flow.response.headers["Content-Encoding"] = "x-custom"
    flow.response.raw_content = b"\x00\x01opaque"
    before = snapshot(flow)
    inject.response(flow)
    assert snapshot(flow) == before


def test_fragment_with_csp_header_is_left_exactly_as_sent(inject):
    flow = html_flow(b'<div id="cart">3 items</div>', dest=None)
    flow.response.headers["Content-Security-Policy"] = "script-src 'sha256-abc'"
    before = snapshot(flow)
    inject.response(flow)
    assert snapshot(flow) == before


# ---- CSP ---------------------------------------------------------------------------------------


def _tag_nonce(body: bytes) -> str | None:
    match = re.search(rb'<script src="/__rsproxy/probe\.js"(?: nonce="([^"]+)")?></script>', body)
    assert match is not None, body
    return match.group(1).decode() if match.group(1) else None


def test_csp_header_with_hashes_gets_a_nonce_the_tag_carries(inject):
    flow = html_flow()
    flow.response.headers["Content-Security-Policy"] = "script-src 'sha256-abc'; img-src 'self'"
    flow.response.encode("br")
    inject.response(flow)
    nonce = _tag_nonce(flow.response.content)
    assert nonce is not None
    assert flow.response.headers["Content-Security-Policy"] == (
        f"script-src 'sha256-abc' 'nonce-{nonce}'; img-src 'self'"
    )


def test_page_nonce_in_csp_header_is_reused_and_the_header_kept(inject):
    policy = "script-src 'nonce-pagenonce' 'strict-dynamic'; object-src 'none'"
    flow = html_flow()
    flow.response.headers["Content-Security-Policy"] = policy
    inject.response(flow)
    assert _tag_nonce(flow.response.content) == "pagenonce"
    assert flow.response.headers["Content-Security-Policy"] == policy


def test_unsafe_inline_csp_header_gets_self_and_the_tag_no_nonce(inject):
    flow = html_flow()
    flow.response.headers["Content-Security-Policy"] = "script-src 'unsafe-inline'"
    inject.response(flow)
    assert _tag_nonce(flow.response.content) is None
    assert flow.response.headers["Content-Security-Policy"] == "script-src 'unsafe-inline' 'self'"


def test_several_csp_headers_and_report_only_share_one_nonce(inject):
    flow = html_flow()
    flow.response.headers.set_all(
        "Content-Security-Policy",
        ["script-src 'sha256-abc'", "default-src 'self'; connect-src 'none'"],
    )
    flow.response.headers["Content-Security-Policy-Report-Only"] = "script-src 'strict-dynamic'"
    inject.response(flow)
    nonce = _tag_nonce(flow.response.content)
    assert nonce is not None
    assert flow.response.headers.get_all("Content-Security-Policy") == [
        f"script-src 'sha256-abc' 'nonce-{nonce}'",
        "default-src 'self'; connect-src 'self'; script-src 'self'",
    ]
    assert flow.response.headers["Content-Security-Policy-Report-Only"] == (
        f"script-src 'strict-dynamic' 'nonce-{nonce}'"
    )


def test_meta_csp_is_rewritten_with_the_nonce_the_tag_carries(inject):
    page = (
        b'<html><head><meta http-equiv="Content-Security-Policy" '
        b"content=\"script-src 'sha256-abc'; connect-src 'none'\"><title>x</title></head>"
        b"<body></body></html>"
    )
    flow = html_flow(page)
    flow.response.encode("gzip")
    inject.response(flow)
    body = gzip.decompress(flow.response.raw_content)
    nonce = _tag_nonce(body)
    assert nonce is not None
    assert (
        f'content="script-src &#x27;sha256-abc&#x27; &#x27;nonce-{nonce}&#x27;; '
        f'connect-src &#x27;self&#x27;"'
    ).encode() in body
    assert body.count(PROBE_PATH.encode()) == 1
    assert flow.response.headers["content-length"] == str(len(flow.response.raw_content))
