"""Issue detectors: what is wrong in a session, found incrementally from its events.

``Detectors.observe(event)`` looks at one event at a time and keeps only bounded state (sliding
windows of the last few occurrences per group, capped group tables), so it can run on every
event of a live session. What it finds goes into ``Findings``: one ``Finding`` per detector and
key, updated in place as occurrences repeat (count, first/last seen, capped evidence ids), never
one per occurrence. The ``detect`` stage (rsproxy/stages/detect.py) drives it and persists the
findings; the thresholds are ``Thresholds``, overridable in the pipeline file.

Every rule compares with a strict ``>``, so a value exactly at its threshold is never a finding.
A window of W ms holds occurrences whose timestamps lie at most W ms apart.

=========================  ==================================================  ===================
detector                   fires when                                          key (one finding)
=========================  ==================================================  ===================
failed_request             an HTTP response is 4xx (medium) or 5xx (high), or  method, template,
                           no response came from the server (high)             status
slow_request               total time > slow_request_ms (time to first byte    method, template
                           for streams and WebSockets)
n_plus_one_requests        one page view reads (GET/HEAD) one API template     method, template
                           more than n_plus_one_requests times in the window
                           (requests no page can be told for are not counted)
api_inconsistency          one endpoint answers one status with JSON that      method, template,
                           changes its top-level type, a key's type, or        status
                           renames a key (``name`` -> ``fullName``); a key
                           that comes and goes is an optional field, and null
                           fits any type. After 100 answers of one shape, one
                           in 8 is checked (bodies over 32 KB are not)
auth_mismatch              an API call to a service carries no credential      service
                           after an earlier call to it carried one (bearer,
                           basic, API key); login/logout/token paths excepted
write_amplification        one page sends more than write_amplification       http + service, or
                           writes (POST/PUT/PATCH/DELETE) to one service in    sql + table
                           the window; or more than that many INSERT/UPDATE/
                           DELETE statements hit one table in the window
console_error_spam         the same console error or uncaught error (numbers   the message
                           masked) more than console_error_spam times in the
                           window
long_task                  a main-thread task > long_task_ms                   one per session
large_dom_mutation         one insertion adds > dom_mutation_nodes nodes       target element
poor_web_vital             LCP, CLS, INP, FCP or TTFB above Google's "poor"    the metric
                           threshold
store_thrashing            a Redux/Zustand store updates more than             library, store
                           store_updates_per_s times within one second
unnecessary_renders        a component re-renders with identical props and     component
                           no state or context change (the probe's "parent"
                           reason) more than unnecessary_renders times in the
                           window
render_cascade             a component's own state change re-renders more      the component
                           than render_cascade_components components in one
                           commit (mounts not counted)
slow_query                 an SQL statement takes > slow_query_ms              fingerprint
n_plus_one_queries         more than n_plus_one_queries SELECTs with distinct  table
                           texts (different values) read one table in the
                           window
select_star                a SELECT * (over-fetching)                          fingerprint
=========================  ==================================================  ===================

``count`` is the number of occurrences: requests, responses, calls, tasks, page views,
statements, or — for the windowed detectors (N+1, spam, thrashing, write amplification,
unnecessary renders) — bursts, a burst being a stretch of time during which the window stays
over its threshold.

Groups by URL template use the ``path_template`` the normalize stage sets and fall back to the
path with numeric, UUID, ULID and hash segments replaced by ``{id}``; SQL fields (fingerprint,
tables, statement type, SELECT * flag) likewise fall back to a light parse of the text.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from rsproxy.analysis.assets import ASSET_EXTENSIONS, ASSET_TYPE_MARKERS, extension
from rsproxy.events import Event

Severity = Literal["high", "medium", "low"]
SEVERITY_RANK: dict[str, int] = {"high": 0, "medium": 1, "low": 2}

# name -> what it finds, for `rsproxy pipeline stages`, the report's validation and the docs.
DETECTORS: dict[str, str] = {
    "failed_request": "HTTP 4xx/5xx responses and requests that got no response",
    "slow_request": "requests slower than slow_request_ms",
    "n_plus_one_requests": "one page reading the same API template many times in a short window",
    "api_inconsistency": "one endpoint answering one status with JSON of different shapes",
    "auth_mismatch": "calls to a service without credentials after calls to it with them",
    "write_amplification": "bursts of writes (HTTP or SQL) for one action",
    "console_error_spam": "the same error logged again and again",
    "long_task": "main-thread tasks longer than long_task_ms",
    "large_dom_mutation": "single DOM insertions of many nodes",
    "poor_web_vital": "LCP, CLS, INP, FCP or TTFB in Google's 'poor' range",
    "store_thrashing": "a Redux/Zustand store updated more than store_updates_per_s times a second",
    "unnecessary_renders": "React components re-rendering with identical props",
    "render_cascade": "one state change re-rendering many components in one commit",
    "slow_query": "SQL statements slower than slow_query_ms",
    "n_plus_one_queries": "many SELECTs on one table with different values in a short window",
    "select_star": "SELECT * over-fetching",
}
DetectorName = Literal[
    "failed_request",
    "slow_request",
    "n_plus_one_requests",
    "api_inconsistency",
    "auth_mismatch",
    "write_amplification",
    "console_error_spam",
    "long_task",
    "large_dom_mutation",
    "poor_web_vital",
    "store_thrashing",
    "unnecessary_renders",
    "render_cascade",
    "slow_query",
    "n_plus_one_queries",
    "select_star",
]


class Thresholds(BaseModel):
    """The detectors' limits; each is exceeded only by a strictly greater value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slow_request_ms: float = Field(default=3000, gt=0, description="A request slower is slow.")
    n_plus_one_requests: int = Field(
        default=5, gt=0, description="More reads of one template than this per page and window."
    )
    n_plus_one_window_ms: float = Field(default=2000, gt=0)
    console_error_spam: int = Field(
        default=5, gt=0, description="More repeats of one error than this in the window."
    )
    console_error_window_ms: float = Field(default=10_000, gt=0)
    long_task_ms: float = Field(default=100, gt=0, description="A main-thread task longer is long.")
    dom_mutation_nodes: int = Field(
        default=500, gt=0, description="One insertion adding more nodes than this is large."
    )
    lcp_ms: float = Field(default=4000, gt=0, description="Poor Largest Contentful Paint.")
    cls: float = Field(default=0.25, gt=0, description="Poor Cumulative Layout Shift.")
    inp_ms: float = Field(default=500, gt=0, description="Poor Interaction to Next Paint.")
    fcp_ms: float = Field(default=3000, gt=0, description="Poor First Contentful Paint.")
    ttfb_ms: float = Field(default=1800, gt=0, description="Poor Time to First Byte.")
    store_updates_per_s: int = Field(
        default=10, gt=0, description="More updates of one store than this within one second."
    )
    unnecessary_renders: int = Field(
        default=20, gt=0, description="More identical-props re-renders of one component."
    )
    unnecessary_renders_window_ms: float = Field(default=2000, gt=0)
    render_cascade_components: int = Field(
        default=20, gt=0, description="More components re-rendered by one state change."
    )
    slow_query_ms: float = Field(default=500, gt=0, description="A statement slower is slow.")
    n_plus_one_queries: int = Field(
        default=5, gt=0, description="More SELECTs of one table with distinct values than this."
    )
    n_plus_one_queries_window_ms: float = Field(default=2000, gt=0)
    write_amplification: int = Field(
        default=10, gt=0, description="More writes than this for one action (page or table)."
    )
    write_amplification_window_ms: float = Field(default=2000, gt=0)

    def vital_limits(self) -> dict[str, float]:
        return {
            "LCP": self.lcp_ms,
            "CLS": self.cls,
            "INP": self.inp_ms,
            "FCP": self.fcp_ms,
            "TTFB": self.ttfb_ms,
        }


# ---- findings -------------------------------------------------------------------------------------


