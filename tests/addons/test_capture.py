"""Unit tests for addons/capture.py: the ``http`` and ``ws_message`` events built from flows.

Flows are mitmproxy test flows with hand-set headers, bodies, encodings and timestamps; the
runtime is the recording stand-in from conftest, so each test reads exactly the events the addon
submitted. The body limit is set through the real ``rsproxy_body_limit`` option, declared by the
Lifecycle addon loaded in the same context.
"""

from __future__ import annotations

import base64

import pytest
from mitmproxy import flow as mflow
from mitmproxy import http
from mitmproxy.test import tflow, tutils
from mitmproxy.websocket import WebSocketMessage
from wsproto.frame_protocol import Opcode

from rsproxy.addons.capture import Capture, auth_pattern, http_event
from rsproxy.addons.probe_endpoint import INTERNAL
from rsproxy.addons.streaming import TEE, StreamTee

TIMING_KEYS = {"connect_ms", "tls_ms", "send_ms", "ttfb_ms", "receive_ms", "total_ms"}


@pytest.fixture
def capture(addon_context, lifecycle):
    addon = Capture(lifecycle)
    with addon_context(lifecycle, addon) as tctx:
        addon.tctx = tctx  # type: ignore[attr-defined]
        yield addon


def set_limit(capture: Capture, limit: int) -> None:
    capture.tctx.configure(capture.lifecycle, rsproxy_body_limit=limit)  # type: ignore[attr-defined]


def api_flow(
    *,
    method: str = "POST",
    path: str = "/api/items?page=2&sort=name",
    request_headers: list[tuple[str, str]] | None = None,
    request_body: bytes = b'{"name": "lamp"}',
    status: int = 201,
    response_headers: list[tuple[str, str]] | None = None,
    response_body: bytes = b'{"id": 7}',
) -> http.HTTPFlow:
    req = tutils.treq(
        method=method.encode(),
        host="localhost",
        port=3000,
        path=path.encode(),
        headers=http.Headers(
            [
                (k.encode(), v.encode())
                for k, v in (request_headers or [("Content-Type", "application/json")])
            ]
        ),
        content=request_body,
        timestamp_start=100.0,
        timestamp_end=100.5,
    )
    resp = tutils.tresp(
        status_code=status,
        reason=b"Created",
        headers=http.Headers(
            [
                (k.encode(), v.encode())
                for k, v in (response_headers or [("Content-Type", "application/json")])
            ]
        ),
        content=response_body,
        timestamp_start=100.75,
        timestamp_end=101.0,
    )
    flow = tflow.tflow(req=req, resp=resp)
    flow.request.headers["content-length"] = str(len(request_body))
    flow.response.headers["content-length"] = str(len(response_body))
    return flow


def only_event(runtime, kind: str = "http"):
    assert len(runtime.events) == 1, runtime.events
    event = runtime.events[0]
    assert event.kind == kind
    return event


# ---- the http event ------------------------------------------------------------------------------


