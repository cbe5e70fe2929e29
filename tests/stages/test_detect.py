"""The ``detect`` stage (rsproxy/stages/detect.py) in a real pipeline over a real DuckDB store.

The stage writes one ``issues`` row per finding and replaces it as the finding grows, emits one
``issue`` event per finding (with the batch, or straight to the store when the finding is born
while the pipeline idles), goes on counting after a pipeline reload instead of starting over,
takes its thresholds from the pipeline file, and never lets a failing detector take the batch
down.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rsproxy.errors import PipelineValidationError
from rsproxy.events import Event
from rsproxy.pipeline.engine import Pipeline
from rsproxy.pipeline.spec import parse_spec
from rsproxy.pipeline.stage import StageContext
from rsproxy.stages.detect import Detect, DetectConfig
from rsproxy.store import Store
from rsproxy.testing import make_event, make_http_event

SESSION = "s1"
T0 = 1_700_000_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store.duckdb")
    try:
        yield s
    finally:
        s.close()


def _pipeline(store: Store | None, detect: str = "  - type: detect\n") -> Pipeline:
    text = f"version: 1\nstages:\n{detect}" + ("  - type: persist\n" if store else "")
    return Pipeline(parse_spec(text, "<test>"), StageContext("test", SESSION, store))


def _failed(path: str = "/api/orders/1", ts: float = T0, status: int = 500) -> Event:
    event = make_http_event(path=path, status=status, timings={"total_ms": 3.0})
    event.ts, event.session_id = ts, SESSION
    return event


def _errors(n: int, ts: float = T0) -> list[Event]:
    out = []
    for i in range(n):
        event = make_event("console", level="error", message="boom")
        event.ts, event.session_id, event.source = ts + i, SESSION, "probe"
        out.append(event)
    return out


def _rows(store: Store) -> list[dict[str, Any]]:
    rows = store.query("SELECT * FROM issues ORDER BY detector, id")
    for row in rows:
        row["data"] = json.loads(row["data"])
    return rows


def _issue_events(store: Store) -> list[dict[str, Any]]:
    return store.events(kinds=["issue"], session_id=SESSION)


def test_a_finding_becomes_one_row_and_one_issue_event(store: Store) -> None:
    pipeline = _pipeline(store)
    first = [_failed("/api/orders/1"), _failed("/api/orders/2", ts=T0 + 10)]
    out = pipeline.run(first)
    issues = [e for e in out if e.kind == "issue"]
    assert len(issues) == 1 and len(out) == 3
    issue = issues[0]
    assert issue.session_id == SESSION and issue.project == "test"
    assert issue.ts == T0 and issue.source == "proxy"
    assert issue.data["detector"] == "failed_request" and issue.data["severity"] == "high"
    assert issue.data["evidence"] == [first[0].id, first[1].id]

    (row,) = _rows(store)
    assert row["session_id"] == SESSION and row["id"] == issue.data["issue_id"]
    assert (row["count"], row["first_seen"], row["last_seen"]) == (2, T0, T0 + 10)
    assert row["data"]["key"] == "GET /api/orders/{id} 500"
    assert row["data"]["evidence"] == [e.id for e in first]
    assert row["data"]["explanation"] and row["data"]["suggestion"]

    # The same problem again: the row is replaced (once the pipeline idles, or a second after
    # the last write), no second issue event.
    later = _failed("/api/orders/3", ts=T0 + 60_000)
    out = pipeline.run([later, _failed("/api/orders/4", ts=T0 + 60_001, status=200)])
    assert [e.kind for e in out] == ["http", "http"]
    pipeline.flush()
    (row,) = _rows(store)
    assert (row["count"], row["last_seen"]) == (3, T0 + 60_000)
    assert row["data"]["evidence"][-1] == later.id
    stored = _issue_events(store)
    assert len(stored) == 1 and stored[0]["data"]["issue_id"] == row["id"]


def test_only_changed_findings_are_written(store: Store) -> None:
    pipeline = _pipeline(store)
    pipeline.run([_failed("/api/a", status=500), _failed("/api/b", status=404)])
    before = {r["id"]: r for r in _rows(store)}
    stage = pipeline._stages[0].stage
    assert isinstance(stage, Detect)
    written: list[list[str]] = []
    original = store.replace_rows

    def spy(table: str, rows: Any) -> None:
        written.append([r["id"] for r in rows])
        original(table, rows)

    store.replace_rows = spy  # type: ignore[method-assign]
    pipeline.run([_failed("/api/a", ts=T0 + 5, status=500)])
    assert written == []  # within a second of the last write: it waits
    pipeline.run(_errors(1, ts=T0 + 6))  # nothing found
    pipeline.flush()  # the pipeline idles: what is pending is written
    a = next(i for i, r in before.items() if "/api/a" in r["data"]["key"])
    assert written == [[a]]  # only the finding that changed
    pipeline.flush()
    assert written == [[a]]  # nothing pending: nothing written
    out = pipeline.run([_failed("/api/a", ts=T0 + 7, status=500), _failed("/api/c", ts=T0 + 8)])
    assert [e.kind for e in out].count(
        "issue"
    ) == 1  # the event at once, the row with the next write
    pipeline.flush()
    assert len(written) == 2 and sorted(written[1]) == sorted([a, out[-1].data["issue_id"]])


def test_a_reloaded_pipeline_goes_on_counting(store: Store) -> None:
    _pipeline(store).run([_failed()])
    pipeline = _pipeline(store)  # a hot reload builds a new stage
    out = pipeline.run([_failed(ts=T0 + 5)])
    assert [e.kind for e in out] == ["http"]  # not a new finding
    (row,) = _rows(store)
    assert row["count"] == 2 and len(row["data"]["evidence"]) == 2
    assert len(_issue_events(store)) == 1


def test_a_finding_completed_while_idle_is_stored_at_flush(store: Store) -> None:
    pipeline = _pipeline(store)
    commit = 30
    renders = [make_event("render", component="App", renders=1, reasons={"state": 1},
                          commit_components=commit)]  # fmt: skip
    renders += [
        make_event("render", component=f"C{i}", renders=1, reasons={"parent": 1},
                   commit_components=commit)
        for i in range(commit - 1)
    ]  # fmt: skip
    for event in renders:
        event.ts, event.source, event.page_id = T0, "probe", "p1"
    out = pipeline.run(renders)
    assert not [e for e in out if e.kind == "issue"]  # the render report may go on
    pipeline.flush()  # the pipeline idles: the report is complete
    (row,) = _rows(store)
    assert row["detector"] == "render_cascade" and row["data"]["key"] == "App"
    (stored,) = _issue_events(store)
    assert stored["data"]["detector"] == "render_cascade" and stored["page_id"] == "p1"


def test_without_a_store_issue_events_still_flow() -> None:
    stage = Detect(DetectConfig(), StageContext("test", SESSION, None))
    out = stage.process(_errors(6), lambda e, x: True)
    assert [e.kind for e in out].count("issue") == 1
    stage.flush()  # nothing to write, nothing raised


def test_thresholds_and_disabled_detectors_come_from_the_pipeline_file(store: Store) -> None:
    pipeline = _pipeline(
        store,
        "  - type: detect\n    thresholds: {console_error_spam: 2}\n    disable: [failed_request]\n",
    )
    pipeline.run([_failed(), *_errors(3)])
    assert [r["detector"] for r in _rows(store)] == ["console_error_spam"]


def test_bad_thresholds_are_reported_with_their_place() -> None:
    with pytest.raises(PipelineValidationError) as caught:
        parse_spec(
            "version: 1\nstages:\n  - type: detect\n    thresholds:\n      slow_request_ms: 0\n"
            "      n_plus_one_requests: -1\n      nope: 1\n    disable: [slow]\n",
            "<test>",
        )
    text = str(caught.value)
    assert "stages[0] (detect), line 3: thresholds.slow_request_ms: must be > 0" in text
    assert "thresholds.n_plus_one_requests: must be > 0" in text
    assert "thresholds.nope: unknown key" in text
    assert "disable.0" in text


def test_the_example_is_a_valid_pipeline_stage() -> None:
    spec = parse_spec(f"version: 1\nstages:\n{Detect.example}", "<example>")
    config = spec.stages[0].config
    assert isinstance(config, DetectConfig) and config.disable == ["select_star"]


def test_a_detector_failure_is_reported_and_the_batch_goes_on(store: Store) -> None:
    pipeline = _pipeline(store)
    bad = make_event("http", method="GET", path="/x", status=500, timings={"total_ms": 1})
    bad.session_id = SESSION
    bad.data["request_headers"] = 42  # a payload no detector expects: iteration fails
    bad.data["response_content_type"] = "application/json"
    good = _failed()
    out = pipeline.run([bad, good])
    assert bad in out and good in out
    stats = pipeline.stats()["detect"]
    assert stats["errors"] == 1 and "TypeError" in stats["last_error"]
    assert {r["data"]["key"] for r in _rows(store)} == {"GET /x 500", "GET /api/orders/{id} 500"}
