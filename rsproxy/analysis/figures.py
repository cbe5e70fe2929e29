"""An endpoint's figures, kept as its exchanges arrive: calls, outcomes, latency, error samples.

The ``catalog`` stage keeps one ``Figures`` per endpoint and stores its state in the
``endpoint_figures`` table, so the catalog, health and service-map answers read a few hundred
small records instead of grouping every ``http`` row of a session at each question (over a
large session those scans were most of an answer's time). The figures follow the rules the
reports used on the ``http`` table:

* an exchange with no response or a 5xx is a server error, a 4xx a client error, anything else
  a success (``last_success`` is the newest of those);
* the auth pattern is the capture's (``none`` when absent), hosts are the exchanges' hosts;
* latency is ``timings.total_ms``, first request byte to last response byte; an exchange
  without it counts as a call but not as a timed one;
* error samples are the newest exchanges with no response or a status of 400 and up, with the
  first ``ERROR_BODY_CHARS`` of a text body.

Latency quantiles are computed as DuckDB's ``quantile_cont`` does (linear interpolation between
the two order statistics around ``q * (n - 1)``). The first ``EXACT_LIMIT`` latencies are kept
as they are, so an endpoint called that few times has exact quantiles; every latency also goes
into a histogram of logarithmic buckets (each ``GAMMA`` times wider than the last), from which
a busier endpoint's quantiles are read to within 1 % of the true value — clamped to the
smallest and largest latency seen, which are exact. Histograms add, so figures merge when the
templater folds one endpoint into another, and a service's figures are its endpoints' merged.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from itertools import accumulate
from typing import Any

GAMMA = 1.02  # bucket i holds latencies in (GAMMA ** (i - 1), GAMMA ** i]: ±1 % at worst
_LOG_GAMMA = math.log(GAMMA)
# Latencies are bucketed within these bounds (ms): a histogram's buckets run from its smallest
# to its largest index, so one absurd value must not stretch it over thousands of empty ones.
# A latency outside them counts in the nearest end bucket; the quantiles near it are clamped
# to the exact low and high anyway.
_FLOOR_INDEX = math.ceil(math.log(0.01) / _LOG_GAMMA)
_CEILING_INDEX = math.ceil(math.log(1e9) / _LOG_GAMMA)
EXACT_LIMIT = 64  # latencies kept exactly per endpoint before the histogram alone answers
ERROR_SAMPLES = 20  # the newest error exchanges kept per endpoint (the reports' maximum)
ERROR_BODY_CHARS = 200
MAX_HOSTS = 50


class Latencies:
    """Latencies in milliseconds: count, min, max, a log-bucket histogram, the first few exactly.

    The histogram is a list of counts for consecutive bucket indexes from ``offset``: what a
    report reads is one JSON array, and a quantile is a bisection of its running sum."""

    __slots__ = ("count", "counts", "exact", "high", "low", "offset", "zeros")

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.count: int = int(state.get("n") or 0)
        self.low: float | None = state.get("lo")
        self.high: float | None = state.get("hi")
        self.zeros: int = int(state.get("z") or 0)  # latencies of 0 ms (or a clock's negative)
        self.offset: int = int(state.get("o") or 0)  # the bucket index of counts[0]
        self.counts: list[int] = list(state.get("b") or [])
        exact = state.get("x", [] if not self.count else None)
        # None once more than EXACT_LIMIT latencies were seen: from then on the histogram answers.
        self.exact: list[float] | None = list(exact) if exact is not None else None

    def add(self, value: float) -> None:
        self.count += 1
        if self.low is None or value < self.low:
            self.low = value
        if self.high is None or value > self.high:
            self.high = value
        exact = self.exact
        if exact is not None:
            if len(exact) < EXACT_LIMIT:
                exact.append(value)
            else:
                self.exact = None
        if value > 0:
            index = math.ceil(math.log(value) / _LOG_GAMMA)
            at = index - self.offset
            counts = self.counts
            if 0 <= at < len(counts):  # the common case: a bucket the histogram spans already
                counts[at] += 1
            else:
                self._bump(min(max(index, _FLOOR_INDEX), _CEILING_INDEX), 1)
        else:
            self.zeros += 1

    def _bump(self, index: int, n: int) -> None:
        counts = self.counts
        if not counts:
            self.offset = index
            counts.append(n)
            return
        at = index - self.offset
        if at < 0:
            counts[0:0] = [0] * -at
            self.offset = index
            at = 0
        elif at >= len(counts):
            counts.extend([0] * (at - len(counts) + 1))
        counts[at] += n

    def absorb(self, other: Latencies) -> None:
        if not other.count:
            return
        if self.exact is not None and other.exact is not None:
            merged = self.exact + other.exact
            self.exact = merged if len(merged) <= EXACT_LIMIT else None
        else:
            self.exact = None
        self.count += other.count
        self.zeros += other.zeros
        for at, n in enumerate(other.counts):
            if n:
                self._bump(other.offset + at, n)
        self.low = _pick(min, self.low, other.low)
        self.high = _pick(max, self.high, other.high)

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """``quantile_cont`` of the latencies for each q in [0, 1]; None when there are none."""
        if not self.count:
            return [None for _ in qs]
        if self.exact is not None:
            ordered = sorted(self.exact)
            return [_interpolate(ordered.__getitem__, len(ordered), q) for q in qs]
        n = self.count
        ranks = {k for q in qs for k in _ranks(q, n)}
        values = self._order_statistics(ranks)
        return [_interpolate(values.__getitem__, n, q) for q in qs]

    def _order_statistics(self, ranks: Iterable[int]) -> dict[int, float]:
        """The k-th smallest latency (0-based) for each k of ``ranks``, as the histogram tells
        it: a bucket's value is the point of least relative error in (GAMMA^(i-1), GAMMA^i],
        clamped to the exact low and high, which are the extremes' own values."""
        low = self.low if self.low is not None else 0.0
        high = self.high if self.high is not None else 0.0
        last = self.count - 1
        # starts[j]: how many latencies lie below bucket j (the zeros first).
        starts = list(accumulate(self.counts, initial=self.zeros))
        out: dict[int, float] = {}
        for k in ranks:
            if k <= 0:
                out[k] = low
            elif k >= last:
                out[k] = high
            elif k < self.zeros:
                out[k] = max(min(0.0, high), low)
            else:
                j = bisect_right(starts, k) - 1
                if j >= len(self.counts):
                    out[k] = high
                else:
                    value = 2 * GAMMA ** (self.offset + j) / (GAMMA + 1)
                    out[k] = min(max(value, low), high)
        return out

    def state(self) -> dict[str, Any]:
        return {
            "n": self.count,
            "lo": self.low,
            "hi": self.high,
            "z": self.zeros,
            "o": self.offset,
            "b": self.counts,
            "x": self.exact,
        }


