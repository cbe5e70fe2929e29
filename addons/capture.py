"""Turns every exchange the proxy completes (or fails) into an ``http`` event for the pipeline.

The event holds what a developer needs to understand the exchange later: method, URL and its
parts, status, headers, content types, sizes, timings (connect, TTFB, total) and both bodies
capped at ``rsproxy_body_limit`` bytes with a truncated flag. Binary bodies are described, not
kept. The auth pattern (bearer, basic, API key, cookie, none) is classified here, before the
``redact`` stage removes the secrets it is read from. WebSocket messages become ``ws_message``
events. rsproxy's own paths are never captured.

The response recorded is the one the server sent, before the probe is injected into it.
"""

from __future__ import annotations

import base64
import logging
import re
from typing import Any

from mitmproxy import ctx, http

from rsproxy.events import Event

from .lifecycle import Lifecycle
from .probe_endpoint import is_internal
from .streaming import TEE, StreamTee

_TEXTUAL = re.compile(
    r"^(text/|application/(.*\+)?(json|xml|javascript|ecmascript|x-www-form-urlencoded|graphql"
    r"|x-ndjson|jsonl|csv|yaml|x-yaml)|image/svg\+xml|multipart/form-data)",
    re.IGNORECASE,
)
_API_KEY_HEADERS = frozenset(
    {"x-api-key", "api-key", "apikey", "x-apikey", "x-auth-token", "x-access-token", "x-token"}
)
_API_KEY_PARAMS = frozenset({"api_key", "apikey", "key", "access_token", "token", "auth"})
_SESSION_COOKIE = re.compile(r"sess|sid\b|auth|token|jwt|login|remember", re.IGNORECASE)
log = logging.getLogger("rsproxy.capture")

_WS_TEXT_LIMIT = 4096
CAPTURED = "rsproxy.captured"