def test_http_event_fields(capture, runtime):
    flow = api_flow(
        request_headers=[
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
            ("X-Trace", "a"),
            ("X-Trace", "b"),
        ],
        response_headers=[
            ("Content-Type", "application/json; charset=utf-8"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
        ],
    )
    capture.response(flow)
    event = only_event(runtime)
    data = event.data
    assert data["method"] == "POST"
    assert data["url"] == "http://localhost:3000/api/items?page=2&sort=name"
    assert data["scheme"] == "http"
    assert data["port"] == 3000
    assert data["path"] == "/api/items"
    assert data["query"] == "page=2&sort=name"
    assert data["status"] == 201
    assert data["reason"] == "Created"
    assert data["request_headers"] == [
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
        ("X-Trace", "a"),
        ("X-Trace", "b"),
        ("content-length", "16"),
    ]
    assert data["response_headers"] == [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("content-length", "9"),
    ]
    assert data["request_content_type"] == "application/json"
    assert data["response_content_type"] == "application/json; charset=utf-8"
    assert data["request_size"] == 16
    assert data["response_size"] == 9
    assert data["request_body"] == '{"name": "lamp"}'
    assert data["response_body"] == '{"id": 7}'
    assert data["request_body_encoding"] == data["response_body_encoding"] == "text"
    assert data["request_body_truncated"] is False
    assert data["response_body_truncated"] is False
    assert data["streamed"] is False
    assert data["websocket"] is False
    assert "error" not in data
    assert event.ts == 100_000.0
    assert data["started_ms"] == 100_000.0


def test_path_without_query_has_empty_query(capture, runtime):
    capture.response(api_flow(method="GET", path="/health"))
    data = only_event(runtime).data
    assert (data["path"], data["query"]) == ("/health", "")


def test_timings_are_milliseconds_between_mitmproxy_timestamps(capture, runtime):
    flow = api_flow()
    flow.server_conn.timestamp_start = 100.5
    flow.server_conn.timestamp_tcp_setup = 100.625
    flow.server_conn.timestamp_tls_setup = None
    capture.response(flow)
    timings = only_event(runtime).data["timings"]
    assert set(timings) == TIMING_KEYS
    assert timings == {
        "connect_ms": 125.0,
        "tls_ms": None,
        "send_ms": 500.0,
        "ttfb_ms": 250.0,
        "receive_ms": 250.0,
        "total_ms": 1000.0,
    }


def test_a_reused_connection_has_no_connect_time(capture, runtime):
    flow = api_flow()
    flow.server_conn.timestamp_start = 50.0  # opened for an earlier request
    flow.server_conn.timestamp_tcp_setup = 50.1
    capture.response(flow)
    timings = only_event(runtime).data["timings"]
    assert timings["connect_ms"] is None
    assert timings["tls_ms"] is None
    assert timings["ttfb_ms"] == 250.0


def test_encoded_response_size_is_the_wire_size_and_body_is_decoded(capture, runtime):
    text = b'{"rows": [' + b'{"a": 1},' * 500 + b"{}]}"
    flow = api_flow(response_body=text)
    flow.response.encode("gzip")
    capture.response(flow)
    data = only_event(runtime).data
    assert data["response_size"] == len(flow.response.raw_content) < len(text)
    assert data["response_body"] == text.decode()


# ---- bodies --------------------------------------------------------------------------------------


def test_body_is_capped_at_the_limit_with_a_truncated_flag(capture, runtime):
    set_limit(capture, 10)
    flow = api_flow(
        request_body=b"0123456789",
        response_headers=[("Content-Type", "text/plain")],
        response_body=b"abcdefghijklmnopqrstuvwxyz",
    )
    capture.response(flow)
    data = only_event(runtime).data
    assert data["response_body"] == "abcdefghij"
    assert data["response_body_truncated"] is True
    assert data["response_size"] == 26
    assert data["request_body"] == "0123456789"  # exactly at the limit: kept whole
    assert data["request_body_truncated"] is False


def test_limit_zero_keeps_no_body(capture, runtime):
    set_limit(capture, 0)
    capture.response(api_flow())
    data = only_event(runtime).data
    assert "response_body" not in data
    assert data["response_size"] == 9


def test_large_binary_body_is_omitted(capture, runtime):
    blob = bytes(range(256)) * 40
    flow = api_flow(response_headers=[("Content-Type", "image/png")], response_body=blob)
    capture.response(flow)
    data = only_event(runtime).data
    assert "response_body" not in data
    assert data["response_body_omitted"] == "binary"
    assert data["response_size"] == len(blob)


def test_small_binary_body_is_kept_as_base64(capture, runtime):
    blob = b"\x08\x96\x01\x12\x00\xff\xfe"
    flow = api_flow(
        response_headers=[("Content-Type", "application/x-protobuf")], response_body=blob
    )
    capture.response(flow)
    data = only_event(runtime).data
    assert data["response_body"] == base64.b64encode(blob).decode()
    assert data["response_body_encoding"] == "base64"
    assert data["response_body_truncated"] is False


@pytest.mark.parametrize(
    ("ctype", "body", "expected"),
    [
        ("", b"hello world", ("text", "hello world")),
        ("", b"\x00\x01\x02", ("base64", base64.b64encode(b"\x00\x01\x02").decode())),
        ("text/plain; charset=iso-8859-1", "café".encode("latin-1"), ("text", "café")),
        ("application/problem+json", b'{"title": "x"}', ("text", '{"title": "x"}')),
        ("application/x-www-form-urlencoded", b"a=1&b=2", ("text", "a=1&b=2")),
        ("image/svg+xml", b"<svg/>", ("text", "<svg/>")),
        ("application/octet-stream", b"ab", ("base64", base64.b64encode(b"ab").decode())),
    ],
)
def test_text_or_base64_by_content_type(capture, runtime, ctype, body, expected):
    headers = [("Content-Type", ctype)] if ctype else [("X-None", "1")]
    capture.response(api_flow(response_headers=headers, response_body=body))
    data = only_event(runtime).data
    assert (data["response_body_encoding"], data["response_body"]) == expected


def test_streamed_response_body_comes_from_the_tee(capture, runtime):
    set_limit(capture, 8)
    flow = api_flow(response_headers=[("Content-Type", "text/event-stream")], response_body=b"")
    tee = StreamTee(8)
    for chunk in (b"data: 1\n\n", b"data: 2\n\n"):
        tee(chunk)
    flow.response.stream = tee
    flow.metadata[TEE + ".response"] = tee
    capture.response(flow)
    data = only_event(runtime).data
    assert data["streamed"] is True
    assert data["response_size"] == 18
    assert data["response_body"] == "data: 1\n"
    assert data["response_body_truncated"] is True


def test_streamed_encoded_response_body_is_omitted(capture, runtime):
    flow = api_flow(
        response_headers=[("Content-Type", "application/x-ndjson"), ("Content-Encoding", "gzip")],
        response_body=b"",
    )
    tee = StreamTee(1024)
    tee(b"\x1f\x8b\x08\x00compressed")
    flow.response.stream = tee
    flow.metadata[TEE + ".response"] = tee
    capture.response(flow)
    data = only_event(runtime).data
    assert data["response_body_omitted"] == "streamed-encoded"
    assert "response_body" not in data
    assert data["response_size"] == tee.total


# ---- failures ------------------------------------------------------------------------------------


def test_error_without_response_is_captured_with_the_error(capture, runtime):
    flow = tflow.tflow(err=True)
    capture.error(flow)
    data = only_event(runtime).data
    assert data["status"] is None
    assert data["response_headers"] == []
    assert data["response_size"] == 0
    assert data["streamed"] is False
    assert data["error"] == flow.error.msg
    assert set(data["timings"]) == TIMING_KEYS
    assert data["timings"]["ttfb_ms"] is None
    assert data["timings"]["receive_ms"] is None


def test_response_interrupted_after_its_headers_is_captured(capture, runtime):
    flow = api_flow(response_headers=[("Content-Type", "text/event-stream")], response_body=b"")
    tee = StreamTee(1024)
    tee(b"data: hello\n\n")
    flow.response.stream = tee
    flow.metadata[TEE + ".response"] = tee
    flow.error = mflow.Error("peer closed connection")
    capture.error(flow)  # mitmproxy does not call the response hook for this flow
    data = only_event(runtime).data
    assert data["status"] == 201
    assert data["error"] == "peer closed connection"
    assert data["response_body"] == "data: hello\n\n"


# ---- auth pattern --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "path", "expected"),
    [
        ([("Authorization", "Bearer eyJhbGciOi.x.y")], "/", "bearer"),
        ([("authorization", "bearer abc")], "/", "bearer"),
        ([("Authorization", "Basic dXNlcjpwYXNz")], "/", "basic"),
        ([("Authorization", "Digest username=x")], "/", "authorization_other"),
        ([("X-API-Key", "k-123")], "/", "api_key_header"),
        ([("x-auth-token", "t")], "/", "api_key_header"),
        ([], "/v1/search?q=shoes&api_key=k-123", "api_key_query"),
        ([], "/v1/search?access_token=t", "api_key_query"),
        ([("Cookie", "theme=dark; sessionid=abc")], "/", "cookie"),
        ([("Cookie", "JSESSIONID=abc")], "/", "cookie"),
        ([("Cookie", "sid=abc")], "/", "cookie"),
        ([("Cookie", "theme=dark; lang=en")], "/", "none"),
        ([], "/v1/search?q=shoes", "none"),
        ([("Accept", "*/*")], "/", "none"),
    ],
)
def test_auth_pattern(headers, path, expected):
    lookup = {k.lower(): v for k, v in headers}
    assert auth_pattern(lookup, path.partition("?")[2]) == expected


