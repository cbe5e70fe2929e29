"""Decides which responses stream through instead of being buffered, and keeps their first bytes.

mitmproxy buffers a whole body before forwarding it. That is right for HTML (the probe is
injected into it) and harmless for ordinary responses, but it would hold back Server-Sent
Events, NDJSON streams, long-polling and big downloads until they end. Those are streamed: each
chunk is passed on as it arrives while a ``StreamTee`` keeps the first bytes (up to the body
limit) for the capture addon.
"""

from __future__ import annotations

from mitmproxy import ctx, http

from .probe_endpoint import is_internal

TEE = "rsproxy.tee"

# Content types that are streams by nature, whatever their framing.
_STREAM_TYPES = (
    b"text/event-stream",
    b"application/x-ndjson",
    b"application/jsonl",
    b"application/stream+json",
    b"multipart/x-mixed-replace",
    b"application/grpc",
)
# Bodies announced larger than this are streamed rather than held in memory.
LARGE_BODY = 8 * 1024 * 1024


class StreamTee:
    """A mitmproxy stream callable: forwards chunks untouched, remembers the first ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.head = bytearray()
        self.total = 0

    def __call__(self, chunk: bytes) -> bytes:
        self.total += len(chunk)
        room = self.limit - len(self.head)
        if room > 0 and chunk:
            self.head += chunk[:room]
        return chunk

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head)


def should_stream(message: http.Message) -> bool:
    # Runs for every request and response: one pass over the raw header fields instead of
    # several decoding lookups.
    ctype = length = encoding = b""
    for name, value in message.headers.fields:
        lowered = name.lower()
        if lowered == b"content-type":
            ctype = value.lower()
        elif lowered == b"content-length":
            length = value
        elif lowered == b"transfer-encoding":
            encoding = value.lower()
    if ctype.startswith(_STREAM_TYPES):
        return True
    if length:
        return length.isdigit() and int(length) > LARGE_BODY
    # No length: a chunked (or read-until-close) body. HTML is buffered for injection; any
    # other chunked body may be a stream the app reads as it arrives.
    return b"chunked" in encoding and b"html" not in ctype


class Streaming:
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if is_internal(flow) or flow.response is not None:
            return
        if should_stream(flow.request):
            tee = StreamTee(ctx.options.rsproxy_body_limit)
            flow.request.stream = tee
            flow.metadata[TEE + ".request"] = tee

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        if response is None or is_internal(flow):
            return
        if should_stream(response):
            tee = StreamTee(ctx.options.rsproxy_body_limit)
            response.stream = tee
            flow.metadata[TEE + ".response"] = tee