class Capture:
    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle

    def response(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        # mitmproxy calls either `response` or `error` for a flow, never both; a stream cut off
        # after its headers (an SSE the browser closed) comes here with its response set.
        self._record(flow)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        runtime = self.lifecycle.runtime
        ws = flow.websocket
        if ws is None or not ws.messages:
            return
        message = ws.messages[-1]
        # mitmproxy keeps every message of a connection; an HMR socket lives for hours.
        del ws.messages[:-1]
        if runtime is None or is_internal(flow):
            return
        data: dict[str, Any] = {
            "url": flow.request.url,
            "direction": "client" if message.from_client else "server",
            "opcode": "text" if message.is_text else "binary",
            "size": len(message.content),
            "text": message.text[:_WS_TEXT_LIMIT] if message.is_text else None,
            "truncated": message.is_text and len(message.text) > _WS_TEXT_LIMIT,
        }
        runtime.submit(Event(kind="ws_message", data=data, ts=message.timestamp * 1000))

    def _record(self, flow: http.HTTPFlow) -> None:
        runtime = self.lifecycle.runtime
        if runtime is None or is_internal(flow) or flow.metadata.get(CAPTURED):
            return
        flow.metadata[CAPTURED] = True
        try:
            event = http_event(flow, ctx.options.rsproxy_body_limit)
        except Exception:
            # Never let a capture problem reach the addons after this one (the probe injection)
            # or the exchange itself; the exchange is simply not recorded.
            log.exception("could not capture %s %s", flow.request.method, flow.request.pretty_url)
            return
        runtime.submit(event)


def http_event(flow: http.HTTPFlow, body_limit: int) -> Event:
    """The ``http`` event for a finished (or failed) flow."""
    # This runs on the proxy's event loop for every exchange, so headers are decoded once, from
    # the raw fields, rather than through mitmproxy's per-lookup conversions.
    request, response = flow.request, flow.response
    request_headers = _headers(request)
    request_lookup = {name.lower(): value for name, value in request_headers}
    path, _, query = request.path.partition("?")
    data: dict[str, Any] = {
        "method": request.method,
        "url": request.url,
        "scheme": request.scheme,
        "host": request.host,
        "port": request.port,
        "path": path,
        "query": query,
        "http_version": request.http_version,
        "request_headers": request_headers,
        "request_content_type": request_lookup.get("content-type"),
        "auth": auth_pattern(request_lookup, query),
        "websocket": flow.websocket is not None,
        "started_ms": request.timestamp_start * 1000,
        "timings": timings(flow),
    }
    _body(data, "request", request, request_lookup, flow.metadata.get(TEE + ".request"), body_limit)
    if response is not None:
        response_headers = _headers(response)
        response_lookup = {name.lower(): value for name, value in response_headers}
        data.update(
            status=response.status_code,
            reason=response.reason,
            response_headers=response_headers,
            response_content_type=response_lookup.get("content-type"),
        )
        _body(
            data,
            "response",
            response,
            response_lookup,
            flow.metadata.get(TEE + ".response"),
            body_limit,
        )
        data["streamed"] = bool(response.stream)
    else:
        data.update(status=None, response_headers=[], response_size=0, streamed=False)
    if flow.error is not None:
        data["error"] = flow.error.msg
    return Event(kind="http", data=data, ts=request.timestamp_start * 1000)


def _headers(message: http.Message) -> list[tuple[str, str]]:
    return [
        (name.decode("latin-1"), value.decode("utf-8", "replace"))
        for name, value in message.headers.fields
    ]


def _body(
    data: dict[str, Any],
    side: str,
    message: http.Message,
    headers: dict[str, str],
    tee: StreamTee | None,
    limit: int,
) -> None:
    ctype = headers.get("content-type", "")
    if tee is not None:
        data[f"{side}_size"] = tee.total
        encoded = headers.get("content-encoding", "identity").lower() not in (
            "",
            "identity",
        )
        if encoded:
            data[f"{side}_body_omitted"] = "streamed-encoded"
            return
        raw, truncated = bytes(tee.head), tee.truncated
    else:
        raw_content = message.raw_content or b""
        data[f"{side}_size"] = len(raw_content)
        if not raw_content:
            return
        content = message.get_content(strict=False) or b""
        raw, truncated = content[:limit], len(content) > limit
    if not raw:
        return
    if _TEXTUAL.match(ctype) or (not ctype and _looks_textual(raw)):
        charset = _charset(ctype)
        text = raw.decode(charset, "replace") if charset else raw.decode("utf-8", "replace")
        data[f"{side}_body"] = text
        data[f"{side}_body_encoding"] = "text"
    elif len(raw) <= 4096:
        # Small binary bodies (protobuf, msgpack) are kept so an agent can still look at them.
        data[f"{side}_body"] = base64.b64encode(raw).decode()
        data[f"{side}_body_encoding"] = "base64"
    else:
        data[f"{side}_body_omitted"] = "binary"
        return
    data[f"{side}_body_truncated"] = truncated


def _charset(ctype: str) -> str | None:
    match = re.search(r"charset=([\w-]+)", ctype, re.IGNORECASE)
    if not match:
        return None
    try:
        "".encode(match.group(1))
    except LookupError:
        return None
    return match.group(1)


def _looks_textual(raw: bytes) -> bool:
    sample = raw[:512]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(sample) - 3  # a character cut by the sample's end is fine
    return True


def timings(flow: http.HTTPFlow) -> dict[str, float | None]:
    """Milliseconds per phase, from mitmproxy's timestamps (seconds since the epoch)."""
    request, response, server = flow.request, flow.response, flow.server_conn

    def span(start: float | None, end: float | None) -> float | None:
        if start is None or end is None or end < start:
            return None
        return round((end - start) * 1000, 3)

    # A connection opened for this request shows connect (and TLS) time; a reused one does not.
    fresh = server.timestamp_start is not None and server.timestamp_start >= request.timestamp_start
    connect = span(server.timestamp_start, server.timestamp_tcp_setup) if fresh else None
    tls = span(server.timestamp_tcp_setup, server.timestamp_tls_setup) if fresh else None
    return {
        "connect_ms": connect,
        "tls_ms": tls,
        "send_ms": span(request.timestamp_start, request.timestamp_end),
        "ttfb_ms": span(request.timestamp_end, response.timestamp_start) if response else None,
        "receive_ms": span(response.timestamp_start, response.timestamp_end) if response else None,
        "total_ms": span(
            request.timestamp_start,
            (response.timestamp_end if response else None)
            or (flow.error.timestamp if flow.error else None),
        ),
    }


def auth_pattern(headers: dict[str, str], query: str) -> str:
    """How a request authenticates, read from its (lower-cased, still unredacted) headers."""
    authorization = headers.get("authorization", "")
    scheme = authorization.split(" ", 1)[0].lower()
    if scheme == "bearer":
        return "bearer"
    if scheme == "basic":
        return "basic"
    if authorization:
        return "authorization_other"
    if not _API_KEY_HEADERS.isdisjoint(headers):
        return "api_key_header"
    if query and any(p.partition("=")[0].lower() in _API_KEY_PARAMS for p in query.split("&")):
        return "api_key_query"
    cookies = headers.get("cookie", "")
    if cookies and any(_SESSION_COOKIE.search(c.split("=", 1)[0]) for c in cookies.split(";")):
        return "cookie"
    return "none"
