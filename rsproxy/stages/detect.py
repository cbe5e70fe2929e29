"""The ``detect`` stage: runs the issue detectors over every event and keeps the findings.

The detectors themselves (rsproxy/analysis/detectors.py) are plain, incremental and bounded;
this stage feeds them each batch and takes care of what a finding becomes:

* a row of the ``issues`` table, one per finding (detector + key), replaced as its count,
  last-seen time or evidence change: the changed findings are written at the end of a batch at
  most once a second, and with at most a twentieth of the time (a row costs DuckDB a few
  milliseconds, and a burst touches its finding on every event), and all that is pending in
  ``flush()``, when the pipeline idles;
* one ``issue`` event, emitted the first time a finding appears, so a timeline shows when it
  started. It goes on down the pipeline with the batch (``persist`` stores it); a finding born
  in ``flush()`` (a render cascade completed while the pipeline was idle) has no batch to ride
  on and is written to the store directly.

A pipeline reloaded mid-session starts a new stage: it picks up the session's stored findings
first, so counts go on and no ``issue`` event is emitted twice. The stage never raises for a
batch (the engine would replay the batch event by event, and the detectors would count twice):
an event a detector fails on is reported to the engine's failure sink, and a store write that
fails is logged and retried with the next one.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from pydantic import Field

from rsproxy.analysis.detectors import DetectorName, Detectors, Finding, Findings, Thresholds
from rsproxy.events import SOURCES, Event
from rsproxy.pipeline.stage import FailureSink, Stage, StageConfig, StageContext

log = logging.getLogger("rsproxy.stages.detect")

# Render reports of one page arrive together; a group untouched this long (wall clock) is
# complete, and is closed at the end of a batch rather than waiting for the pipeline to idle.
_RENDER_GROUP_SETTLE_MS = 1000.0
# While events stream in, the changed findings are written at most this often, and with at
# most a twentieth of the time (each row DuckDB replaces costs a few milliseconds, and a burst
# touches its finding on every event); everything pending is written when the pipeline idles.
_WRITE_INTERVAL_S = 1.0


class DetectConfig(StageConfig):
    thresholds: Thresholds = Field(
        default_factory=Thresholds,
        description="Limits of the detectors; a finding needs a value strictly above its limit.",
    )
    disable: list[DetectorName] = Field(
        default_factory=list, description="Detectors not to run, by name."
    )
    max_evidence: int = Field(
        default=20, gt=0, le=200, description="Event ids kept as evidence per finding."
    )


class Detect(Stage[DetectConfig]):
    """Find issues (failing, slow and N+1 requests, error spam, long tasks, poor vitals, store
    thrashing, wasted renders, slow and N+1 queries, ...) and keep them in the `issues` table."""

    name = "detect"
    config_model = DetectConfig
    example = """
- type: detect
  thresholds:
    slow_request_ms: 3000
    n_plus_one_requests: 5
    long_task_ms: 100
  disable: [select_star]
"""

    def __init__(self, config: DetectConfig, context: StageContext) -> None:
        super().__init__(config, context)
        self.findings = Findings(config.max_evidence)
        self.detectors = Detectors(
            config.thresholds,
            disabled=config.disable,
            max_evidence=config.max_evidence,
            findings=self.findings,
        )
        self._restored = False
        self._unwritten: dict[str, Finding] = {}  # changed findings not written yet
        self._write_at = 0.0  # when changed findings may be written again (monotonic s)
        self._unsent: list[Event] = []  # issue events born in flush() with no store to take them

    # ---- the pipeline's calls ---------------------------------------------------------------------

    def process(self, batch: list[Event], failed: FailureSink) -> list[Event]:
        self._restore()
        observe = self.detectors.observe
        dropped: set[int] | None = None
        for event in batch:
            try:
                observe(event)
            except Exception as exc:
                if not failed(event, exc):
                    dropped = dropped or set()
                    dropped.add(id(event))
        out = batch if dropped is None else [e for e in batch if id(e) not in dropped]
        try:
            self.detectors.finish(_RENDER_GROUP_SETTLE_MS, time.monotonic() * 1000)
        except Exception:
            log.exception("detect: closing render groups failed")
        issues = self._issue_events(self.findings.take_new())
        self._collect_changed()
        if time.monotonic() >= self._write_at:
            self._write()
        if self._unsent or issues:
            unsent, self._unsent = self._unsent, []
            out = [*out, *unsent, *issues]
        return out

    def flush(self) -> None:
        self._restore()
        self.detectors.finish()  # idle: every render report that was coming has come
        issues = self._issue_events(self.findings.take_new())
        store = self.context.store
        if issues:
            if store is None:
                self._unsent.extend(issues)
            else:
                try:
                    store.write_events(issues)
                except Exception:
                    log.exception("detect: could not store %d issue events", len(issues))
                    self._unsent.extend(issues)  # they go out with the next batch instead
        self._collect_changed()
        self._write()

    # ---- findings out -----------------------------------------------------------------------------

    def _issue_events(self, new: list[tuple[Finding, Event]]) -> list[Event]:
        out = []
        for finding, trigger in new:
            # A copy: the finding's details go on changing, the event is a snapshot.
            payload = json.loads(json.dumps(finding.data(), default=str))
            out.append(
                Event(
                    kind="issue",
                    data={
                        "issue_id": finding.id,
                        "detector": finding.detector,
                        "severity": finding.severity,
                        "title": finding.title,
                        "count": finding.count,
                        **payload,
                    },
                    source=trigger.source if trigger.source in SOURCES else "proxy",
                    ts=trigger.ts,
                    page_id=trigger.page_id,
                    session_id=self.context.session_id or trigger.session_id,
                    project=self.context.project or trigger.project,
                )
            )
        return out

    def _collect_changed(self) -> None:
        for finding in self.findings.take_changed():
            self._unwritten[finding.id] = finding

    def _write(self) -> None:
        """Write the findings that changed since the last write to the ``issues`` table."""
        store = self.context.store
        pending = self._unwritten
        if store is None:
            pending.clear()  # nowhere to write: unit tests, a store-less pipeline
            return
        if not pending:
            return
        rows: list[dict[str, Any]] = [f.row(self.context.session_id) for f in pending.values()]
        started = time.monotonic()
        try:
            store.replace_rows("issues", rows)
        except Exception:
            log.exception("detect: could not write %d issues; retrying later", len(rows))
            return
        pending.clear()
        # Writes take at most a twentieth of the time, however slow they turn out to be.
        self._write_at = started + max(_WRITE_INTERVAL_S, 20 * (time.monotonic() - started))

    def _restore(self) -> None:
        """Once, before the first batch (after any earlier pipeline has flushed): the findings
        this session already has."""
        if self._restored:
            return
        self._restored = True
        store = self.context.store
        if store is None:
            return
        try:
            rows = store.query(
                "SELECT * FROM issues WHERE session_id = ?", [self.context.session_id]
            )
            self.findings.restore(Finding.from_row(r, self.config.max_evidence) for r in rows)
        except Exception:
            log.exception("detect: could not read this session's stored issues")
