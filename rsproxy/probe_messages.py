"""Turning messages from page probes into events, safely.

The probe runs inside pages we do not control, so everything it sends is treated as hostile:
a message is size-capped before it is parsed, must have the documented shape, may carry only the
kinds a probe can observe, and has every string, list and nesting level capped. Rate limits apply
per connection and across all pages together, so one page (or many tabs of it) cannot flood the
daemon. Rejections are counted by reason, never raised into the server.

Wire format (WebSocket text frame or beacon body)::

    {"type": "events", "v": 1, "page_id": "9f2c...", "dropped": 0,
     "events": [{"kind": "console", "ts": 1700000000000, "data": {...}}, ...]}
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rsproxy.errors import ProbeMessageError
from rsproxy.events import KINDS, Event, now_ms

# Kinds a page can report: all but those only rsproxy's own components produce, so a page
# cannot forge a finding, a database query, a process or a proxied exchange.
PROBE_KINDS = KINDS - {"issue", "sql", "process", "http"}

MAX_MESSAGE_BYTES = 256 * 1024
MAX_EVENTS_PER_MESSAGE = 500
MAX_STRING = 16 * 1024
MAX_ITEMS = 200
MAX_DEPTH = 8
_MAX_ID = 64
# Timestamps further than this from the daemon's clock are replaced by the receive time.
_MAX_CLOCK_SKEW_MS = 24 * 3600 * 1000


class TokenBucket:
    """Allows ``rate`` per second on average with bursts of ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last = time.monotonic()

    def take(self, n: float = 1.0) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= n:
            self._tokens -= n
            return True
        return False


@dataclass
class ProbeStats:
    messages: int = 0
    events: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    page_dropped: int = 0  # events the pages themselves dropped while disconnected

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "events": self.events,
            "rejected": dict(self.rejected),
            "page_dropped": self.page_dropped,
        }


class ProbeIngest:
    """Validates probe messages; one instance per daemon, one ``TokenBucket`` per connection."""

    def __init__(self, *, per_connection_rate: float = 500, global_rate: float = 2_000) -> None:
        self.stats = ProbeStats()
        self._per_connection_rate = per_connection_rate
        self._global = TokenBucket(global_rate, global_rate * 5)

    def connection_limiter(self) -> TokenBucket:
        return TokenBucket(self._per_connection_rate, self._per_connection_rate * 4)

    def parse(self, raw: str | bytes, limiter: TokenBucket) -> list[Event]:
        """Events from one message; raises ProbeMessageError (already counted) when rejected."""
        message = self.decode(raw)
        if message.get("type") != "events":
            raise self._rejected('bad_shape: expected {"type": "events", ...}')
        return self.events(message, limiter)

    def decode(self, raw: str | bytes) -> dict[str, Any]:
        """The JSON object of one message, size-capped; ProbeMessageError (counted) otherwise."""
        if len(raw) > MAX_MESSAGE_BYTES:
            raise self._rejected(f"too_large: message of {len(raw)} bytes > {MAX_MESSAGE_BYTES}")
        try:
            message = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise self._rejected(f"not_json: {type(exc).__name__}") from None
        if not isinstance(message, dict):
            raise self._rejected("bad_shape: a message is a JSON object with a `type`")
        return message

    def _rejected(self, reason: str) -> ProbeMessageError:
        self.stats.rejected[reason.split(":")[0]] += 1
        return ProbeMessageError(reason)

    def events(self, message: dict[str, Any], limiter: TokenBucket) -> list[Event]:
        """Events from a decoded ``{"type": "events"}`` message."""
        try:
            return self._events(message, limiter)
        except ProbeMessageError as exc:
            self.stats.rejected[exc.args[0].split(":")[0]] += 1
            raise

    def _events(self, message: dict[str, Any], limiter: TokenBucket) -> list[Event]:
        items = message.get("events")
        if not isinstance(items, list):
            raise ProbeMessageError("bad_shape: `events` must be a list")
        if len(items) > MAX_EVENTS_PER_MESSAGE:
            raise ProbeMessageError(f"too_many: {len(items)} events > {MAX_EVENTS_PER_MESSAGE}")
        if not (limiter.take(len(items)) and self._global.take(len(items))):
            raise ProbeMessageError(f"rate_limited: {len(items)} events over the probe rate limit")
        page_id = _short_id(message.get("page_id"))
        dropped = message.get("dropped")
        if isinstance(dropped, int) and not isinstance(dropped, bool) and 0 < dropped < 10**9:
            self.stats.page_dropped += dropped
        self.stats.messages += 1
        events = []
        now = now_ms()
        for item in items:
            event = self._event(item, page_id, now)
            if event is None:
                self.stats.rejected["bad_event"] += 1
            else:
                events.append(event)
        self.stats.events += len(events)
        return events

    def _event(self, item: Any, page_id: str | None, now: float) -> Event | None:
        if not isinstance(item, dict):
            return None
        kind = item.get("kind")
        data = item.get("data", {})
        if not isinstance(kind, str) or kind not in PROBE_KINDS or not isinstance(data, dict):
            return None
        ts = _timestamp(item.get("ts"), now)
        return Event(
            kind=kind,
            data=sanitize(data),
            source="probe",
            ts=float(ts),
            page_id=_short_id(item.get("page_id")) or page_id,
        )


def _timestamp(value: Any, now: float) -> float:
    """The page's timestamp if it is a finite number near the daemon's clock, else ``now``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return now
    try:
        ts = float(value)
    except OverflowError:
        return now
    return ts if math.isfinite(ts) and abs(ts - now) <= _MAX_CLOCK_SKEW_MS else now


def _short_id(value: Any) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= _MAX_ID:
        return value
    return None


def sanitize(value: Any, depth: int = 0) -> Any:
    """A copy of a JSON value with strings, containers and depth capped."""
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING else value[:MAX_STRING] + "…[truncated]"
    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return value
    if depth >= MAX_DEPTH:
        return "[too deep]"
    if isinstance(value, dict):
        return {str(k)[:256]: sanitize(v, depth + 1) for k, v in list(value.items())[:MAX_ITEMS]}
    if isinstance(value, list):
        return [sanitize(v, depth + 1) for v in value[:MAX_ITEMS]]
    return str(value)[:MAX_STRING]