def _ranks(q: float, n: int) -> tuple[int, ...]:
    """The order statistics ``quantile_cont(q)`` of ``n`` values interpolates between."""
    rank = q * (n - 1)
    below = math.floor(rank)
    return (below, below + 1) if rank > below else (below,)


def _interpolate(kth: Any, n: int, q: float) -> float:
    rank = q * (n - 1)
    below = math.floor(rank)
    value = float(kth(below))
    if rank > below:
        value += (rank - below) * (float(kth(below + 1)) - value)
    return value


class Figures:
    """What the reports say of an endpoint's calls, folded in one exchange at a time."""

    __slots__ = (
        "auth",
        "calls",
        "client_errors",
        "errors",
        "first_seen",
        "hosts",
        "last_seen",
        "last_success",
        "latency",
        "server_errors",
        "statuses",
        "successes",
    )

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.calls: int = int(state.get("calls") or 0)
        self.successes: int = int(state.get("successes") or 0)
        self.server_errors: int = int(state.get("server_errors") or 0)
        self.client_errors: int = int(state.get("client_errors") or 0)
        self.statuses: dict[str, int] = dict(state.get("statuses") or {})  # "200", "none"
        self.auth: dict[str, int] = dict(state.get("auth") or {})
        self.hosts: list[str] = list(state.get("hosts") or [])
        self.first_seen: float | None = state.get("first_seen")
        self.last_seen: float | None = state.get("last_seen")
        self.last_success: float | None = state.get("last_success")
        self.latency = Latencies(state.get("latency"))
        # Oldest first: {"t": ts, "id", "status", "body", "error"?}
        self.errors: list[dict[str, Any]] = list(state.get("errors") or [])

    def observe(self, event_id: str, ts: float, data: dict[str, Any]) -> None:
        """Fold in one exchange (an ``http`` payload)."""
        self.calls += 1
        get = data.get
        status = get("status")
        if status.__class__ is not int:
            status = None  # not a status code (None, or a capture's garbage)
        code = "none" if status is None else str(status)
        statuses = self.statuses
        statuses[code] = statuses.get(code, 0) + 1
        auth = get("auth")
        if not auth or auth.__class__ is not str:
            auth = "none"
        self.auth[auth] = self.auth.get(auth, 0) + 1
        host = get("host")
        if host.__class__ is str and host not in self.hosts and len(self.hosts) < MAX_HOSTS:
            self.hosts.append(host)
        if self.first_seen is None or ts < self.first_seen:
            self.first_seen = ts
        if self.last_seen is None or ts > self.last_seen:
            self.last_seen = ts
        timings = get("timings")
        if timings.__class__ is dict:
            total = timings.get("total_ms")
            if total.__class__ in (int, float):  # not a bool, not text
                self.latency.add(total)
        if status is None or status >= 400:
            if status is None or status >= 500:
                self.server_errors += 1
            else:
                self.client_errors += 1
            self._error_sample(event_id, ts, status, data)
        else:
            self.successes += 1
            if self.last_success is None or ts > self.last_success:
                self.last_success = ts

    def _error_sample(self, event_id: str, ts: float, status: int | None, data: dict) -> None:
        body = data.get("response_body")
        if not isinstance(body, str) or data.get("response_body_encoding") == "base64":
            body = None
        sample: dict[str, Any] = {
            "t": ts,
            "id": event_id,
            "status": status,
            "body": body[:ERROR_BODY_CHARS] if body is not None else None,
        }
        if data.get("error"):
            sample["error"] = data["error"]
        errors = self.errors
        errors.append(sample)
        if len(errors) > ERROR_SAMPLES:
            del errors[0]

    def absorb(self, other: Figures) -> None:
        """Fold in another endpoint's figures (a template folded into this one's)."""
        self.calls += other.calls
        self.successes += other.successes
        self.server_errors += other.server_errors
        self.client_errors += other.client_errors
        for mine, theirs in ((self.statuses, other.statuses), (self.auth, other.auth)):
            for name, n in theirs.items():
                mine[name] = mine.get(name, 0) + n
        for host in other.hosts:
            if host not in self.hosts and len(self.hosts) < MAX_HOSTS:
                self.hosts.append(host)
        self.first_seen = _pick(min, self.first_seen, other.first_seen)
        self.last_seen = _pick(max, self.last_seen, other.last_seen)
        self.last_success = _pick(max, self.last_success, other.last_success)
        self.latency.absorb(other.latency)
        merged = sorted(self.errors + other.errors, key=lambda s: (s["t"], s["id"]))
        self.errors = merged[-ERROR_SAMPLES:]

    def state(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "successes": self.successes,
            "server_errors": self.server_errors,
            "client_errors": self.client_errors,
            "statuses": self.statuses,
            "auth": self.auth,
            "hosts": self.hosts,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "last_success": self.last_success,
            "latency": self.latency.state(),
            "errors": self.errors,
        }

    def summary(self) -> dict[str, Any]:
        """The figures as the reports give them (the keys of reports/catalog.py's ``_stats``)."""
        p50, p95 = self.latency.quantiles((0.5, 0.95))
        codes = sorted(int(code) for code in self.statuses if code != "none")
        status_codes = {str(code): self.statuses[str(code)] for code in codes}
        if "none" in self.statuses:
            status_codes["none"] = self.statuses["none"]
        return {
            "calls": self.calls,
            "successes": self.successes,
            "server_errors": self.server_errors,
            "client_errors": self.client_errors,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "last_success": self.last_success,
            "hosts": sorted(self.hosts),
            "status_codes": status_codes,
            "auth": dict(sorted(self.auth.items(), key=lambda item: (-item[1], item[0]))),
            "timed": self.latency.count,
            "p50": p50,
            "p95": p95,
        }

    def error_samples(self, n: int) -> list[dict[str, Any]]:
        """The newest ``n`` error exchanges, newest first."""
        picked = sorted(self.errors, key=lambda s: (s["t"], s["id"]), reverse=True)[:n]
        return [{k: v for k, v in sample.items() if k != "t"} for sample in picked]


def merged(figures: Iterable[Figures]) -> Figures:
    """One set of figures for many endpoints (a service's)."""
    total = Figures()
    for one in figures:
        total.absorb(one)
    return total


def _pick(choose: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return float(choose(a, b))
