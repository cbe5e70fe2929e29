"""The pipeline worker: a bounded queue drained by one thread that runs the pipeline in batches.

The proxy's event loop only ever calls ``submit``, which never blocks: when the queue is full the
event is counted as dropped (the count shows in ``rsproxy status`` and the MCP session info) and
traffic goes on. The worker gathers events for at most ``batch_window`` seconds (or
``batch_size`` events), runs them through the pipeline and, since ``persist`` is a stage, writes
them to the store: a killed daemon loses at most one batch window. The worker is the store's only
writer. A new pipeline (hot reload) is swapped in between two batches.

Other writes the daemon is asked for (``rsproxy replay`` while it runs) come as *jobs*:
generators whose every step is a slice of work (a replayed batch), run on this thread between
live batches so the store keeps a single writer and live capture never waits for a whole file.
``run_job`` returns a future of the generator's return value.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Generator
from concurrent.futures import Future
from typing import Any

from rsproxy.errors import DaemonError
from rsproxy.events import Event
from rsproxy.pipeline.engine import Pipeline

Job = Generator[None, None, Any]

log = logging.getLogger("rsproxy.worker")

_BUSY_SWITCH_INTERVAL = 0.0005  # seconds


class PipelineWorker:
    def __init__(
        self,
        pipeline: Pipeline,
        *,
        maxsize: int = 100_000,
        batch_size: int = 5_000,
        batch_window: float = 0.5,
    ) -> None:
        self._queue: queue.Queue[Event] = queue.Queue(maxsize=maxsize)
        self._pipeline = pipeline
        self._next_pipeline: Pipeline | None = None
        self._batch_size = batch_size
        self._batch_window = batch_window
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rsproxy-pipeline", daemon=True)
        self._drop_lock = threading.Lock()
        self._swap_lock = threading.Lock()
        self._stopped = False
        self._jobs: deque[tuple[Job, Future[Any]]] = deque()
        self.dropped = 0
        self.processed = 0
        self.batches = 0
        self.last_batch_ms: float | None = None

    @property
    def pipeline(self) -> Pipeline:
        return self._next_pipeline or self._pipeline

    def start(self) -> None:
        self._thread.start()

    def submit(self, event: Event) -> bool:
        """Queue an event without ever blocking; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(event)
            return True
        except queue.Full:
            with self._drop_lock:
                self.dropped += 1
            return False

    def swap(self, pipeline: Pipeline) -> None:
        """Use ``pipeline`` from the next batch on; the old one is flushed and closed by the worker."""
        with self._swap_lock:
            pending, self._next_pipeline = self._next_pipeline, pipeline
        if pending is not None:
            pending.close()  # superseded before it ever ran

    def run_job(self, job: Job) -> Future[Any]:
        """Run ``job`` on the worker thread, one step between live batches; the future holds
        its return value, or the exception it raised."""
        done: Future[Any] = Future()
        if self._stopped or self._stop.is_set():
            job.close()
            done.set_exception(DaemonError("the daemon is stopping; try again once it runs"))
        else:
            self._jobs.append((job, done))
        return done

    def stop(self, timeout: float = 30.0) -> None:
        """Process everything queued, flush and close the pipeline, and end the thread."""
        if self._stopped:
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        else:
            self._drain_now()
        self._stopped = True

    def stats(self) -> dict[str, Any]:
        return {
            "queued": self._queue.qsize(),
            "capacity": self._queue.maxsize,
            "dropped": self.dropped,
            "processed": self.processed,
            "batches": self.batches,
            "last_batch_ms": self.last_batch_ms,
            "stages": self.pipeline.stats(),
        }

    # ---- the thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            busy = bool(self._jobs)
            batch = self._gather(wait=not busy)
            self._apply_swap()
            if batch:
                self._run_batch(batch)
            elif not busy:
                self._pipeline.flush()
            if busy:
                self._step_job()
        self._drain_now()

    def _drain_now(self) -> None:
        self._apply_swap()
        while True:
            batch = self._take(self._batch_size)
            if not batch:
                break
            self._run_batch(batch)
        self._pipeline.close()
        while self._jobs:
            job, done = self._jobs.popleft()
            job.close()  # the job's own cleanup runs (a replay rolls its session back)
            done.set_exception(DaemonError("the daemon stopped before the job finished"))

    def _step_job(self) -> None:
        job, done = self._jobs[0]
        try:
            next(job)
        except StopIteration as finished:
            self._jobs.popleft()
            done.set_result(finished.value)
        except Exception as exc:  # the job failed; it reports through its future
            self._jobs.popleft()
            done.set_exception(exc)

    def _gather(self, wait: bool = True) -> list[Event]:
        try:
            first = self._queue.get(timeout=0.25) if wait else self._queue.get_nowait()
        except queue.Empty:
            return []
        # Sleep through the batch window instead of waking for every event: each wake-up would
        # take the GIL from the proxy's event loop, which costs it far more than the event.
        # The stop event doubles as an interruptible sleep. With a job to step, take what is
        # there: the job's own step is the pause.
        if wait and self._queue.qsize() < self._batch_size:
            self._stop.wait(self._batch_window)
        return [first, *self._take(self._batch_size - 1)]

    def _take(self, n: int) -> list[Event]:
        out: list[Event] = []
        get = self._queue.get_nowait
        try:
            while len(out) < n:
                out.append(get())
        except queue.Empty:
            pass
        return out

    def _run_batch(self, batch: list[Event]) -> None:
        # While this thread crunches a batch it competes for the GIL with the proxy's event
        # loop, which gives the GIL up at every socket call and then waits a whole switch
        # interval (5 ms by default) to get it back. A short interval for the length of the
        # batch keeps the proxy responsive; the default returns when the worker is idle.
        default_interval = sys.getswitchinterval()
        sys.setswitchinterval(_BUSY_SWITCH_INTERVAL)
        try:
            self._pipeline.run(batch)
        except Exception:  # the engine isolates stages; this is a last line of defence
            log.exception("pipeline failed on a batch of %d events", len(batch))
        finally:
            sys.setswitchinterval(default_interval)
        self.processed += len(batch)
        self.batches += 1
        self.last_batch_ms = time.time() * 1000

    def _apply_swap(self) -> None:
        with self._swap_lock:
            nxt, self._next_pipeline = self._next_pipeline, None
        if nxt is not None and nxt is not self._pipeline:
            old, self._pipeline = self._pipeline, nxt
            old.close()
            log.info("pipeline reloaded: %s", ", ".join(nxt.stage_ids))
