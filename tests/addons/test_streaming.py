"""Unit tests for addons/streaming.py: which bodies stream through, and what the StreamTee keeps.

The addon runs in a taddons context with the Lifecycle addon, which declares the
``rsproxy_body_limit`` option the tee's size comes from.
"""

from __future__ import annotations

import pytest
from mitmproxy import http
from mitmproxy.test import tflow

from rsproxy.addons.probe_endpoint import INTERNAL
from rsproxy.addons.streaming import LARGE_BODY, TEE, Streaming, StreamTee, should_stream


@pytest.fixture
def streaming(addon_context, lifecycle):
    addon = Streaming()
    with addon_context(lifecycle, addon) as tctx:
        tctx.configure(lifecycle, rsproxy_body_limit=32)
        yield addon


def response_flow(
    ctype: str = "application/json",
    *,
    length: int | None = 100,
    chunked: bool = False,
) -> http.HTTPFlow:
    flow = tflow.tflow(resp=True)
    headers = flow.response.headers
    headers["Content-Type"] = ctype
    del headers["content-length"]
    if length is not None:
        headers["Content-Length"] = str(length)
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
    return flow


def streamed(flow: http.HTTPFlow) -> bool:
    tee = flow.metadata.get(TEE + ".response")
    if tee is None:
        assert not flow.response.stream
        return False
    assert flow.response.stream is tee
    assert isinstance(tee, StreamTee)
    return True


# ---- responses -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ctype",
    [
        "text/event-stream",
        "text/event-stream; charset=utf-8",
        "Text/Event-Stream",
        "application/x-ndjson",
        "application/jsonl",
        "application/stream+json",
        "multipart/x-mixed-replace; boundary=frame",
        "application/grpc",
    ],
)
def test_stream_content_types_are_streamed_whatever_their_length(streaming, ctype):
    flow = response_flow(ctype, length=10)
    streaming.responseheaders(flow)
    assert streamed(flow)
    assert flow.metadata[TEE + ".response"].limit == 32


@pytest.mark.parametrize("ctype", ["application/json", "application/octet-stream", "text/plain"])
def test_chunked_non_html_is_streamed(streaming, ctype):
    flow = response_flow(ctype, length=None, chunked=True)
    streaming.responseheaders(flow)
    assert streamed(flow)


@pytest.mark.parametrize("ctype", ["text/html; charset=utf-8", "application/xhtml+xml"])
def test_chunked_html_is_buffered_for_injection(streaming, ctype):
    flow = response_flow(ctype, length=None, chunked=True)
    streaming.responseheaders(flow)
    assert not streamed(flow)


def test_a_body_announced_larger_than_the_threshold_is_streamed(streaming):
    flow = response_flow("application/zip", length=LARGE_BODY + 1)
    streaming.responseheaders(flow)
    assert streamed(flow)


def test_a_body_exactly_at_the_threshold_is_buffered(streaming):
    flow = response_flow("application/zip", length=LARGE_BODY)
    streaming.responseheaders(flow)
    assert not streamed(flow)


@pytest.mark.parametrize(
    "ctype", ["text/html", "application/json", "application/javascript", "image/png"]
)
def test_small_responses_are_buffered(streaming, ctype):
    flow = response_flow(ctype, length=5000)
    streaming.responseheaders(flow)
    assert not streamed(flow)


def test_html_is_not_streamed_even_without_a_length(streaming):
    flow = response_flow("text/html", length=None)
    streaming.responseheaders(flow)
    assert not streamed(flow)


def test_internal_flows_are_never_streamed(streaming):
    flow = response_flow("text/event-stream")
    flow.metadata[INTERNAL] = True
    streaming.responseheaders(flow)
    assert not streamed(flow)


def test_flow_without_response_is_ignored(streaming):
    flow = tflow.tflow()
    streaming.responseheaders(flow)
    assert flow.response is None
    assert TEE + ".response" not in flow.metadata


@pytest.mark.parametrize("length", ["abc", "-5", "1e9"])
def test_a_malformed_content_length_does_not_stream(length):
    flow = response_flow("application/octet-stream", length=None)
    flow.response.headers["Content-Length"] = length
    assert should_stream(flow.response) is False


# ---- requests ------------------------------------------------------------------------------------


def test_chunked_upload_is_streamed_with_a_tee(streaming):
    flow = tflow.tflow()
    del flow.request.headers["content-length"]
    flow.request.headers["Transfer-Encoding"] = "chunked"
    flow.request.headers["Content-Type"] = "application/octet-stream"
    streaming.requestheaders(flow)
    tee = flow.metadata[TEE + ".request"]
    assert isinstance(tee, StreamTee)
    assert flow.request.stream is tee
    assert tee.limit == 32


def test_ordinary_request_is_buffered(streaming):
    flow = tflow.tflow()
    streaming.requestheaders(flow)
    assert not flow.request.stream
    assert TEE + ".request" not in flow.metadata


def test_request_already_answered_is_not_streamed(streaming):
    flow = tflow.tflow()
    flow.request.headers["Content-Type"] = "application/x-ndjson"
    flow.response = http.Response.make(503)
    streaming.requestheaders(flow)
    assert not flow.request.stream


def test_internal_request_is_not_streamed(streaming):
    flow = tflow.tflow()
    flow.request.headers["Content-Type"] = "application/x-ndjson"
    flow.metadata[INTERNAL] = True
    streaming.requestheaders(flow)
    assert not flow.request.stream


# ---- StreamTee -----------------------------------------------------------------------------------


def test_tee_forwards_every_chunk_unchanged_and_keeps_only_the_first_bytes():
    tee = StreamTee(10)
    chunks = [b"hello ", b"streaming ", b"world", b""]
    forwarded = [tee(chunk) for chunk in chunks]
    assert forwarded == chunks
    assert all(out is chunk for out, chunk in zip(forwarded, chunks, strict=True))
    assert bytes(tee.head) == b"hello stre"
    assert tee.total == 21
    assert tee.truncated is True


def test_tee_under_its_limit_is_not_truncated():
    tee = StreamTee(100)
    tee(b"data: 1\n\n")
    tee(b"")  # mitmproxy's end-of-stream call
    assert bytes(tee.head) == b"data: 1\n\n"
    assert tee.total == 9
    assert tee.truncated is False


def test_tee_exactly_at_its_limit_is_not_truncated():
    tee = StreamTee(4)
    tee(b"ab")
    tee(b"cd")
    assert (bytes(tee.head), tee.total, tee.truncated) == (b"abcd", 4, False)


def test_tee_with_limit_zero_keeps_nothing_but_counts():
    tee = StreamTee(0)
    assert tee(b"abc") == b"abc"
    assert (bytes(tee.head), tee.total, tee.truncated) == (b"", 3, True)