def finding_id(detector: str, key: str) -> str:
    """Stable for the same detector and key, short whatever the key's length."""
    return f"{detector}:{hashlib.sha1(key.encode()).hexdigest()[:16]}"


@dataclass(eq=False)
class Finding:
    """One deduplicated finding. Evidence keeps the first and the latest occurrences' event ids.

    The explanation is written from ``details`` when the finding is stored (``explain``), so an
    occurrence only updates numbers, never formats text: detection stays cheap however often a
    problem repeats.
    """

    id: str
    detector: str
    key: str
    severity: str
    title: str
    suggestion: str
    first_seen: float
    last_seen: float
    count: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    head: list[str] = field(default_factory=list)
    tail: deque[str] = field(default_factory=deque)
    explanation: str = ""
    explain: Callable[[Finding], str] | None = None

    @property
    def evidence(self) -> list[str]:
        return [*self.head, *self.tail]

    def add_evidence(self, ids: Iterable[str], cap: int) -> None:
        head, tail = self.head, self.tail
        keep_first = cap - cap // 2
        for eid in ids:
            if eid in head or eid in tail:
                continue
            if len(head) < keep_first:
                head.append(eid)
            else:
                if tail.maxlen != cap - keep_first:
                    self.tail = tail = deque(tail, maxlen=cap - keep_first)
                tail.append(eid)

    def data(self) -> dict[str, Any]:
        """The ``issues.data`` column and the payload of the ``issue`` event."""
        if self.explain is not None:
            self.explanation = self.explain(self)
        return {
            "explanation": self.explanation,
            "suggestion": self.suggestion,
            "evidence": self.evidence,
            "key": self.key,
            "details": self.details,
        }

    def row(self, session_id: str) -> dict[str, Any]:
        return {
            "session_id": session_id,
            "id": self.id,
            "detector": self.detector,
            "severity": self.severity,
            "title": self.title,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "count": self.count,
            "data": self.data(),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any], cap: int) -> Finding:
        data = row.get("data")
        if isinstance(data, str):
            data = json.loads(data)
        data = data if isinstance(data, dict) else {}
        finding = cls(
            id=row["id"],
            detector=row["detector"],
            key=str(data.get("key", "")),
            severity=row["severity"],
            title=row["title"],
            suggestion=str(data.get("suggestion", "")),
            first_seen=float(row["first_seen"]),
            last_seen=float(row["last_seen"]),
            count=int(row["count"]),
            details=data.get("details") or {},
            explanation=str(data.get("explanation", "")),
        )
        finding.add_evidence([str(e) for e in data.get("evidence") or ()], cap)
        return finding


class Findings:
    """The session's findings by detector and key, and what changed (and what is new) since
    last taken. ``hit`` records another occurrence of a known finding (None when there is none
    yet), ``new`` creates one; ``explainers`` write each detector's explanation."""

    def __init__(self, max_evidence: int = 20, limit: int = 5000) -> None:
        self.max_evidence = max_evidence
        self.limit = limit  # a flood of distinct keys must not grow memory without end
        self.dropped = 0
        self.explainers: dict[str, Callable[[Finding], str]] = {}
        self._by_key: dict[tuple[str, str], Finding] = {}
        self._changed: dict[str, Finding] = {}
        self._new: list[tuple[Finding, Event]] = []

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[Finding]:
        return iter(self._by_key.values())

    def get(self, detector: str, key: str) -> Finding | None:
        return self._by_key.get((detector, key))

    def restore(self, findings: Iterable[Finding]) -> None:
        """Findings already stored for this session (a reloaded pipeline goes on counting)."""
        for finding in findings:
            finding.explain = self.explainers.get(finding.detector)
            self._by_key[(finding.detector, finding.key)] = finding

    def hit(
        self, detector: str, key: str, event: Event, evidence: Iterable[str] = (), count: int = 1
    ) -> Finding | None:
        """Another occurrence of a known finding (``count`` 0: only evidence and last seen)."""
        finding = self._by_key.get((detector, key))
        if finding is None:
            return None
        ts = event.ts
        if ts > finding.last_seen:
            finding.last_seen = ts
        elif ts < finding.first_seen:
            finding.first_seen = ts
        finding.count += count
        finding.add_evidence(evidence, self.max_evidence)
        self._changed[finding.id] = finding
        return finding

    def new(
        self,
        detector: str,
        key: str,
        event: Event,
        evidence: Iterable[str] = (),
        count: int = 1,
        *,
        severity: str,
        title: str,
        suggestion: str,
    ) -> Finding | None:
        """A finding seen for the first time (None once ``limit`` findings exist)."""
        if len(self._by_key) >= self.limit:
            self.dropped += 1
            return None
        finding = Finding(
            finding_id(detector, key),
            detector,
            key,
            severity,
            title,
            suggestion,
            event.ts,
            event.ts,
            count,
            explain=self.explainers.get(detector),
        )
        finding.add_evidence(evidence, self.max_evidence)
        self._by_key[(detector, key)] = finding
        self._changed[finding.id] = finding
        self._new.append((finding, event))
        return finding

    def take_changed(self) -> list[Finding]:
        changed, self._changed = list(self._changed.values()), {}
        return changed

    def take_new(self) -> list[tuple[Finding, Event]]:
        new, self._new = self._new, []
        return new


# ---- windows --------------------------------------------------------------------------------------


