"""An endpoint's running figures (rsproxy/analysis/figures.py), checked against DuckDB.

The reports once computed every figure with SQL over the ``http`` table; the running figures
must give the same answers. Quantiles are checked against DuckDB's own ``quantile_cont``: exact
up to ``EXACT_LIMIT`` latencies, within the histogram's 1 % after, merged or not.
"""

from __future__ import annotations

import json
import random
from typing import Any

import duckdb
import pytest

from rsproxy.analysis.figures import (
    ERROR_BODY_CHARS,
    ERROR_SAMPLES,
    EXACT_LIMIT,
    Figures,
    Latencies,
    merged,
)


def duckdb_quantiles(values: list[float]) -> tuple[float, float]:
    row = (
        duckdb.connect()
        .execute(
            "SELECT quantile_cont(v, 0.5), quantile_cont(v, 0.95) FROM (SELECT unnest(?) AS v)",
            [values],
        )
        .fetchone()
    )
    assert row is not None
    return row[0], row[1]


def latencies(values: list[float]) -> Latencies:
    out = Latencies()
    for value in values:
        out.add(value)
    return out


def exchange(status: int | None, ms: Any = 10.0, **extra: Any) -> dict[str, Any]:
    return {"status": status, "timings": {"total_ms": ms}, "host": "127.0.0.1", **extra}


@pytest.mark.parametrize("n", [1, 2, 3, 10, EXACT_LIMIT])
def test_up_to_the_exact_limit_quantiles_are_duckdbs(n: int) -> None:
    rng = random.Random(n)
    values = [round(rng.uniform(0.1, 900.0), 3) for _ in range(n)]
    assert latencies(values).quantiles((0.5, 0.95)) == pytest.approx(
        duckdb_quantiles(values), rel=1e-12
    )


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng: rng.lognormvariate(3.5, 1.2),  # the long tail of real latencies
        lambda rng: rng.uniform(1.0, 2000.0),
        lambda rng: rng.choice([5.0, 5.0, 5.0, 800.0]),  # a few values many times over
        lambda rng: rng.expovariate(1 / 40) + 0.01,
    ],
)
def test_past_the_exact_limit_quantiles_are_within_one_percent(draw: Any) -> None:
    rng = random.Random(7)
    values = [draw(rng) for _ in range(5000)]
    got = latencies(values).quantiles((0.5, 0.95))
    for mine, exact in zip(got, duckdb_quantiles(values), strict=True):
        assert mine == pytest.approx(exact, rel=0.01)


def test_zero_and_negative_latencies_are_counted_below_every_bucket() -> None:
    values = [0.0] * 50 + [-1.0] * 10 + [float(n) for n in range(1, 200)]
    got = latencies(values).quantiles((0.0, 0.5, 1.0))
    exact = (
        duckdb.connect()
        .execute("SELECT quantile_cont(v, [0.0, 0.5, 1.0]) FROM (SELECT unnest(?) AS v)", [values])
        .fetchone()
    )
    assert exact is not None
    assert got[0] == -1.0 and got[2] == 199.0  # the extremes are exact
    assert got[1] == pytest.approx(exact[0][1], rel=0.01)


def test_absurd_latencies_do_not_stretch_the_histogram() -> None:
    values = [1e-12, 1e15] + [float(n) for n in range(1, EXACT_LIMIT + 100)]
    histogram = latencies(values)
    assert len(histogram.counts) < 2000  # 0.01 ms to 1e9 ms at most, not 1e-12 to 1e15
    low, median, high = histogram.quantiles((0.0, 0.5, 1.0))
    assert (low, high) == (1e-12, 1e15)
    assert median == pytest.approx(duckdb_quantiles(values)[0], rel=0.01)


def test_merged_latencies_equal_those_of_all_the_values() -> None:
    rng = random.Random(3)
    parts = [[rng.lognormvariate(4, 1) for _ in range(n)] for n in (5, 40, 300, 0, 1)]
    total = Latencies()
    for part in parts:
        total.absorb(latencies(part))
    everything = [v for part in parts for v in part]
    assert total.count == len(everything)
    assert total.low == min(everything) and total.high == max(everything)
    for mine, exact in zip(total.quantiles((0.5, 0.95)), duckdb_quantiles(everything), strict=True):
        assert mine == pytest.approx(exact, rel=0.01)
    # two small halves stay exact together
    small = latencies([1.0, 2.0])
    small.absorb(latencies([3.0, 4.0]))
    assert small.exact == [1.0, 2.0, 3.0, 4.0]
    assert small.quantiles((0.5,)) == [2.5]


