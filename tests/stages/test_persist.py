"""The ``persist`` stage (rsproxy/stages/persist.py) writing to a real DuckDB store.

Persist writes typed rows for the hot kinds and an envelope for every event, honours
``exclude_kinds``, keeps payload keys that have no column (``extra``), and hands the batch on
unchanged so stages after it see what it saw.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rsproxy.errors import PipelineError
from rsproxy.events import Event
from rsproxy.pipeline.engine import Pipeline
from rsproxy.pipeline.spec import parse_spec
from rsproxy.pipeline.stage import StageContext
from rsproxy.stages.persist import Persist, PersistConfig
from rsproxy.store import Store


def _event(kind: str, **data: Any) -> Event:
    return Event(kind=kind, data=data, session_id="s1", project="test")


def _http(**overrides: Any) -> Event:
    data: dict[str, Any] = {
        "method": "GET",
        "url": "http://127.0.0.1:3000/api/a?x=1",
        "host": "127.0.0.1",
        "port": 3000,
        "path": "/api/a",
        "query": "x=1",
        "status": 200,
        "request_headers": [["accept", "*/*"]],
        "response_headers": [["content-type", "text/plain"]],
        "response_body": "ok",
        "response_body_encoding": "text",
        "timings": {"ttfb_ms": 3.0},
    }
    data.update(overrides)
    return _event("http", **data)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store.duckdb")
    try:
        yield s
    finally:
        s.close()


def _persist(store: Store | None, **config: Any) -> Persist:
    return Persist(PersistConfig(**config), StageContext("test", "s1", store))


def _no_failures(event: Event, exc: BaseException) -> bool:
    raise AssertionError(f"persist reported a failure on {event.kind}: {exc!r}")


def test_typed_rows_and_envelopes(store: Store) -> None:
    http = _http()
    console = _event("console", level="error", message="boom", args=["boom", 1])
    error = _event(
        "error", type="unhandledrejection", message="nope", source="http://a/x.js", line=3, column=9
    )
    vital = _event("vital", name="LCP", value=1234.5)
    _persist(store).process([http, console, error, vital], _no_failures)

    envelopes = store.query("SELECT id, kind, session_id FROM events ORDER BY kind")
    assert {r["id"] for r in envelopes} == {e.id for e in (http, console, error, vital)}
    assert {r["session_id"] for r in envelopes} == {"s1"}
    [typed_http] = store.query("SELECT id, method, status, path, query FROM http")
    assert typed_http == {
        "id": http.id,
        "method": "GET",
        "status": 200,
        "path": "/api/a",
        "query": "x=1",
    }
    typed_console = store.query(
        "SELECT id, kind, level, type, message, line, col FROM console ORDER BY kind"
    )
    assert typed_console == [
        {
            "id": console.id,
            "kind": "console",
            "level": "error",
            "type": None,
            "message": "boom",
            "line": None,
            "col": None,
        },
        {
            "id": error.id,
            "kind": "error",
            "level": None,
            "type": "unhandledrejection",
            "message": "nope",
            "line": 3,
            "col": 9,
        },
    ]
    # Kinds without a table of their own keep their payload in `events`.
    [vital_row] = store.events(kinds=["vital"])
    assert vital_row["data"] == {"name": "LCP", "value": 1234.5}


def test_events_pass_through_unchanged(store: Store) -> None:
    batch = [_http(), _event("custom", a={"b": [1, 2]}), _event("console", message="m")]
    before = [(e.id, e.kind, copy.deepcopy(e.data)) for e in batch]
    out = _persist(store).process(list(batch), _no_failures)
    assert [e is b for e, b in zip(out, batch, strict=True)] == [True, True, True]
    assert [(e.id, e.kind, e.data) for e in out] == before


def test_exclude_kinds_are_not_stored_but_pass_on(store: Store) -> None:
    batch = [_event("dom_mutation", added=3), _event("custom", n=1), _event("dom_mutation")]
    out = _persist(store, exclude_kinds=["dom_mutation"]).process(batch, _no_failures)
    assert out == batch
    assert store.counts() == {"custom": 1}


def test_payload_keys_without_a_column_survive_in_extra(store: Store) -> None:
    http = _http(path_template="/api/{id}", trace_id="t-123", graphql={"operation": "GetUser"})
    console = _event("console", level="log", message="hi", component="App")
    _persist(store).process([http, console], _no_failures)

    [raw] = store.query("SELECT extra, path_template FROM http")
    assert raw["path_template"] == "/api/{id}"
    assert '"trace_id"' in raw["extra"]
    by_id = {r["id"]: r["data"] for r in store.events()}
    assert by_id[http.id]["trace_id"] == "t-123"
    assert by_id[http.id]["graphql"] == {"operation": "GetUser"}
    assert by_id[http.id]["path_template"] == "/api/{id}"
    assert by_id[console.id] == {"level": "log", "message": "hi", "component": "App"}


def test_persist_in_a_pipeline_writes_each_batch(store: Store) -> None:
    spec = parse_spec("version: 1\nstages:\n  - type: redact\n  - type: persist\n", "inline")
    pipeline = Pipeline(spec, StageContext("test", "s1", store))
    planted = "Bearer abc.def.secret"
    first = pipeline.run([_http(request_headers=[["Authorization", planted]])])
    second = pipeline.run([_event("console", message="x") for _ in range(3)])
    pipeline.close()
    assert len(first) == 1 and len(second) == 3
    assert store.counts() == {"http": 1, "console": 3}
    assert pipeline.stats()["persist"]["errors"] == 0
    [row] = store.query("SELECT request_headers FROM http")
    assert "abc.def.secret" not in row["request_headers"]  # redact ran before persist


def test_a_pipeline_that_goes_quiet_has_its_log_folded_into_the_file(
    store: Store, tmp_path: Path
) -> None:
    wal = tmp_path / "store.duckdb.wal"
    spec = parse_spec(
        "version: 1\nstages:\n  - type: persist\n    checkpoint_quiet_s: 0.1\n", "inline"
    )
    pipeline = Pipeline(spec, StageContext("test", "s1", store))
    pipeline.run([_event("console", message=str(i)) for i in range(50)])
    pipeline.flush()  # the worker's idle call, right after a batch: too soon
    assert wal.exists() and wal.stat().st_size > 0
    time.sleep(0.2)
    pipeline.flush()
    assert not wal.exists() or wal.stat().st_size == 0
    assert store.counts() == {"console": 50}


def test_a_quiet_spell_must_be_positive() -> None:
    with pytest.raises(PipelineError, match=r"checkpoint_quiet_s"):
        parse_spec("version: 1\nstages:\n  - type: persist\n    checkpoint_quiet_s: 0\n", "x")


def test_without_a_store_persist_fails_loudly() -> None:
    with pytest.raises(RuntimeError, match="needs a store"):
        _persist(None).process([_event("custom")], _no_failures)


def test_a_bad_event_fails_alone_in_a_pipeline(store: Store) -> None:
    # A probe may send a console event whose `line` is not a number; only it must be lost.
    spec = parse_spec("version: 1\nstages:\n  - type: persist\n    on_error: drop\n", "inline")
    pipeline = Pipeline(spec, StageContext("test", "s1", store))
    good = [_event("console", message=str(i), line=i) for i in range(5)]
    bad = _event("console", message="bad", line="not a number")
    out = pipeline.run([*good[:2], bad, *good[2:]])
    assert [e.id for e in out] == [e.id for e in good]
    assert {r["id"] for r in store.events()} == {e.id for e in good}
    stats = pipeline.stats()["persist"]
    assert stats["errors"] == 1
    assert "not a number" in stats["last_error"]
