"""The pipeline worker (rsproxy/pipeline/worker.py): a bounded queue drained in batches by a thread.

``submit`` must never block and must count what it cannot queue; ``stop`` must process what is
queued and close the pipeline; ``swap`` must take effect between two batches, never inside one.
Stages that block on a ``threading.Event`` make the queue fill up deterministically. Events are
persisted to a real DuckDB store under tmp_path. Every wait is bounded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from rsproxy.errors import DaemonError
from rsproxy.events import Event
from rsproxy.pipeline.engine import Pipeline
from rsproxy.pipeline.registry import StageRegistry
from rsproxy.pipeline.spec import parse_spec
from rsproxy.pipeline.stage import FailureSink, Stage, StageConfig, StageContext
from rsproxy.pipeline.worker import PipelineWorker
from rsproxy.stages.persist import Persist
from rsproxy.store import Store

WAIT = 15.0  # seconds: an upper bound for anything the worker thread has to do


class TapConfig(StageConfig):
    pass


class Tap(Stage[TapConfig]):
    """Records each batch it sees (by stage id) and tags events with that id."""

    name = "tap"
    config_model = TapConfig
    example = "- type: tap\n"
    batches: ClassVar[list[tuple[str, list[int]]]] = []
    closed: ClassVar[list[str]] = []

    def process(self, batch: list[Event], failed: FailureSink) -> list[Event]:
        stage_id = self.config.id or self.name
        Tap.batches.append((stage_id, [e.data["n"] for e in batch]))
        for event in batch:
            event.data.setdefault("via", []).append(stage_id)
        return batch

    def close(self) -> None:
        Tap.closed.append(self.config.id or self.name)


class Gate(Stage[TapConfig]):
    """Blocks each batch until ``release`` is set; ``entered`` tells the test it is blocked."""

    name = "gate"
    config_model = TapConfig
    example = "- type: gate\n"
    entered = threading.Event()
    release = threading.Event()

    def process(self, batch: list[Event], failed: FailureSink) -> list[Event]:
        Gate.entered.set()
        if not Gate.release.wait(WAIT):
            raise TimeoutError("the test never released the gate")
        return batch


REGISTRY = StageRegistry()
for _cls in (Tap, Gate, Persist):
    REGISTRY.register(_cls)


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    Tap.batches.clear()
    Tap.closed.clear()
    Gate.entered.clear()
    Gate.release.clear()
    yield
    Gate.release.set()  # never leave a worker thread blocked behind a failed test


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store.duckdb")
    try:
        yield s
    finally:
        s.close()


def _pipeline(stages: str, store: Store | None = None) -> Pipeline:
    spec = parse_spec(f"version: 1\nstages:\n{stages}", "test.yaml", REGISTRY)
    return Pipeline(spec, StageContext("test", "s1", store))


def _events(start: int, count: int) -> list[Event]:
    return [
        Event(kind="custom", data={"n": n}, session_id="s1") for n in range(start, start + count)
    ]


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def workers() -> Iterator[list[PipelineWorker]]:
    """Workers a test started; each is stopped at the end even if the test failed."""
    started: list[PipelineWorker] = []
    yield started
    Gate.release.set()
    for worker in started:
        worker.stop(timeout=WAIT)


def _start(workers: list[PipelineWorker], pipeline: Pipeline, **options: Any) -> PipelineWorker:
    worker = PipelineWorker(pipeline, **options)
    workers.append(worker)
    worker.start()
    return worker


def _stored_ns(store: Store) -> list[int]:
    return sorted(r["data"]["n"] for r in store.events(limit=100_000))


# ---- processing ----------------------------------------------------------------------------------


def test_submitted_events_are_processed_in_batches_and_persisted(
    store: Store, workers: list[PipelineWorker]
) -> None:
    worker = _start(
        workers,
        _pipeline("  - type: tap\n  - type: persist\n", store),
        batch_size=10,
        batch_window=0.05,
    )
    for event in _events(0, 95):
        assert worker.submit(event) is True
    _wait_for(lambda: worker.processed == 95, "95 events to be processed")
    assert _stored_ns(store) == list(range(95))
    sizes = [len(ns) for _, ns in Tap.batches]
    assert sum(sizes) == 95
    assert max(sizes) <= 10
    assert worker.batches == len(Tap.batches) >= 10
    # Order is kept within and across batches.
    assert [n for _, ns in Tap.batches for n in ns] == list(range(95))
    stats = worker.stats()
    assert stats["processed"] == 95 and stats["dropped"] == 0 and stats["queued"] == 0
    assert stats["stages"]["persist"]["events_in"] == 95
    assert stats["last_batch_ms"] is not None


def test_a_full_queue_counts_drops_and_never_blocks(
    store: Store, workers: list[PipelineWorker]
) -> None:
    worker = _start(
        workers,
        _pipeline("  - type: gate\n  - type: persist\n", store),
        maxsize=3,
        batch_size=1,
        batch_window=0.0,
    )
    first, *rest = _events(0, 10)
    assert worker.submit(first)
    assert Gate.entered.wait(WAIT), "the worker never took the first event"
    # The worker is stuck inside the gate: three more fit in the queue, the rest are dropped.
    results = [worker.submit(event) for event in rest]
    assert results == [True] * 3 + [False] * 6
    assert worker.dropped == 6
    assert worker.stats()["dropped"] == 6
    assert worker.stats()["queued"] == 3
    assert worker.stats()["capacity"] == 3
    Gate.release.set()
    worker.stop(timeout=WAIT)
    assert _stored_ns(store) == [0, 1, 2, 3]
    assert worker.processed == 4
    assert worker.dropped == 6


def test_submit_from_many_threads_while_blocked_never_blocks(
    workers: list[PipelineWorker],
) -> None:
    worker = _start(workers, _pipeline("  - type: gate\n"), maxsize=50, batch_size=1)
    worker.submit(_events(0, 1)[0])
    assert Gate.entered.wait(WAIT)
    accepted: list[bool] = []
    lock = threading.Lock()

    def flood() -> None:
        for event in _events(0, 100):
            ok = worker.submit(event)
            with lock:
                accepted.append(ok)

    threads = [threading.Thread(target=flood) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads), "submit blocked"
    assert accepted.count(True) == 50
    assert worker.dropped == 800 - 50


def test_stop_drains_everything_queued_and_closes_the_pipeline(
    store: Store, workers: list[PipelineWorker]
) -> None:
    worker = _start(
        workers,
        _pipeline("  - type: gate\n  - type: tap\n  - type: persist\n", store),
        batch_size=100,
    )
    worker.submit(_events(0, 1)[0])
    assert Gate.entered.wait(WAIT)
    for event in _events(1, 999):
        assert worker.submit(event)
    stopper = threading.Thread(target=worker.stop, kwargs={"timeout": WAIT})
    stopper.start()  # stop() is asked while a batch is still in the gate
    Gate.release.set()
    stopper.join(WAIT)
    assert not stopper.is_alive()
    assert _stored_ns(store) == list(range(1000))
    assert worker.processed == 1000
    assert worker.stats()["queued"] == 0
    assert Tap.closed == ["tap"]


def test_stop_without_start_processes_in_the_caller(store: Store) -> None:
    worker = PipelineWorker(_pipeline("  - type: tap\n  - type: persist\n", store), batch_size=7)
    for event in _events(0, 20):
        worker.submit(event)
    worker.stop()
    assert _stored_ns(store) == list(range(20))
    assert [len(ns) for _, ns in Tap.batches] == [7, 7, 6]
    assert Tap.closed == ["tap"]


def test_stop_twice_closes_the_pipeline_once(workers: list[PipelineWorker]) -> None:
    worker = _start(workers, _pipeline("  - type: tap\n"))
    worker.stop(timeout=WAIT)
    worker.stop(timeout=WAIT)
    assert Tap.closed == ["tap"]


# ---- swap -----------------------------------------------------------------------------------------


def test_swap_takes_effect_between_batches(store: Store, workers: list[PipelineWorker]) -> None:
    old = _pipeline("  - type: gate\n  - {type: tap, id: old}\n  - type: persist\n", store)
    new = _pipeline("  - {type: tap, id: new}\n  - type: persist\n", store)
    worker = _start(workers, old, batch_size=1_000, batch_window=0.0)
    for event in _events(0, 1):
        worker.submit(event)
    assert Gate.entered.wait(WAIT)
    # The first batch is inside the old pipeline; more events queue up behind it.
    for event in _events(1, 49):
        worker.submit(event)
    worker.swap(new)
    assert worker.pipeline is new  # what stats report from now on
    Gate.release.set()
    _wait_for(lambda: worker.processed == 50, "50 events to be processed")

    # The batch in flight finished in the old pipeline, every stage of it...
    assert Tap.batches[0] == ("old", [0])
    # ...and everything queued afterwards went through the new one only.
    later = [(sid, ns) for sid, ns in Tap.batches[1:]]
    assert {sid for sid, _ in later} == {"new"}
    assert sorted(n for _, ns in later for n in ns) == list(range(1, 50))
    assert Tap.closed == ["old"]  # the worker closed the pipeline it replaced
    stored = {r["data"]["n"]: r["data"]["via"] for r in store.events(limit=1_000)}
    assert stored[0] == ["old"]
    assert all(stored[n] == ["new"] for n in range(1, 50))

    worker.stop(timeout=WAIT)
    assert Tap.closed == ["old", "new"]


def test_a_pipeline_replaced_before_it_ran_is_still_closed() -> None:
    worker = PipelineWorker(_pipeline("  - {type: tap, id: first}\n"))
    worker.swap(_pipeline("  - {type: tap, id: second}\n"))
    worker.swap(_pipeline("  - {type: tap, id: third}\n"))
    worker.stop()
    assert sorted(Tap.closed) == ["first", "second", "third"]


def test_a_job_runs_in_steps_between_live_batches_and_returns_its_value(
    store: Store, workers: list[PipelineWorker]
) -> None:
    worker = _start(
        workers, _pipeline("  - type: tap\n  - type: persist\n", store), batch_window=0.01
    )
    threads: list[str] = []

    def job() -> Any:
        for step in range(3):
            threads.append(threading.current_thread().name)
            for event in _events(100 + step, 1):
                worker.submit(event)  # live traffic arriving while the job runs
            yield
        return "done"

    assert worker.run_job(job()).result(WAIT) == "done"
    assert threads == ["rsproxy-pipeline"] * 3
    _wait_for(lambda: sorted(_stored_ns(store)) == [100, 101, 102], "the live events")


def test_a_failing_job_reports_through_its_future_and_the_worker_goes_on(
    store: Store, workers: list[PipelineWorker]
) -> None:
    worker = _start(workers, _pipeline("  - type: persist\n", store), batch_window=0.01)

    def job() -> Any:
        yield
        raise ValueError("bad entry")

    with pytest.raises(ValueError, match="bad entry"):
        worker.run_job(job()).result(WAIT)
    for event in _events(1, 2):
        worker.submit(event)
    _wait_for(lambda: sorted(_stored_ns(store)) == [1, 2], "events after the failed job")


def test_stopping_closes_a_pending_job_so_it_can_clean_up(workers: list[PipelineWorker]) -> None:
    worker = _start(workers, _pipeline("  - type: gate\n"), batch_window=0.01)
    worker.submit(_events(1, 1)[0])
    assert Gate.entered.wait(WAIT)  # the worker is busy: the job waits its turn
    started, cleaned = threading.Event(), threading.Event()

    def job() -> Any:
        try:
            while True:
                started.set()
                yield
        finally:
            cleaned.set()

    done = worker.run_job(job())
    Gate.release.set()
    assert started.wait(WAIT)
    worker.stop(timeout=WAIT)  # the job never ends by itself
    assert cleaned.is_set()
    with pytest.raises(DaemonError, match="stopped before the job finished"):
        done.result(WAIT)
    with pytest.raises(DaemonError, match="stopping"):
        worker.run_job(job()).result(WAIT)