def test_no_latency_means_no_quantile() -> None:
    assert Latencies().quantiles((0.5, 0.95)) == [None, None]


def test_outcomes_statuses_auth_hosts_and_times() -> None:
    f = Figures()
    f.observe("e1", 1000.0, exchange(200, auth="bearer"))
    f.observe("e2", 3000.0, exchange(404, auth="bearer", host="api.local"))
    f.observe("e3", 2000.0, exchange(None, ms=None, error="connection reset"))
    f.observe("e4", 4000.0, exchange(503, ms="slow"))  # a latency that is not a number
    f.observe("e5", 500.0, exchange(204, ms=True))  # nor is a bool
    summary = f.summary()
    assert summary == {
        "calls": 5,
        "successes": 2,
        "server_errors": 2,
        "client_errors": 1,
        "first_seen": 500.0,
        "last_seen": 4000.0,
        "last_success": 1000.0,
        "hosts": ["127.0.0.1", "api.local"],
        "status_codes": {"200": 1, "204": 1, "404": 1, "503": 1, "none": 1},
        "auth": {"bearer": 2, "none": 3},
        "timed": 2,
        "p50": 10.0,
        "p95": 10.0,
    }


def test_fields_of_the_wrong_type_count_as_missing() -> None:
    f = Figures()
    f.observe("e1", 1.0, exchange("200", auth=["bearer"], host=None))  # type: ignore[arg-type]
    f.observe("e2", 2.0, exchange(True, auth=7, host=3))  # type: ignore[arg-type]
    summary = f.summary()
    assert summary["status_codes"] == {"none": 2} and summary["server_errors"] == 2
    assert summary["auth"] == {"none": 2} and summary["hosts"] == []


def test_error_samples_are_the_newest_text_bodies_cut_short() -> None:
    f = Figures()
    for n in range(ERROR_SAMPLES + 5):
        f.observe(f"e{n}", float(n), exchange(500, response_body="x" * 1000))
    f.observe("bin", 100.0, exchange(502, response_body="AAAA", response_body_encoding="base64"))
    f.observe("gone", 99.0, exchange(None, error="timed out"))
    samples = f.error_samples(3)
    assert [s["id"] for s in samples] == ["bin", "gone", f"e{ERROR_SAMPLES + 4}"]
    assert samples[0]["body"] is None  # a binary body is not a sample's text
    assert samples[1] == {"id": "gone", "status": None, "body": None, "error": "timed out"}
    assert len(samples[2]["body"]) == ERROR_BODY_CHARS
    assert len(f.error_samples(100)) == ERROR_SAMPLES


def test_absorbing_figures_is_observing_both_streams() -> None:
    rng = random.Random(11)
    stream = [
        (f"e{n}", float(n), exchange(rng.choice([200, 200, 404, 500, None]), rng.uniform(1, 99)))
        for n in range(200)
    ]
    whole, odd, even = Figures(), Figures(), Figures()
    for event_id, ts, data in stream:
        whole.observe(event_id, ts, data)
        (odd if int(ts) % 2 else even).observe(event_id, ts, data)
    folded = merged([odd, even])
    got, want = folded.summary(), whole.summary()
    for key in ("p50", "p95"):
        assert got.pop(key) == pytest.approx(want.pop(key), rel=0.01)
    assert got == want
    assert folded.error_samples(ERROR_SAMPLES) == whole.error_samples(ERROR_SAMPLES)


def test_the_state_survives_a_json_round_trip() -> None:
    f = Figures()
    for n in range(EXACT_LIMIT + 30):  # past the exact limit, so the histogram is stored
        f.observe(f"e{n}", float(n), exchange(200 if n % 3 else 500, ms=n + 0.5, auth="cookie"))
    again = Figures(json.loads(json.dumps(f.state())))
    assert again.summary() == f.summary()
    assert again.error_samples(5) == f.error_samples(5)
    again.observe("next", 1e6, exchange(200, ms=7.0))
    f.observe("next", 1e6, exchange(200, ms=7.0))
    assert again.summary() == f.summary()