def _shrink(groups: dict[Any, Any]) -> None:
    """Forget the older half of a group table (insertion order): bounded memory, and a group
    not seen for a while has nothing left in its window anyway."""
    for key in list(islice(groups, len(groups) // 2)):
        del groups[key]


class _Burst:
    __slots__ = ("active", "items", "size", "started")

    def __init__(self) -> None:
        self.items: list[tuple[float, str, str]] = []  # (ts, event id, label)
        self.active = False
        self.started = False  # the last occurrence began this burst
        self.size = 0  # occurrences in the current burst


class _Bursts:
    """Per group, the last ``threshold + 1`` occurrences: more than ``threshold`` of them within
    ``window_ms`` exactly when those span at most the window. ``add`` returns the group while it
    is in a burst (its ``started`` tells whether this occurrence began it)."""

    def __init__(self, threshold: int, window_ms: float, limit: int = 4096) -> None:
        self.need = threshold + 1
        self.window = window_ms
        self.limit = limit
        self.groups: dict[Any, _Burst] = {}

    def add(self, key: Any, ts: float, eid: str, label: str = "") -> _Burst | None:
        groups = self.groups
        burst = groups.get(key)
        if burst is None:
            if len(groups) >= self.limit:
                _shrink(groups)
            burst = groups[key] = _Burst()
        items = burst.items
        if not items or ts >= items[-1][0]:
            items.append((ts, eid, label))
        else:  # events of one group may arrive a little out of order (a slow response)
            bisect.insort(items, (ts, eid, label))
        if len(items) > self.need:
            del items[0]
        if len(items) == self.need and items[-1][0] - items[0][0] <= self.window:
            burst.started = not burst.active
            burst.size = self.need if burst.started else burst.size + 1
            burst.active = True
            return burst
        burst.active = False
        return None


class _SumWindow:
    __slots__ = ("active", "items", "newest", "started", "total")

    def __init__(self) -> None:
        self.items: deque[tuple[float, float, str]] = deque()
        self.total = 0.0
        self.newest = float("-inf")
        self.active = False
        self.started = False


class _Sums:
    """Per group, a sum of weights over a sliding window (a render event carries a count of
    renders), over its threshold while the sum is greater."""

    def __init__(self, threshold: float, window_ms: float, limit: int = 4096) -> None:
        self.threshold = threshold
        self.window = window_ms
        self.limit = limit
        self.groups: dict[Any, _SumWindow] = {}

    def add(self, key: Any, ts: float, weight: float, eid: str) -> _SumWindow | None:
        groups = self.groups
        win = groups.get(key)
        if win is None:
            if len(groups) >= self.limit:
                _shrink(groups)
            win = groups[key] = _SumWindow()
        items = win.items
        items.append((ts, weight, eid))
        win.total += weight
        if ts > win.newest:
            win.newest = ts
        while items and win.newest - items[0][0] > self.window:
            win.total -= items.popleft()[1]
        while len(items) > 256:  # a flood of tiny events: keep the window's memory bounded
            win.total -= items.popleft()[1]
        if win.total > self.threshold:
            win.started = not win.active
            win.active = True
            return win
        win.active = False
        return None


# ---- helpers over payloads ------------------------------------------------------------------------

# A path segment that is an id: digits, a UUID, a ULID, a Mongo ObjectId, a long hex hash.
_ID_SEGMENT = re.compile(
    r"^(?:\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|[0-9A-HJKMNP-TV-Z]{26}|(?=[a-f]*\d)[0-9a-f]{16,})$",
    re.IGNORECASE,
)


def template_of(data: dict[str, Any]) -> str:
    """The normalize stage's ``path_template``, else the path with id-like segments as ``{id}``."""
    template = data.get("path_template")
    if isinstance(template, str) and template:
        return template
    path = data.get("path")
    if not isinstance(path, str) or not path:
        return "/"
    return "/".join("{id}" if _ID_SEGMENT.match(s) else s for s in path.split("/"))


# Not calls to an API by their name: assets, and documents and data files served as they are
# (translations, manifests, feeds).
_NOT_API_EXTENSIONS = ASSET_EXTENSIONS | {".html", ".htm", ".json", ".xml", ".txt"}
_NOT_API_TYPES = ("text/html", "event-stream", *ASSET_TYPE_MARKERS)
_READS = frozenset({"GET", "HEAD"})
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_EXPLICIT_AUTH = frozenset(
    {"bearer", "basic", "api_key_header", "api_key_query", "authorization_other"}
)
# Calls that legitimately go without the credential they obtain, renew or drop.
_AUTH_FLOW = re.compile(
    r"/(?:log-?in|log-?out|sign-?in|sign-?out|sign-?up|register|auth|oauth2?|tokens?|refresh"
    r"|sessions?|password|csrf|healthz?|ping|\.well-known)(?:/|$|\.)",
    re.IGNORECASE,
)
# Analytics and monitoring beacons write by design; they are not an app's write amplification.
_TELEMETRY_SERVICES = frozenset(
    {
        "google-analytics",
        "googletagmanager",
        "segment",
        "mixpanel",
        "amplitude",
        "posthog",
        "sentry",
        "datadog",
        "hotjar",
        "plausible",
    }
)
_REQUEST_ID = "x-rsproxy-request-id"


def is_api_call(data: dict[str, Any], method: str) -> bool:
    """A call an app makes to an API: not a document, script, stylesheet, image, font, data file
    (``.json``, ``.xml``: translations, manifests, feeds), stream, WebSocket or CORS preflight."""
    ctype = data.get("response_content_type")
    return _is_api_call(data, method, content_of(ctype) if ctype else _NO_CONTENT)


def _is_api_call(data: dict[str, Any], method: str, content: tuple[bool, bool, bool]) -> bool:
    """``is_api_call`` given ``content_of`` the response's content type."""
    if method == "OPTIONS" or data.get("websocket") or not content[0]:
        return False
    path = data.get("path")
    if not isinstance(path, str):
        return True
    return extension(path) not in _NOT_API_EXTENSIONS


def content_of(ctype: Any) -> tuple[bool, bool, bool]:
    """(an API answers with it, a stream, JSON) for a content type; cached, since a session has
    a handful of them."""
    known = _CONTENT.get(ctype)
    if known is None:
        lowered = str(ctype).lower()
        known = (
            not any(t in lowered for t in _NOT_API_TYPES),
            "event-stream" in lowered,
            "json" in lowered,
        )
        if len(_CONTENT) < 1024:
            _CONTENT[ctype] = known
    return known


_CONTENT: dict[Any, tuple[bool, bool, bool]] = {}
_NO_CONTENT = (True, False, False)  # content_of a missing content type
_SETTLED_AFTER = 100  # answers of one endpoint and status checked one by one ...
_SETTLED_SAMPLE = 8  # ... and after that, while all agree, one in this many
# Bodies longer than this are not parsed for their shape: parsing costs by the byte, and a
# top-level shape change shows in an endpoint's small answers too.
_MAX_SHAPE_BODY = 32 * 1024
_json_decode = json.JSONDecoder().decode  # json.loads without its per-call checks


def _decode(body: str) -> Any:
    """A response body's JSON, for its shape. orjson is several times quicker; the json module
    reads what orjson refuses (NaN, numbers out of a double's range). Only keys and the kinds of
    values matter here, and the one difference in what both accept, an integer past 64 bits
    read as a float by orjson, is a "number" either way."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return _json_decode(body)


def page_of(data: dict[str, Any]) -> str:
    """The page view a request came from: the probe's request id (``<page_id>-<n>``), else the
    Referer without its query, else '' (unknown)."""
    referer = ""
    for pair in data.get("request_headers") or ():
        try:
            name, value = pair
        except (TypeError, ValueError):
            continue
        # Only two names matter: their lengths rule out the other headers without lower().
        size = len(name)
        if size == 20 and name.lower() == _REQUEST_ID:
            return "page:" + str(value).rpartition("-")[0]
        if size == 7 and name.lower() == "referer":
            referer = str(value).split("?", 1)[0]
    return referer


def service_of(data: dict[str, Any]) -> str:
    service = data.get("service")
    if isinstance(service, str) and service:
        return service
    return str(data.get("host") or "unknown")


def _num(value: Any) -> float:
    """A number from a payload a page sent (anything else counts as 0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value)


def _text(value: Any, cap: int = 200) -> str:
    return (value if isinstance(value, str) else str(value))[:cap]


def _secs(ms: float) -> str:
    return f"{ms / 1000:g} s"


# Numbers, hex and UUIDs in an error message: "item 42 failed" and "item 43 failed" are one error.
_VARYING = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|0x[0-9a-f]+|\d+", re.IGNORECASE
)


def error_key(message: str) -> str:
    return _VARYING.sub("#", message.strip())[:300]


# ---- JSON response shapes ----------------------------------------------------------------------

_KINDS: dict[type, str] = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
    type(None): "null",
}


def _kind(value: Any) -> str:
    return _KINDS.get(type(value), "other")


def _norm_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def similar_keys(a: str, b: str) -> bool:
    """Whether ``b`` reads as a rename of ``a``: ``user_id``/``userId``, ``name``/``fullName``."""
    na, nb = _norm_key(a), _norm_key(b)
    if na == nb:
        return True
    short, long = (na, nb) if len(na) <= len(nb) else (nb, na)
    return len(short) >= 3 and short in long


