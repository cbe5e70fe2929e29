"""The event envelope and the payloads of the kinds rsproxy records (DESIGN §4).

Every observation, whether it comes from the proxy, the page probe, a replayed HAR or a tap, is an
``Event``: a small envelope (time-ordered id, epoch-ms timestamp, project, session, page view,
source, kind, schema version) around a plain ``dict`` payload. Payloads stay dicts at run time
because stages touch them on the hot path; the ``TypedDict`` classes below are their documentation
and what type checkers see.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

SCHEMA_VERSION = 1

Source = Literal["proxy", "probe", "replay", "tap", "agent", "scanner"]
SOURCES: frozenset[str] = frozenset({"proxy", "probe", "replay", "tap", "agent", "scanner"})

KINDS: frozenset[str] = frozenset(
    {
        "http",
        "console",
        "error",
        "vital",
        "long_task",
        "resource",
        "render",
        "state",
        "dom_mutation",
        "tracking",
        "graphql",
        "sql",
        "ws_message",
        "process",
        "exec_result",
        "custom",
        "issue",
        "page_view",
    }
)


class _IdSource:
    """Time-ordered ids: 48 bits of epoch milliseconds, then an 80-bit sequence.

    Within one millisecond the sequence counts up from a random start, so ids made by one process
    sort in creation order and ids from different processes practically never collide. The id is
    32 lowercase hex characters: cheap to make (the pipeline makes 100k a second) and sortable as text.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._seq = 0

    def next(self, ms: int | None = None) -> str:
        now = int(time.time() * 1000) if ms is None else ms
        with self._lock:
            if now <= self._last_ms:
                now = self._last_ms
                self._seq += 1
            else:
                self._last_ms = now
                # Top bit left clear so the counter has room before it could overflow 80 bits.
                self._seq = int.from_bytes(os.urandom(10), "big") >> 1
            return f"{now:012x}{self._seq:020x}"


new_id = _IdSource().next


def now_ms() -> float:
    return time.time() * 1000.0


@dataclass(slots=True)
class Event:
    """One observation. ``data`` is the kind's payload; the runtime fills project and session."""

    kind: str
    data: dict[str, Any]
    source: str = "proxy"
    ts: float = field(default_factory=now_ms)
    id: str = field(default_factory=new_id)
    page_id: str | None = None
    session_id: str = ""
    project: str = ""
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": self.ts,
            "project": self.project,
            "session_id": self.session_id,
            "page_id": self.page_id,
            "source": self.source,
            "kind": self.kind,
            "schema_version": self.schema_version,
            "data": self.data,
        }


# ---- payloads -------------------------------------------------------------------------------

Header = tuple[str, str]


class HttpTimings(TypedDict, total=False):
    """Milliseconds; ``None`` where the phase did not happen (a reused connection has no connect)."""

    dns_ms: float | None
    connect_ms: float | None
    tls_ms: float | None
    send_ms: float | None
    ttfb_ms: float | None  # request fully sent → first response byte
    receive_ms: float | None
    total_ms: float | None  # first request byte → last response byte


class HttpPayload(TypedDict, total=False):
    method: str
    url: str
    scheme: str
    host: str
    port: int
    path: str
    query: str
    path_template: str | None  # filled by the normalize stage: /users/{userId}
    service: str | None  # filled by the normalize stage: "app", "stripe", "supabase", the host...
    http_version: str
    status: int | None  # None when no response came back
    reason: str | None
    error: str | None  # connection refused, timeout, ... when there is no response
    request_headers: list[Header]
    response_headers: list[Header]
    request_content_type: str | None
    response_content_type: str | None
    request_size: int  # body bytes as the client sent them
    response_size: int  # body bytes as the server sent them (still encoded)
    request_body: str | None
    request_body_encoding: Literal["text", "base64"] | None
    request_body_truncated: bool
    response_body: str | None
    response_body_encoding: Literal["text", "base64"] | None
    response_body_truncated: bool
    response_body_omitted: str | None  # why no body was kept: "binary", "streamed", ...
    streamed: bool
    websocket: bool
    auth: str  # bearer, basic, api_key_header, api_key_query, cookie, none
    timings: HttpTimings
    started_ms: float


class ConsolePayload(TypedDict, total=False):
    level: Literal["log", "info", "warn", "error", "debug"]
    message: str
    args: list[Any]
    stack: str | None


class ErrorPayload(TypedDict, total=False):
    type: Literal["error", "unhandledrejection"]
    message: str
    source: str | None
    line: int | None
    column: int | None
    stack: str | None


class PageViewPayload(TypedDict, total=False):
    url: str
    title: str
    referrer: str
    navigation: str  # load, push, replace, pop


class WsMessagePayload(TypedDict, total=False):
    url: str
    direction: Literal["client", "server"]
    opcode: Literal["text", "binary"]
    size: int
    text: str | None
    truncated: bool
