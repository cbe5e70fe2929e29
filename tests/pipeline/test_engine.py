"""Running batches through stages with failures isolated (rsproxy/pipeline/engine.py).

The stages below are defined here with their own config models and registry: ``flaky`` raises
on events marked bad, ``batch_sink`` refuses a whole batch that holds a bad event (as a batched
writer would), ``mark`` records which stages an event went through. Dead letters go to a real
DuckDB store under tmp_path.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from rsproxy.events import Event
from rsproxy.pipeline.engine import Pipeline
from rsproxy.pipeline.registry import StageRegistry
from rsproxy.pipeline.spec import PipelineSpec, parse_spec
from rsproxy.pipeline.stage import FailureSink, Stage, StageConfig, StageContext
from rsproxy.stages.persist import Persist
from rsproxy.store import Store


def _mark(event: Event, stage: Stage[Any]) -> None:
    event.data.setdefault("seen", []).append(stage.config.id or stage.name)


class MarkConfig(StageConfig):
    pass


class Mark(Stage[MarkConfig]):
    """Records that the event went through."""

    name = "mark"
    config_model = MarkConfig
    example = "- type: mark\n"

    def handle(self, event: Event) -> Event | None:
        _mark(event, self)
        return event


class FlakyConfig(StageConfig):
    error: str = "ValueError"


class Flaky(Stage[FlakyConfig]):
    """Raises on events whose payload has ``bad``; marks the others."""

    name = "flaky"
    config_model = FlakyConfig
    example = "- type: flaky\n"

    def handle(self, event: Event) -> Event | None:
        if event.data.get("bad"):
            error = {"ValueError": ValueError, "KeyError": KeyError}[self.config.error]
            raise error(f"cannot handle {event.data['name']}")
        _mark(event, self)
        return event


class BatchSink(Stage[MarkConfig]):
    """Takes whole batches; refuses a batch that holds a bad event, as a batched writer would."""

    name = "batch_sink"
    config_model = MarkConfig
    example = "- type: batch_sink\n"
    batches: ClassVar[list[list[str]]] = []

    def process(self, batch: list[Event], failed: FailureSink) -> list[Event]:
        if any(e.data.get("bad") for e in batch):
            raise RuntimeError(f"sink refused a batch of {len(batch)}")
        BatchSink.batches.append([e.data["name"] for e in batch])
        for event in batch:
            _mark(event, self)
        return batch


class Filter(Stage[MarkConfig]):
    """Drops events whose payload has ``drop`` (a normal, quiet drop)."""

    name = "filter"
    config_model = MarkConfig
    example = "- type: filter\n"

    def handle(self, event: Event) -> Event | None:
        return None if event.data.get("drop") else event


class Lifecycle(Stage[MarkConfig]):
    """Records flush and close; the one with id ``bad`` raises in both."""

    name = "lifecycle"
    config_model = MarkConfig
    example = "- type: lifecycle\n"
    calls: ClassVar[list[str]] = []

    def flush(self) -> None:
        Lifecycle.calls.append(f"flush {self.config.id}")
        if self.config.id == "bad":
            raise OSError("flush failed")

    def close(self) -> None:
        Lifecycle.calls.append(f"close {self.config.id}")
        if self.config.id == "bad":
            raise OSError("close failed")


class HandleThenSink(Stage[MarkConfig]):
    """Handles events one by one (reporting failures), then refuses any batch of several."""

    name = "handle_then_sink"
    config_model = MarkConfig
    example = "- type: handle_then_sink\n"

    def handle(self, event: Event) -> Event | None:
        if event.data.get("bad"):
            raise ValueError(f"cannot handle {event.data['name']}")
        return event

    def process(self, batch: list[Event], failed: FailureSink) -> list[Event]:
        out = super().process(batch, failed)
        if len(batch) > 1:
            raise RuntimeError("the sink takes one event at a time today")
        return out


class Picky(Stage[MarkConfig]):
    """Refuses batches of several events but handles each one alone."""

    name = "picky"
    config_model = MarkConfig
    example = "- type: picky\n"

    def process(self, batch: list[Event], failed: FailureSink) -> list[Event]:
        if len(batch) > 1:
            raise ConnectionError("downstream refused the batch")
        return batch


REGISTRY = StageRegistry()
for _cls in (Mark, Flaky, BatchSink, Filter, Lifecycle, HandleThenSink, Picky, Persist):
    REGISTRY.register(_cls)


@pytest.fixture(autouse=True)
def _reset_class_records() -> None:
    BatchSink.batches.clear()
    Lifecycle.calls.clear()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store.duckdb")
    try:
        yield s
    finally:
        s.close()


def _spec(stages: str) -> PipelineSpec:
    return parse_spec(f"version: 1\nstages:\n{stages}", "test.yaml", REGISTRY)


def _pipeline(stages: str, store: Store | None = None) -> Pipeline:
    return Pipeline(_spec(stages), StageContext("test", "s1", store))


def _events(*names: str) -> list[Event]:
    """Events named by their tag: names starting with `bad` fail, `drop` are filtered."""
    return [
        Event(
            kind="custom",
            session_id="s1",
            data={
                "name": n,
                **({"bad": True} if n.startswith("bad") else {}),
                **({"drop": True} if n.startswith("drop") else {}),
            },
        )
        for n in names
    ]


def _names(events: list[Event]) -> list[str]:
    return [e.data["name"] for e in events]


# ---- on_error ----------------------------------------------------------------------------------------


def test_on_error_continue_passes_the_event_on_unchanged(store: Store) -> None:
    pipeline = _pipeline("  - type: flaky\n  - type: mark\n", store)
    out = pipeline.run(_events("a", "bad1", "b"))
    assert _names(out) == ["a", "bad1", "b"]
    assert [e.data.get("seen") for e in out] == [["flaky", "mark"], ["mark"], ["flaky", "mark"]]
    assert store.query("SELECT * FROM dead_letters") == []


def test_on_error_drop_discards_the_event(store: Store) -> None:
    pipeline = _pipeline("  - {type: flaky, on_error: drop}\n  - type: mark\n", store)
    out = pipeline.run(_events("a", "bad1", "b", "bad2"))
    assert _names(out) == ["a", "b"]
    assert all(e.data["seen"] == ["flaky", "mark"] for e in out)
    assert store.query("SELECT * FROM dead_letters") == []
    assert pipeline.stats()["flaky"]["errors"] == 2


def test_on_error_dead_letter_keeps_the_event_in_the_store(store: Store) -> None:
    pipeline = _pipeline(
        "  - {type: flaky, id: enrich, on_error: dead_letter}\n  - type: mark\n", store
    )
    batch = _events("a", "bad1", "b")
    bad = batch[1]
    out = pipeline.run(batch)
    assert _names(out) == ["a", "b"]
    [row] = store.query("SELECT * FROM dead_letters")
    assert row["stage"] == "enrich"
    assert row["session_id"] == "s1"
    assert row["error"] == "ValueError: cannot handle bad1"
    kept = json.loads(row["event"])
    assert kept["id"] == bad.id
    assert kept["kind"] == "custom"
    assert kept["data"]["name"] == "bad1"


def test_dead_letters_accumulate_over_batches(store: Store) -> None:
    pipeline = _pipeline("  - {type: flaky, on_error: dead_letter}\n", store)
    pipeline.run(_events("bad1", "a"))
    pipeline.run(_events("bad2", "bad3"))
    rows = store.query("SELECT event FROM dead_letters")
    assert sorted(json.loads(r["event"])["data"]["name"] for r in rows) == ["bad1", "bad2", "bad3"]


def test_dead_letters_without_a_store_are_reported_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipeline = _pipeline("  - {type: flaky, on_error: dead_letter}\n")
    with caplog.at_level(logging.WARNING, logger="rsproxy.pipeline"):
        out = pipeline.run(_events("a", "bad1"))
    assert _names(out) == ["a"]
    assert any("no store" in r.getMessage() for r in caplog.records)


# ---- counting ---------------------------------------------------------------------------------------


def test_errors_are_counted_per_stage_id_with_the_last_error() -> None:
    pipeline = _pipeline(
        "  - {type: flaky, id: first}\n"
        "  - {type: mark, id: between}\n"
        "  - {type: flaky, id: second, error: KeyError, on_error: drop}\n"
    )
    out = pipeline.run(_events("a", "bad1", "b", "bad2"))
    assert _names(out) == ["a", "b"]
    stats = pipeline.stats()
    assert list(stats) == ["first", "between", "second"]
    assert stats["first"] == {
        "events_in": 4,
        "events_out": 4,
        "errors": 2,
        "last_error": "ValueError: cannot handle bad2",
    }
    assert stats["between"] == {"events_in": 4, "events_out": 4, "errors": 0, "last_error": None}
    assert stats["second"] == {
        "events_in": 4,
        "events_out": 2,
        "errors": 2,
        "last_error": "KeyError: 'cannot handle bad2'",
    }
    pipeline.run(_events("bad3"))
    assert pipeline.stats()["first"]["errors"] == 3
    assert pipeline.stats()["first"]["last_error"] == "ValueError: cannot handle bad3"
    assert pipeline.stage_ids == ["first", "between", "second"]


def test_failures_are_logged_with_the_stage_id_but_only_the_first_few(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipeline = _pipeline("  - {type: flaky, id: geoip, on_error: drop}\n")
    with caplog.at_level(logging.ERROR, logger="rsproxy.pipeline"):
        pipeline.run(_events(*[f"bad{i}" for i in range(12)]))
    assert pipeline.stats()["geoip"]["errors"] == 12
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert 1 <= len(logged) < 12
    assert all("geoip" in r.getMessage() for r in logged)
    assert logged[0].exc_info is not None  # with the traceback


def test_a_quiet_drop_is_not_an_error() -> None:
    pipeline = _pipeline("  - type: filter\n  - type: mark\n")
    out = pipeline.run(_events("a", "drop1", "b"))
    assert _names(out) == ["a", "b"]
    assert pipeline.stats()["filter"] == {
        "events_in": 3,
        "events_out": 2,
        "errors": 0,
        "last_error": None,
    }


def test_a_stage_that_leaves_nothing_ends_the_batch() -> None:
    pipeline = _pipeline("  - type: filter\n  - type: mark\n")
    assert pipeline.run(_events("drop1", "drop2")) == []
    assert pipeline.stats()["mark"]["events_in"] == 0
    assert pipeline.run([]) == []


# ---- batch-level failures ---------------------------------------------------------------------------


def test_a_batch_failure_falls_back_to_one_event_at_a_time(store: Store) -> None:
    pipeline = _pipeline(
        "  - {type: batch_sink, id: sink, on_error: dead_letter}\n  - type: mark\n", store
    )
    out = pipeline.run(_events("a", "bad1", "b", "c", "bad2"))
    assert _names(out) == ["a", "b", "c"]
    assert all(e.data["seen"] == ["sink", "mark"] for e in out)
    # The good events went through the sink (alone, once the batch had been refused).
    assert sorted(n for batch in BatchSink.batches for n in batch) == ["a", "b", "c"]
    stats = pipeline.stats()["sink"]
    assert stats["errors"] == 2
    assert stats["last_error"] == "RuntimeError: sink refused a batch of 1"
    assert stats["events_in"] == 5 and stats["events_out"] == 3
    rows = store.query("SELECT event FROM dead_letters")
    assert sorted(json.loads(r["event"])["data"]["name"] for r in rows) == ["bad1", "bad2"]


def test_a_batch_failure_with_continue_keeps_every_event() -> None:
    pipeline = _pipeline("  - {type: batch_sink, id: sink}\n  - type: mark\n")
    out = pipeline.run(_events("a", "bad1", "b"))
    assert _names(out) == ["a", "bad1", "b"]
    assert [e.data["seen"] for e in out] == [["sink", "mark"], ["mark"], ["sink", "mark"]]
    assert pipeline.stats()["sink"]["errors"] == 1


def test_a_clean_batch_goes_through_whole() -> None:
    pipeline = _pipeline("  - type: batch_sink\n")
    pipeline.run(_events("a", "b", "c"))
    assert BatchSink.batches == [["a", "b", "c"]]


def test_failures_reported_before_a_batch_failure_count_once(store: Store) -> None:
    pipeline = _pipeline("  - {type: handle_then_sink, id: sink, on_error: dead_letter}\n", store)
    out = pipeline.run(_events("a", "bad1", "b"))
    assert _names(out) == ["a", "b"]
    assert pipeline.stats()["sink"]["errors"] == 1
    assert len(store.query("SELECT * FROM dead_letters")) == 1


def test_a_batch_level_failure_is_logged_with_the_stage_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipeline = _pipeline("  - {type: picky, id: uploader}\n")
    with caplog.at_level(logging.WARNING, logger="rsproxy.pipeline"):
        out = pipeline.run(_events("a", "b"))
    assert _names(out) == ["a", "b"]
    assert any("uploader" in r.getMessage() for r in caplog.records)


# ---- flush and close ----------------------------------------------------------------------------------


def test_flush_and_close_failures_do_not_stop_the_other_stages(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipeline = _pipeline("  - {type: lifecycle, id: bad}\n  - {type: lifecycle, id: good}\n")
    with caplog.at_level(logging.ERROR, logger="rsproxy.pipeline"):
        pipeline.flush()
        pipeline.close()
    assert Lifecycle.calls == [
        "flush bad",
        "flush good",  # flush()
        "flush bad",
        "flush good",
        "close bad",
        "close good",  # close() flushes first
    ]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "bad failed to flush" in messages
    assert "bad failed to close" in messages


def test_the_same_pipeline_with_persist_and_a_failing_stage(store: Store) -> None:
    pipeline = _pipeline("  - {type: flaky, on_error: drop}\n  - type: persist\n", store)
    pipeline.run(_events("a", "bad1", "b"))
    stored = sorted(r["data"]["name"] for r in store.events())
    assert stored == ["a", "b"]