def describe_json(value: Any) -> str:
    """A JSON value's top-level shape in words: ``{id: number, name: string}``."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_kind(v)}" for k, v in islice(value.items(), 20)) + "}"
    if isinstance(value, list):
        return f"array of {_kind(value[0])}" if value else "array"
    return _kind(value)


class ResponseShapes:
    """What one endpoint has answered one status with, and how a new answer departs from it.

    A key that comes and goes is an optional field (many serializers leave out null values), not
    an inconsistency, and null fits any type (a nullable field). What breaks a client is:

    * the top-level type changes (an object, then an array);
    * a key changes type (``"id": 7``, then ``"id": "7"``);
    * a key is renamed: an answer lacks a key every earlier answer had and has, instead, a key
      never seen before with a similar name (``name`` -> ``fullName``, ``user_id`` -> ``userId``).
    """

    __slots__ = ("answers", "first", "first_id", "item", "kinds", "last_body", "last_difference",
                 "required", "seen", "top")  # fmt: skip

    def __init__(self, value: Any, event_id: str, body: str) -> None:
        self.top = _kind(value)
        self.item = _kind(value[0]) if isinstance(value, list) and value else None
        self.kinds: dict[str, str] = (
            {str(k): _kind(v) for k, v in value.items()} if isinstance(value, dict) else {}
        )
        self.required = set(self.kinds)  # keys every answer so far had
        self.first = describe_json(value)
        self.first_id = event_id
        self.last_body = body  # an identical answer (polling) is judged without parsing it
        self.last_difference: dict[str, Any] | None = None
        self.seen: set[str] = set()  # differences already described in a finding
        self.answers = 1

    def difference(self, value: Any) -> dict[str, Any] | None:
        kind = _kind(value)
        if kind != self.top:
            if kind == "null" or self.top == "null":
                return None
            return {"type": {"was": self.top, "now": kind}}
        if kind == "array":
            item = _kind(value[0]) if value else "null"
            if item == "null" or self.item in (None, "null", item):
                self.item = self.item if self.item not in (None, "null") else item
                return None
            return {"item_type": {"was": self.item, "now": item}}
        if kind != "object":
            return None
        kinds = self.kinds
        added: list[str] | None = None
        changed: dict[str, Any] | None = None
        for key, item in value.items():
            expected = kinds.get(key)
            if expected is None:
                added = added or []
                added.append(key)
                if len(kinds) < 500:
                    kinds[key] = _kind(item)
            elif item is not None:
                now = _KINDS.get(type(item), "other")
                if now != expected:
                    if expected == "null":
                        kinds[key] = now
                    else:
                        changed = changed or {}
                        changed[key] = {"was": expected, "now": now}
        required = self.required
        missing = [k for k in required if k not in value] if required else None
        if missing:
            required.difference_update(missing)
        out: dict[str, Any] = {}
        if missing and added:
            renamed = {a: b for a in sorted(missing) for b in added if similar_keys(a, b)}
            if renamed:
                out["renamed"] = renamed
        if changed:
            out["changed_types"] = changed
        return out or None


# ---- SQL fallbacks (the normalize stage sets the real fields) ----------------------------------

_SQL_LITERAL = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")
_SQL_IN_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)+\s*\)")
_SQL_SPACE = re.compile(r"\s+")
_SQL_TABLE = re.compile(
    r"\b(?:from|join|into|update)\s+((?:[\w$]+|\"[^\"]+\")(?:\.(?:[\w$]+|\"[^\"]+\"))*)",
    re.IGNORECASE,
)
_SQL_STAR = re.compile(r"^\s*select\s+(?:distinct\s+)?(?:[\w\"]+\.)?\*", re.IGNORECASE)
_SQL_WRITES = frozenset({"insert", "update", "delete", "merge", "upsert", "replace"})


def sql_fingerprint(text: str) -> str:
    text = _SQL_LITERAL.sub("?", text)
    text = _SQL_IN_LIST.sub("(?)", text)
    return _SQL_SPACE.sub(" ", text).strip()[:1000]


def sql_fields(data: dict[str, Any]) -> tuple[str, str, str, list[str], bool]:
    """(text, fingerprint, statement type, tables, select star) of an ``sql`` payload."""
    text = data.get("text") or data.get("sql") or ""
    text = text if isinstance(text, str) else str(text)
    fingerprint = data.get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint:
        fingerprint = sql_fingerprint(text)
    stype = data.get("statement_type")
    if not isinstance(stype, str) or not stype:
        first = text.lstrip().split(None, 1)
        stype = first[0] if first else ""
        if stype.lower() == "with":  # a CTE: what it ends in decides
            stype = "select" if _SQL_STAR.search(text) or "select" in text.lower() else stype
    tables = data.get("tables")
    if not isinstance(tables, list):
        tables = [m.replace('"', "") for m in _SQL_TABLE.findall(text)]
    star = data.get("select_star")
    if not isinstance(star, bool):
        star = bool(_SQL_STAR.match(text))
    return text, fingerprint, stype.lower(), [str(t) for t in tables], star


# ---- the detectors --------------------------------------------------------------------------------


_FAILED_FIX = {
    400: "The server rejects the request as malformed: compare the body and parameters the "
    "client sends with what the endpoint expects (the evidence requests carry both).",
    401: "The request is not authenticated: make sure the client sends its credentials (and "
    "refreshes an expired token) before calling it.",
    403: "The caller is authenticated but not allowed: check the user's permissions or stop "
    "showing the action to users who cannot perform it.",
    404: "The client asks for something that does not exist: check how it builds this URL "
    "(a stale id, a wrong route, a missing file).",
    405: "The endpoint does not accept this method: use the method the server routes.",
    409: "The write conflicts with the current state: reload before writing, or handle the "
    "conflict in the client.",
    422: "The server understood the request but its content is invalid: validate the input "
    "in the client before sending it.",
    429: "The client is rate limited: slow down, batch, cache, or back off on 429.",
}
_CLIENT_FIX = (
    "The client sent something the server refuses: compare the request (method, URL, body) "
    "with what the endpoint expects."
)
_SERVER_FIX = (
    "A 5xx is a server bug whatever the client sent: find the exception in the server's log "
    "at the time of the evidence requests and fix it; the client should show an error, not "
    "retry blindly."
)
_NO_RESPONSE_FIX = (
    "The server did not answer at all: check that it is running and reachable, and what "
    "crashed or timed out (see the error on the evidence requests)."
)


class Detectors:
    """Every detector over one session's events; feed it with ``observe``."""

    def __init__(
        self,
        thresholds: Thresholds | None = None,
        *,
        disabled: Iterable[str] = (),
        max_evidence: int = 20,
        findings: Findings | None = None,
    ) -> None:
        t = self.t = thresholds or Thresholds()
        self.findings = findings if findings is not None else Findings(max_evidence)
        self.findings.explainers.update(
            failed_request=self._explain_failed,
            slow_request=self._explain_slow,
            n_plus_one_requests=self._explain_n_plus_one,
            api_inconsistency=self._explain_inconsistency,
            auth_mismatch=self._explain_auth,
            write_amplification=self._explain_writes,
            console_error_spam=self._explain_spam,
            long_task=self._explain_long_task,
            large_dom_mutation=self._explain_dom,
            poor_web_vital=self._explain_vital,
            store_thrashing=self._explain_thrashing,
            unnecessary_renders=self._explain_unnecessary,
            render_cascade=self._explain_cascade,
            slow_query=self._explain_slow_query,
            n_plus_one_queries=self._explain_n_plus_one_queries,
            select_star=self._explain_select_star,
        )
        off = set(disabled)
        self.on = {name: name not in off for name in DETECTORS}
        # The HTTP detectors' switches as attributes: every request reads them.
        self._failed_on = self.on["failed_request"]
        self._slow_on = self.on["slow_request"]
        self._n1_on = self.on["n_plus_one_requests"]
        self._writes_on = self.on["write_amplification"]
        self._shape_on = self.on["api_inconsistency"]
        self._auth_on = self.on["auth_mismatch"]
        self._n1_requests = _Bursts(t.n_plus_one_requests, t.n_plus_one_window_ms)
        self._http_writes = _Bursts(t.write_amplification, t.write_amplification_window_ms)
        self._sql_writes = _Bursts(t.write_amplification, t.write_amplification_window_ms)
        self._errors = _Bursts(t.console_error_spam, t.console_error_window_ms)
        self._stores = _Bursts(t.store_updates_per_s, 1000.0)
        self._parent_renders = _Sums(t.unnecessary_renders, t.unnecessary_renders_window_ms)
        self._shapes: dict[tuple[str, int], ResponseShapes] = {}
        self._auth: dict[str, _AuthState] = {}
        self._render_groups: dict[str, _RenderGroup] = {}
        self._queries: dict[str, _QueryWindow] = {}
        self._vital_pages: set[tuple[str, str | None]] = set()
        self._vital_limits = t.vital_limits()
        handlers: dict[str, Callable[[Event], None]] = {
            "http": self._http,
            "console": self._console,
            "error": self._error,
            "long_task": self._long_task,
            "dom_mutation": self._dom_mutation,
            "vital": self._vital,
            "state": self._state,
            "render": self._render,
            "sql": self._sql,
        }
        self._handlers = handlers

    def observe(self, event: Event) -> None:
        handler = self._handlers.get(event.kind)
        if handler is not None:
            handler(event)

    def finish(self, older_than_ms: float | None = None, now_ms: float | None = None) -> None:
        """Close the render groups that are complete: all of them, or those whose last event
        came more than ``older_than_ms`` before ``now_ms`` (a wall-clock time, in ms)."""
        groups = self._render_groups
        for page in list(groups):
            group = groups[page]
            if older_than_ms is None or (now_ms or 0) - group.received > older_than_ms:
                del groups[page]
                self._close_render_group(group)

    def _record(
        self,
        detector: str,
        key: str,
        event: Event,
        evidence: Iterable[str],
        count: int = 1,
        *,
        text: Callable[[], tuple[str, str, str]],
    ) -> Finding | None:
        """One occurrence of a finding: counted on the known one, else a new one, whose
        (severity, title, suggestion) ``text`` writes: text is only made for a new finding."""
        found = self.findings.hit(detector, key, event, evidence, count)
        if found is None:
            severity, title, suggestion = text()
            found = self.findings.new(
                detector,
                key,
                event,
                evidence,
                count,
                severity=severity,
                title=title,
                suggestion=suggestion,
            )
        return found

    def _record_burst(
        self,
        detector: str,
        key: str,
        event: Event,
        burst: _Burst,
        *,
        text: Callable[[], tuple[str, str, str]],
    ) -> Finding | None:
        """An occurrence in a burst: the burst's start counts one, with the window's events as
        evidence; the occurrences that prolong it add their own event."""
        if burst.started:
            return self._record(detector, key, event, [e for _, e, _ in burst.items], text=text)
        return self._record(detector, key, event, (event.id,), 0, text=text)

    # ---- HTTP ---------------------------------------------------------------------------------

    def _http(self, event: Event) -> None:
        # The hot path (most events are requests): each field is read once, and the checks
        # that rule a detector out cheaply come before the call to it.
        data = event.data
        get = data.get
        method = get("method") or "GET"
        template = get("path_template")
        if not isinstance(template, str) or not template:
            template = template_of(data)
        endpoint = f"{method} {template}"
        status = get("status")
        if isinstance(status, bool) or not isinstance(status, int):
            status = None
        if (status is None or status >= 400) and self._failed_on:
            self._failed(event, endpoint, status)
        ctype = get("response_content_type")
        content = content_of(ctype) if ctype else _NO_CONTENT
        if self._slow_on:
            timings = get("timings")
            if isinstance(timings, dict):
                # A stream or WebSocket lasts as long as it is open: only its first byte can
                # be late.
                stream = get("websocket") or get("streamed") or content[1]
                ms = _num(timings.get("ttfb_ms" if stream else "total_ms"))
                if ms > self.t.slow_request_ms:
                    self._slow(event, endpoint, ms, bool(stream))
        if not _is_api_call(data, method, content):
            return
        if method in _READS:
            if self._n1_on:
                self._n_plus_one(event, endpoint)
        elif method in _WRITES and self._writes_on:
            self._http_write(event, endpoint)
        if status is not None and self._shape_on and content[2]:
            self._shape(event, endpoint, status)
        if self._auth_on:
            self._auth_mismatch(event, endpoint, template)

    def _failed(self, event: Event, endpoint: str, status: int | None) -> None:
        data = event.data
        if status is None:
            error = str(data.get("error") or "")
            # The browser went away (navigation, abort): not the server's failure.
            if not error or "client" in error.lower() or "cancel" in error.lower():
                return
            label, severity, fix = "no response", "high", _NO_RESPONSE_FIX
            what = f"got no response ({error[:200]})"
        else:
            label = str(status)
            server = status >= 500
            severity = "high" if server else "medium"
            fix = _SERVER_FIX if server else _FAILED_FIX.get(status, _CLIENT_FIX)
            reason = data.get("reason")
            what = f"answered HTTP {status}" + (f" {reason}" if isinstance(reason, str) else "")
        key = f"{endpoint} {label}"
        evidence = (event.id,)
        finding = self._record(
            "failed_request",
            key,
            event,
            evidence,
            text=lambda: (severity, f"{endpoint} fails with {label}", fix),
        )
        if finding is not None and not finding.details:
            finding.details.update(endpoint=endpoint, status=status, what=what)

    def _explain_failed(self, f: Finding) -> str:
        d = f.details
        kind = "a server error" if f.severity == "high" else "a client error"
        return f"{f.count} call(s) to {d.get('endpoint')} {d.get('what')}: {kind}."

    def _slow(self, event: Event, endpoint: str, ms: float, stream: bool) -> None:
        evidence = (event.id,)
        finding = self._record(
            "slow_request",
            endpoint,
            event,
            evidence,
            text=lambda: (
                "medium",
                f"Slow endpoint: {endpoint}",
                "Find where the time goes on the server (a slow query, an upstream call, work "
                "that could be cached or done in the background); paginate or trim big "
                "responses; show progress in the client.",
            ),
        )
        if finding is not None:
            details = finding.details
            if ms > details.get("worst_ms", 0):
                details.update(endpoint=endpoint, worst_ms=round(ms, 1), first_byte=stream)

    def _explain_slow(self, f: Finding) -> str:
        d = f.details
        part = "to its first byte" if d.get("first_byte") else "in total"
        return (
            f"{d.get('endpoint')} took up to {d.get('worst_ms', 0):.0f} ms ({part}), over the "
            f"{self.t.slow_request_ms:g} ms limit, {f.count} time(s); the user waits all that "
            "time."
        )

    def _n_plus_one(self, event: Event, endpoint: str) -> None:
        page = page_of(event.data)
        if not page:  # "per page": a request from no known page (curl, a server) is not one
            return
        burst = self._n1_requests.add((page, endpoint), event.ts, event.id)
        if burst is None:
            return
        finding = self._record_burst(
            "n_plus_one_requests",
            endpoint,
            event,
            burst,
            text=lambda: (
                "medium",
                f"N+1 requests: {endpoint}",
                "Fetch them in one request: a batch endpoint (?ids=1,2,3), embed the items in "
                "the list response, or one GraphQL query; deduplicate identical calls with a "
                "client cache.",
            ),
        )
        if finding is not None:
            details = finding.details
            details["endpoint"] = endpoint
            if burst.size > details.get("largest_burst", 0):
                details["largest_burst"] = burst.size
            if burst.started:
                _note_page(finding, page[5:] if page.startswith("page:") else None)

    def _explain_n_plus_one(self, f: Finding) -> str:
        t = self.t
        return (
            f"A page called {f.details.get('endpoint')} up to {f.details.get('largest_burst')} "
            f"times within {_secs(t.n_plus_one_window_ms)} (more than {t.n_plus_one_requests}), "
            f"in {f.count} burst(s): it fetches items one request at a time, typically a list "
            "and then one call per item, and pays a round trip for each."
        )

    def _http_write(self, event: Event, endpoint: str) -> None:
        data = event.data
        service = service_of(data)
        if service in _TELEMETRY_SERVICES:
            return
        page = page_of(data)
        if not page:  # one action is one page's; requests from no known page do not count
            return
        burst = self._http_writes.add((page, service), event.ts, event.id, endpoint)
        if burst is not None:
            self._write_burst(
                event,
                f"http {service}",
                burst,
                endpoint,
                page[5:] if page.startswith("page:") else None,
                fix=(
                    "Send one request for the action: a bulk endpoint that takes all the "
                    "changes, or collect the changes and save them once (debounce autosave)."
                ),
            )

    def _write_burst(
        self, event: Event, key: str, burst: _Burst, item: str, page_id: str | None, fix: str
    ) -> None:
        started = burst.started
        finding = self._record_burst(
            "write_amplification",
            key,
            event,
            burst,
            text=lambda: ("medium", f"Write amplification: {key.partition(' ')[2]}", fix),
        )
        if finding is None:
            return
        details = finding.details
        if burst.size > details.get("largest_burst", 0):
            details["largest_burst"] = burst.size
        targets = details.setdefault("targets", [])  # endpoints or statements
        for name in [label for _, _, label in burst.items] if started else (item,):
            if name not in targets and len(targets) < 20:
                targets.append(name)
        if started:
            _note_page(finding, page_id)

    def _explain_writes(self, f: Finding) -> str:
        t = self.t
        channel, _, where = f.key.partition(" ")
        what = (
            f"one page sent up to {f.details.get('largest_burst')} write requests "
            f"(POST/PUT/PATCH/DELETE) to {where}"
            if channel == "http"
            else f"up to {f.details.get('largest_burst')} write statements (INSERT/UPDATE/"
            f"DELETE) hit {where}"
        )
        return (
            f"Within {_secs(t.write_amplification_window_ms)}, {what} (more than "
            f"{t.write_amplification}), in {f.count} burst(s): one action is written piece by "
            "piece, each write paying its own round trip, transaction and locks."
        )

    def _shape(self, event: Event, endpoint: str, status: int) -> None:
        """An answer with a JSON content type: its shape against the endpoint's earlier ones."""
        data = event.data
        body = data.get("response_body")
        if (
            not isinstance(body, str)
            or not body
            or len(body) > _MAX_SHAPE_BODY
            or data.get("response_body_truncated")
            or data.get("response_body_encoding", "text") not in ("text", None)
        ):
            return
        key = (endpoint, status)
        shapes = self._shapes.get(key)
        if shapes is not None:
            shapes.answers += 1
            # A settled endpoint (its first answers all of one shape) is checked one answer in
            # so many: parsing is most of this detector's cost. One that has differed is always.
            if (
                shapes.answers > _SETTLED_AFTER
                and not shapes.seen
                and shapes.answers % _SETTLED_SAMPLE
            ):
                return
        if shapes is not None and body == shapes.last_body:
            difference = shapes.last_difference
        else:
            try:
                value = _decode(body)
            except (ValueError, RecursionError):
                return
            if shapes is None:
                if len(self._shapes) >= 4096:
                    _shrink(self._shapes)
                self._shapes[key] = ResponseShapes(value, event.id, body)
                return
            difference = shapes.difference(value)
            shapes.last_body, shapes.last_difference = body, difference
        if difference is None:
            return
        evidence = (shapes.first_id, event.id)
        fkey = f"{endpoint} {status}"
        finding = self._record(
            "api_inconsistency",
            fkey,
            event,
            evidence,
            text=lambda: (
                "medium",
                f"Inconsistent responses: {endpoint} ({status})",
                "Keep one contract per endpoint and status: the same key names with the "
                "same types (null for a missing value), and version the endpoint when the "
                "contract must change.",
            ),
        )
        if finding is not None:
            details = finding.details
            if not details:
                details.update(endpoint=endpoint, status=status, first=shapes.first)
            signature = json.dumps(difference, sort_keys=True)
            variants = details.setdefault("variants", [])
            if signature not in shapes.seen and len(variants) < 5:
                shapes.seen.add(signature)
                variants.append({"example": event.id, **difference})

    def _explain_inconsistency(self, f: Finding) -> str:
        d = f.details
        parts = []
        for variant in d.get("variants", [])[:3]:
            for a, b in variant.get("renamed", {}).items():
                parts.append(f"{a} became {b}")
            for k, change in variant.get("changed_types", {}).items():
                parts.append(f"{k} went from {change['was']} to {change['now']}")
            for key in ("type", "item_type"):
                if key in variant:
                    what = "the body" if key == "type" else "its items"
                    parts.append(f"{what} went from {variant[key]['was']} to {variant[key]['now']}")
        return (
            f"{d.get('endpoint')} answered {d.get('status')} with JSON that does not keep its "
            f"shape: first {d.get('first')}, then {'; '.join(parts)} ({f.count} response(s)). "
            "A client written against one shape breaks on the other."
        )

    def _auth_mismatch(self, event: Event, endpoint: str, template: str) -> None:
        data = event.data
        auth = data.get("auth")
        if auth in _EXPLICIT_AUTH:
            service = service_of(data)
            state = self._auth.get(service)
            if state is None:
                if len(self._auth) >= 1024:
                    _shrink(self._auth)
                state = self._auth[service] = _AuthState(event.ts, event.id)
            if endpoint not in state.authed and len(state.authed) < 20:
                state.authed[endpoint] = str(auth)
            return
        if auth != "none":
            return
        service = service_of(data)
        state = self._auth.get(service)
        if state is None or event.ts < state.since or _AUTH_FLOW.search(template):
            return
        evidence = (state.first_id, event.id)
        finding = self._record(
            "auth_mismatch",
            service,
            event,
            evidence,
            text=lambda: (
                "medium",
                f"Unauthenticated calls to {service}",
                "Send the credential on every call to the service (one API client with the "
                "auth header set in one place), and make the server require it on this "
                "endpoint unless it is meant to be public.",
            ),
        )
        if finding is not None:
            details = finding.details
            details["service"] = service
            details["authenticated"] = dict(state.authed)
            unauth = details.setdefault("unauthenticated", [])
            if endpoint not in unauth and len(unauth) < 20:
                unauth.append(endpoint)

    def _explain_auth(self, f: Finding) -> str:
        d = f.details
        schemes = ", ".join(sorted(set(d.get("authenticated", {}).values())))
        return (
            f"Calls to {d.get('service')} carry credentials ({schemes}), but "
            f"{', '.join(d.get('unauthenticated', []))} went without any afterwards "
            f"({f.count} call(s)). Either the client forgets the credential on these calls, or "
            "the endpoints serve without authentication what their siblings protect."
        )

    # ---- console and errors ---------------------------------------------------------------------

    def _console(self, event: Event) -> None:
        if event.data.get("level") == "error":
            self._error(event)

    def _error(self, event: Event) -> None:
        if not self.on["console_error_spam"]:
            return
        message = _text(event.data.get("message"), 2000)
        key = error_key(message)
        if not key:
            return
        burst = self._errors.add(key, event.ts, event.id)
        if burst is None:
            return
        started = burst.started
        finding = self._record_burst(
            "console_error_spam",
            key,
            event,
            burst,
            text=lambda: (
                "medium",
                f"Repeated error: {key[:100]}",
                "Fix the cause (the stack is on the evidence events). If it comes from a loop, "
                "a retry or a timer, stop after the first failure or back off; repeated errors "
                "also hide new ones.",
            ),
        )
        if finding is not None:
            details = finding.details
            details["message"] = message[:500]
            if burst.size > details.get("largest_burst", 0):
                details["largest_burst"] = burst.size
            if started:
                _note_page(finding, event.page_id)

    def _explain_spam(self, f: Finding) -> str:
        t = self.t
        return (
            f"The same error was reported up to {f.details.get('largest_burst')} times within "
            f"{_secs(t.console_error_window_ms)} (more than {t.console_error_spam}), in "
            f"{f.count} burst(s): {f.details.get('message', '')[:300]}"
        )

    # ---- page performance -----------------------------------------------------------------------

    def _long_task(self, event: Event) -> None:
        ms = _num(event.data.get("duration_ms"))
        if ms <= self.t.long_task_ms or not self.on["long_task"]:
            return
        evidence = (event.id,)
        key = "main-thread"
        finding = self._record(
            "long_task",
            key,
            event,
            evidence,
            text=lambda: (
                "medium",
                "Long tasks block the main thread",
                "Profile the page (Performance panel) at the evidence times; split the work "
                "into chunks that yield (scheduler.yield, setTimeout), move it to a Web Worker, "
                "or do less of it (memoize, virtualize long lists, load code lazily).",
            ),
        )
        if finding is not None:
            if ms > finding.details.get("worst_ms", 0):
                finding.details["worst_ms"] = round(ms, 1)
            _note_page(finding, event.page_id)

    def _explain_long_task(self, f: Finding) -> str:
        return (
            f"{f.count} task(s) of up to {f.details.get('worst_ms', 0):.0f} ms ran on the page's "
            f"main thread (limit {self.t.long_task_ms:g} ms); meanwhile the page cannot respond "
            "to clicks or typing."
        )

    def _dom_mutation(self, event: Event) -> None:
        nodes = _num(event.data.get("added_nodes"))
        if nodes <= self.t.dom_mutation_nodes or not self.on["large_dom_mutation"]:
            return
        target = _text(event.data.get("target") or "?")
        evidence = (event.id,)
        finding = self._record(
            "large_dom_mutation",
            target,
            event,
            evidence,
            text=lambda: (
                "low",
                f"Large DOM insertion into {target}",
                "Render only what is visible (virtualize or paginate long lists), and build "
                "content once instead of re-inserting it.",
            ),
        )
        if finding is not None:
            if nodes > finding.details.get("largest", 0):
                finding.details["largest"] = int(nodes)
            finding.details["target"] = target
            _note_page(finding, event.page_id)

    def _explain_dom(self, f: Finding) -> str:
        return (
            f"{f.count} update(s) added up to {f.details.get('largest')} nodes at once under "
            f"{f.details.get('target')} (more than {self.t.dom_mutation_nodes}); big insertions "
            "cost layout and memory, and slow every later update."
        )

    def _vital(self, event: Event) -> None:
        raw_name = event.data.get("name")
        name = raw_name if isinstance(raw_name, str) else ""
        limit = self._vital_limits.get(name)
        value = _num(event.data.get("value"))
        if limit is None or value <= limit or not self.on["poor_web_vital"]:
            return
        # The probe reports a metric again as it grows; a page view counts once.
        seen = (name, event.page_id)
        count = 0 if seen in self._vital_pages else 1
        if count:
            if len(self._vital_pages) > 10_000:
                self._vital_pages.clear()
            self._vital_pages.add(seen)
        evidence = (event.id,)
        finding = self._record(
            "poor_web_vital",
            name,
            event,
            evidence,
            count,
            text=lambda: ("medium", f"Poor {name}", _VITAL_FIX[name]),
        )
        if finding is not None:
            details = finding.details
            if value > details.get("worst", 0):
                details.update(metric=name, worst=value)
            _note_page(finding, event.page_id)

    def _explain_vital(self, f: Finding) -> str:
        name = f.details.get("metric", f.key)
        unit = "" if name == "CLS" else " ms"
        limit = self._vital_limits.get(name, 0)
        return (
            f"{name} reached {f.details.get('worst'):g}{unit} on {f.count} page view(s), in "
            f"Google's 'poor' range (over {limit:g}{unit})."
        )

    # ---- state and renders -----------------------------------------------------------------------

    def _state(self, event: Event) -> None:
        if not self.on["store_thrashing"]:
            return
        data = event.data
        library = _text(data.get("library") or "store", 40)
        store = _text(data.get("store") or "?")
        key = f"{library}:{store}"
        action = _text(data.get("action") or "?", 100)
        burst = self._stores.add(key, event.ts, event.id, action)
        if burst is None:
            return
        started = burst.started
        finding = self._record_burst(
            "store_thrashing",
            key,
            event,
            burst,
            text=lambda: (
                "medium",
                f"Store thrashing: {store} ({library})",
                "Batch the changes into one update per user action or animation frame, "
                "debounce or throttle them, and keep fast-changing values (timers, pointer "
                "positions, progress) in local state or a ref instead of the global store.",
            ),
        )
        if finding is not None:
            details = finding.details
            details.update(library=library, store=store)
            if burst.size > details.get("largest_burst", 0):
                details["largest_burst"] = burst.size
            actions = details.setdefault("actions", [])  # the actions seen while it thrashed
            for name in [label for _, _, label in burst.items] if started else (action,):
                if name not in actions and len(actions) < 10:
                    actions.append(name)
            if started:
                _note_page(finding, event.page_id)

    def _explain_thrashing(self, f: Finding) -> str:
        d = f.details
        return (
            f"The {d.get('library')} store {d.get('store')!r} was updated up to "
            f"{d.get('largest_burst')} times within one second (more than "
            f"{self.t.store_updates_per_s}), in {f.count} burst(s); every update notifies its "
            "subscribers, which re-run selectors and re-render."
        )

    def _render(self, event: Event) -> None:
        data = event.data
        reasons = data.get("reasons")
        if not isinstance(reasons, dict):
            return
        component = _text(data.get("component") or "Anonymous")
        parent = _num(reasons.get("parent"))
        if parent > 0 and self.on["unnecessary_renders"]:
            self._unnecessary(event, component, parent)
        if self.on["render_cascade"]:
            page = event.page_id or ""
            group = self._render_groups.get(page)
            # One probe report (all components of one 500 ms window) arrives as a run of render
            # events with the same timestamp; reports are at least 500 ms apart.
            if group is not None and abs(event.ts - group.ts) > 100:
                del self._render_groups[page]
                self._close_render_group(group)
                group = None
            if group is None:
                if len(self._render_groups) >= 256:
                    self.finish()
                group = self._render_groups[page] = _RenderGroup(event.ts)
            group.received = _wall_ms()
            if len(group.events) < 500:  # one event per component type in a report
                group.events.append((component, reasons, data.get("renders"), data, event))

    def _unnecessary(self, event: Event, component: str, parent: float) -> None:
        win = self._parent_renders.add(component, event.ts, parent, event.id)
        if win is None:
            return
        started = win.started
        evidence = [eid for _, _, eid in win.items] if started else (event.id,)
        count = 1 if started else 0
        finding = self._record(
            "unnecessary_renders",
            component,
            event,
            evidence,
            count,
            text=lambda: (
                "low",
                f"Unnecessary renders: {component}",
                f"Wrap {component} in React.memo and keep its props stable (useCallback for "
                "callbacks, useMemo for objects and arrays), or move the changing state down "
                "so the parent does not re-render.",
            ),
        )
        if finding is not None:
            details = finding.details
            details["component"] = component
            if win.total > details.get("largest_burst", 0):
                details["largest_burst"] = int(win.total)
            if started:
                _note_page(finding, event.page_id)

    def _explain_unnecessary(self, f: Finding) -> str:
        t = self.t
        return (
            f"{f.details.get('component')} re-rendered up to {f.details.get('largest_burst')} "
            f"times within {_secs(t.unnecessary_renders_window_ms)} with identical props and no "
            f"state or context change (more than {t.unnecessary_renders}), in {f.count} "
            "burst(s): only because its parent rendered. The work and its result were the "
            "same each time."
        )

    def _close_render_group(self, group: _RenderGroup) -> None:
        limit = self.t.render_cascade_components
        big = [item for item in group.events if _num(item[3].get("commit_components")) > limit]
        if not big:
            return
        # Re-renders of the components in the big commit: mounts are new UI (a route change),
        # not a cascade. A report sums a window, so renders of other commits may be in it: at
        # most the commit's size counts.
        commit = max(_num(item[3].get("commit_components")) for item in big)
        rerenders = min(
            commit,
            sum(_num(renders) - _num(reasons.get("mount")) for _, reasons, renders, _, _ in big),
        )
        if rerenders <= limit:
            return
        # The trigger: a component whose own state changed, and that did not mount in this window
        # (its commit size could then be the mount's).
        triggers = [
            item
            for item in big
            if _num(item[1].get("state")) > 0 and _num(item[1].get("mount")) == 0
        ]
        if not triggers:
            return
        component, _, _, _, event = min(triggers, key=lambda item: (_num(item[2]), item[0]))
        evidence = [item[4].id for item in big[:20]]
        finding = self._record(
            "render_cascade",
            component,
            event,
            evidence,
            text=lambda: (
                "medium",
                f"Render cascade from {component}",
                f"Move the state out of {component} to the components that use it (or into a "
                "store or context read only by them), and memoize the subtrees that do not "
                "depend on it (React.memo).",
            ),
        )
        if finding is not None:
            details = finding.details
            details["component"] = component
            if rerenders > details.get("largest", 0):
                details["largest"] = int(rerenders)
            _note_page(finding, event.page_id)

    def _explain_cascade(self, f: Finding) -> str:
        return (
            f"A state change in {f.details.get('component')} re-rendered up to "
            f"{f.details.get('largest')} components in one commit (more than "
            f"{self.t.render_cascade_components}), {f.count} time(s): state kept high in the "
            "tree makes every component below it render again."
        )

    # ---- SQL -------------------------------------------------------------------------------------

    def _sql(self, event: Event) -> None:
        data = event.data
        on = self.on
        text, fingerprint, stype, tables, star = sql_fields(data)
        if not text and not fingerprint:
            return
        database = _text(data.get("database") or "", 100)
        ms = _num(data.get("duration_ms"))
        if ms > self.t.slow_query_ms and on["slow_query"]:
            self._slow_query(event, fingerprint, ms)
        if stype == "select":
            if star and on["select_star"]:
                self._select_star(event, fingerprint, tables)
            if on["n_plus_one_queries"]:
                for table in tables[:5]:
                    self._n_plus_one_query(event, database, table, text, fingerprint)
        elif stype in _SQL_WRITES and on["write_amplification"]:
            for table in tables[:5]:
                where = f"{database}.{table}" if database else table
                burst = self._sql_writes.add(where, event.ts, event.id, fingerprint[:200])
                if burst is not None:
                    self._write_burst(
                        event,
                        f"sql {where}",
                        burst,
                        fingerprint[:200],
                        None,
                        fix=(
                            "Write the rows in one statement (a multi-row INSERT, an UPDATE ... "
                            "WHERE id IN (...), COPY) or at least in one transaction, instead "
                            "of one statement per row."
                        ),
                    )

    def _slow_query(self, event: Event, fingerprint: str, ms: float) -> None:
        evidence = (event.id,)
        finding = self._record(
            "slow_query",
            fingerprint,
            event,
            evidence,
            text=lambda: (
                "medium",
                f"Slow query: {fingerprint[:100]}",
                "Run EXPLAIN ANALYZE on it: add an index on the columns it filters, joins "
                "or sorts by, select fewer rows and columns, or cache the result.",
            ),
        )
        if finding is not None:
            details = finding.details
            details["fingerprint"] = fingerprint
            if ms > details.get("worst_ms", 0):
                details["worst_ms"] = round(ms, 1)

    def _explain_slow_query(self, f: Finding) -> str:
        return (
            f"The statement took up to {f.details.get('worst_ms', 0):.0f} ms (limit "
            f"{self.t.slow_query_ms:g} ms), {f.count} time(s): {f.key[:300]}"
        )

    def _select_star(self, event: Event, fingerprint: str, tables: list[str]) -> None:
        evidence = (event.id,)
        finding = self._record(
            "select_star",
            fingerprint,
            event,
            evidence,
            text=lambda: (
                "low",
                f"SELECT * on {', '.join(tables[:3]) or 'a table'}",
                "Name the columns the caller needs.",
            ),
        )
        if finding is not None and not finding.details:
            finding.details.update(fingerprint=fingerprint, tables=tables[:10])

    def _explain_select_star(self, f: Finding) -> str:
        return (
            f"{f.key[:300]} reads every column, whether the caller uses them or not ({f.count} "
            "time(s)): more data read and sent, no index-only scans, and code that breaks or "
            "leaks when a column is added."
        )

    def _n_plus_one_query(
        self, event: Event, database: str, table: str, text: str, fingerprint: str
    ) -> None:
        where = f"{database}.{table}" if database else table
        window = self._queries.get(where)
        if window is None:
            if len(self._queries) >= 4096:
                _shrink(self._queries)
            window = self._queries[where] = _QueryWindow()
        items, texts = window.items, window.texts
        items.append((event.ts, text, event.id))
        texts[text] = texts.get(text, 0) + 1
        t = self.t
        if event.ts > window.newest:
            window.newest = event.ts
        cap = max(64, 4 * (t.n_plus_one_queries + 1))
        while items and (
            window.newest - items[0][0] > t.n_plus_one_queries_window_ms or len(items) > cap
        ):
            gone = items.popleft()[1]
            if texts[gone] == 1:
                del texts[gone]
            else:
                texts[gone] -= 1
        distinct = len(texts)
        if distinct <= t.n_plus_one_queries:
            window.active = False
            return
        started = not window.active
        window.active = True
        evidence = [item[2] for item in items] if started else (event.id,)
        count = 1 if started else 0
        finding = self._record(
            "n_plus_one_queries",
            where,
            event,
            evidence,
            count,
            text=lambda: (
                "medium",
                f"N+1 queries on {where}",
                "Load the rows in one query (WHERE id IN (...), a JOIN, or your ORM's eager "
                "loading: select_related/prefetch_related, include, joinedload).",
            ),
        )
        if finding is not None:
            details = finding.details
            details.update(table=where, fingerprint=fingerprint[:500])
            if distinct > details.get("largest_burst", 0):
                details["largest_burst"] = distinct

    def _explain_n_plus_one_queries(self, f: Finding) -> str:
        t = self.t
        return (
            f"Up to {f.details.get('largest_burst')} SELECTs with different values read "
            f"{f.details.get('table')} within {_secs(t.n_plus_one_queries_window_ms)} (more "
            f"than {t.n_plus_one_queries}), in {f.count} burst(s): one query per item, e.g. "
            f"{f.details.get('fingerprint', '')[:200]}"
        )