def test_bearer_wins_over_an_api_key_header_and_a_session_cookie():
    lookup = {"authorization": "Bearer t", "x-api-key": "k", "cookie": "session=s"}
    assert auth_pattern(lookup, "") == "bearer"


def test_auth_pattern_is_in_the_event(capture, runtime):
    flow = api_flow(request_headers=[("Authorization", "Basic dXNlcjpwYXNz")])
    capture.response(flow)
    assert only_event(runtime).data["auth"] == "basic"


# ---- what is never captured ---------------------------------------------------------------------


def test_internal_flows_are_never_captured(capture, runtime):
    flow = api_flow(path="/__rsproxy/events")
    flow.metadata[INTERNAL] = True
    capture.response(flow)
    failed = tflow.tflow(err=True)
    failed.metadata[INTERNAL] = True
    capture.error(failed)
    ws = tflow.twebsocketflow()
    ws.metadata[INTERNAL] = True
    capture.websocket_message(ws)
    assert runtime.events == []


def test_nothing_is_captured_before_the_runtime_is_up(capture, runtime):
    capture.lifecycle.runtime = None
    capture.response(api_flow())
    capture.error(tflow.tflow(err=True))
    assert runtime.events == []


def test_http_event_is_pure_and_reusable():
    event = http_event(api_flow(), body_limit=4)
    assert event.kind == "http"
    assert event.data["response_body"] == '{"id'
    assert event.data["response_body_truncated"] is True


