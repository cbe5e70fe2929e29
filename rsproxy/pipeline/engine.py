"""Running a batch of events through the stages of a spec, with each stage's failures isolated.

A stage that raises never takes the pipeline down. When a stage fails on an event, the error is
counted and logged with the stage id, and the stage's ``on_error`` decides the event's fate:
``continue`` passes it on unchanged, ``drop`` discards it, ``dead_letter`` keeps it in the store.
If a stage that processes whole batches raises for the batch, the engine replays that batch one
event at a time through it to find out which events it really fails on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from rsproxy.events import Event
from rsproxy.pipeline.spec import PipelineSpec, StageSpec
from rsproxy.pipeline.stage import FailureSink, Stage, StageContext

log = logging.getLogger("rsproxy.pipeline")

# Tracebacks are logged for the first few failures of a stage only; after that they are counted.
_LOGGED_FAILURES_PER_STAGE = 5


@dataclass
class StageStats:
    events_in: int = 0
    events_out: int = 0
    errors: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "events_in": self.events_in,
            "events_out": self.events_out,
            "errors": self.errors,
            "last_error": self.last_error,
        }


@dataclass
class _Running:
    spec: StageSpec
    stage: Stage
    stats: StageStats = field(default_factory=StageStats)


class Pipeline:
    """Stages built from a spec, ready to run batches. Not thread-safe: one worker drives it."""

    def __init__(self, spec: PipelineSpec, context: StageContext) -> None:
        self.spec = spec
        self.context = context
        self._stages = [_Running(s, s.cls(s.config, context)) for s in spec.stages]
        self._dead_letters: list[tuple[float, str, str, str, Event]] = []

    @property
    def stage_ids(self) -> list[str]:
        return [r.spec.id for r in self._stages]

    def stats(self) -> dict[str, dict[str, Any]]:
        return {r.spec.id: r.stats.as_dict() for r in self._stages}

    def run(self, batch: list[Event]) -> list[Event]:
        for running in self._stages:
            if not batch:
                break
            running.stats.events_in += len(batch)
            batch = self._attempt(running, batch)
            running.stats.events_out += len(batch)
        self._write_dead_letters()
        return batch

    def _attempt(self, running: _Running, batch: list[Event]) -> list[Event]:
        # Failures reported during a batch attempt count only if the attempt completes;
        # otherwise the one-at-a-time replay reports them again.
        reported: list[tuple[Event, BaseException]] = []
        keep = running.spec.config.on_error == "continue"

        def failed(event: Event, exc: BaseException) -> bool:
            reported.append((event, exc))
            return keep

        try:
            out = running.stage.process(batch, failed)
        except Exception as exc:
            log.warning(
                "stage %s failed on a batch of %d events (%s: %s); retrying them one by one",
                running.spec.id,
                len(batch),
                type(exc).__name__,
                exc,
            )
            return self._one_at_a_time(running, batch)
        record = self._failure_sink(running)
        for event, error in reported:
            record(event, error)
        return out

    def _one_at_a_time(self, running: _Running, batch: list[Event]) -> list[Event]:
        failed = self._failure_sink(running)
        out: list[Event] = []
        for event in batch:
            try:
                out.extend(running.stage.process([event], failed))
            except Exception as exc:
                if failed(event, exc):
                    out.append(event)
        return out

    def _failure_sink(self, running: _Running) -> FailureSink:
        def failed(event: Event, exc: BaseException) -> bool:
            stats = running.stats
            stats.errors += 1
            stats.last_error = f"{type(exc).__name__}: {exc}"
            stage_id = running.spec.id
            if stats.errors <= _LOGGED_FAILURES_PER_STAGE:
                log.error(
                    "stage %s failed on %s event %s: %s",
                    stage_id,
                    event.kind,
                    event.id,
                    stats.last_error,
                    exc_info=exc,
                )
            policy = running.spec.config.on_error
            if policy == "dead_letter":
                self._dead_letters.append(
                    (time.time() * 1000, event.session_id, stage_id, stats.last_error, event)
                )
                return False
            return policy == "continue"

        return failed

    def _write_dead_letters(self) -> None:
        if not self._dead_letters:
            return
        rows, self._dead_letters = self._dead_letters, []
        store = self.context.store
        if store is None:
            log.warning("%d dead-lettered events dropped: this pipeline has no store", len(rows))
            return
        try:
            store.write_dead_letters(rows)
        except Exception:
            log.exception("could not write %d dead-lettered events", len(rows))

    def flush(self) -> None:
        for running in self._stages:
            try:
                running.stage.flush()
            except Exception:
                log.exception("stage %s failed to flush", running.spec.id)

    def close(self) -> None:
        self.flush()
        for running in self._stages:
            try:
                running.stage.close()
            except Exception:
                log.exception("stage %s failed to close", running.spec.id)