_VITAL_FIX = {
    "LCP": "Make the largest element render sooner: a faster server response, preload its "
    "image or font, fewer render-blocking scripts and styles, smaller images.",
    "CLS": "Reserve space for late content (width/height on images, min-height for banners "
    "and ads) and never insert content above what the user already sees.",
    "INP": "Make event handlers return fast: do less work per interaction, split long tasks, "
    "and defer what the next paint does not need.",
    "FCP": "Send the first paint sooner: a faster server response, fewer render-blocking "
    "resources, inline the critical CSS.",
    "TTFB": "The server is slow to start answering the page: find where the time goes before "
    "the first byte (rendering, queries, upstream calls), cache, or stream the response.",
}


@dataclass
class _QueryWindow:
    items: deque[tuple[float, str, str]] = field(default_factory=deque)  # (ts, text, event id)
    texts: dict[str, int] = field(default_factory=dict)  # distinct texts in the window
    newest: float = float("-inf")
    active: bool = False


@dataclass
class _AuthState:
    since: float  # first call with credentials
    first_id: str
    authed: dict[str, str] = field(default_factory=dict)  # endpoint -> auth pattern


@dataclass
class _RenderGroup:
    ts: float
    received: float = 0.0
    events: list[tuple[str, dict[str, Any], Any, dict[str, Any], Event]] = field(
        default_factory=list
    )


def _note_page(finding: Finding, page_id: str | None) -> None:
    """Remember (a few of) the page views a finding was seen on; reports resolve them to URLs."""
    if not page_id:
        return
    pages = finding.details.setdefault("page_ids", [])
    if page_id not in pages and len(pages) < 10:
        pages.append(page_id)


def _wall_ms() -> float:
    return time.monotonic() * 1000