# ---- WebSocket -----------------------------------------------------------------------------------


def test_websocket_messages_become_ws_message_events_and_the_list_is_trimmed(capture, runtime):
    flow = tflow.twebsocketflow()
    ws = flow.websocket
    assert ws is not None and len(ws.messages) > 1
    last = ws.messages[-1]
    capture.websocket_message(flow)
    event = only_event(runtime, "ws_message")
    assert event.data == {
        "url": flow.request.url,
        "direction": "client" if last.from_client else "server",
        "opcode": "text" if last.is_text else "binary",
        "size": len(last.content),
        "text": last.text if last.is_text else None,
        "truncated": False,
    }
    assert event.ts == last.timestamp * 1000
    assert ws.messages == [last]

    ws.messages.append(WebSocketMessage(Opcode.TEXT, True, b'{"type":"ping"}', 1234.5))
    capture.websocket_message(flow)
    assert len(runtime.events) == 2
    second = runtime.events[1]
    assert second.data["direction"] == "client"
    assert second.data["text"] == '{"type":"ping"}'
    assert second.ts == 1_234_500.0
    assert len(ws.messages) == 1


def test_binary_websocket_message_keeps_no_text(capture, runtime):
    flow = tflow.twebsocketflow()
    flow.websocket.messages = [WebSocketMessage(Opcode.BINARY, False, b"\x00\x01\x02", 10.0)]
    capture.websocket_message(flow)
    data = only_event(runtime, "ws_message").data
    assert (data["opcode"], data["direction"], data["size"], data["text"]) == (
        "binary",
        "server",
        3,
        None,
    )
    assert data["truncated"] is False


def test_long_websocket_text_is_cut_and_flagged(capture, runtime):
    flow = tflow.twebsocketflow()
    flow.websocket.messages = [WebSocketMessage(Opcode.TEXT, False, b"x" * 5000, 10.0)]
    capture.websocket_message(flow)
    data = only_event(runtime, "ws_message").data
    assert data["text"] == "x" * 4096
    assert data["size"] == 5000
    assert data["truncated"] is True


def test_whole_non_ascii_websocket_text_is_not_flagged_truncated(capture, runtime):
    text = "é" * 3000  # 3000 characters, 6000 bytes: kept whole
    flow = tflow.twebsocketflow()
    flow.websocket.messages = [WebSocketMessage(Opcode.TEXT, False, text.encode(), 10.0)]
    capture.websocket_message(flow)
    data = only_event(runtime, "ws_message").data
    assert data["text"] == text
    assert data["truncated"] is False


def test_websocket_messages_are_trimmed_even_before_the_runtime_is_up(capture, runtime):
    capture.lifecycle.runtime = None
    flow = tflow.twebsocketflow()
    capture.websocket_message(flow)
    assert len(flow.websocket.messages) == 1
    assert runtime.events == []
