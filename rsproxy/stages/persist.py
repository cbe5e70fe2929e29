"""The ``persist`` stage: writes each batch to the project's DuckDB store in one transaction.

Persist is usually the last stage, after ``redact``, so only redacted events reach the disk. It
passes events on unchanged, so stages placed after it still see them. The store itself belongs
to the runtime (one per daemon or replay), not to the stage, so a hot reload of the pipeline does
not reopen the database.

Writes reach DuckDB's write-ahead log at once; persist folds the log into the file
(a checkpoint) once writes pause for ``checkpoint_quiet_s``, and DuckDB does so itself when a
long burst fills the log (``rsproxy.store.CHECKPOINT_THRESHOLD``).

When the ``normalize`` stage refines URL templates, the events that show it carry
``template_refined_from`` (the templates folded into their ``path_template``) and, on the event
that caused the fold, ``template_refinements`` (every new template with the old ones folded into
it); right after writing the batch, persist points the session's stored ``http`` rows with old
templates at the new ones, so stored events always name the current template.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from pydantic import Field

from rsproxy.events import Event
from rsproxy.pipeline.stage import FailureSink, Stage, StageConfig
from rsproxy.store import Store

log = logging.getLogger("rsproxy.persist")


class PersistConfig(StageConfig):
    exclude_kinds: list[str] = Field(
        default_factory=list,
        description="Event kinds not to store (they still pass on to later stages).",
    )
    checkpoint_quiet_s: float = Field(
        default=2.0,
        gt=0,
        description=(
            "Once nothing has been written for this many seconds, fold the write-ahead log into "
            "the file, so a store between bursts opens at once and holds no uncompressed writes."
        ),
    )


class Persist(Stage[PersistConfig]):
    """Store events in the project's DuckDB file: typed tables for hot kinds, `events` for all."""

    name = "persist"
    config_model = PersistConfig
    example = """
- type: persist
  exclude_kinds: [dom_mutation]
"""

    def flush(self) -> None:
        # The worker calls this whenever it is idle; the store checkpoints only after a pause.
        store = self.context.store
        if store is not None:
            store.checkpoint_when_quiet(self.config.checkpoint_quiet_s)

    def process(self, batch: list[Event], failed: FailureSink) -> list[Event]:
        store = self.context.store
        if store is None:
            raise RuntimeError(
                "the persist stage needs a store, and this pipeline runs without one"
            )
        excluded = self.config.exclude_kinds
        store.write_events([e for e in batch if e.kind not in excluded] if excluded else batch)
        for event in batch:
            data = event.data
            if "template_refined_from" in data or "template_refinements" in data:
                self._rewrite_templates(store, event)
        return batch

    @staticmethod
    def _rewrite_templates(store: Store, event: Event) -> None:
        data = event.data
        folds: dict[str, set[str]] = {}
        refinements = data.get("template_refinements")
        if isinstance(refinements, dict):
            for new, old in refinements.items():
                if isinstance(new, str) and isinstance(old, list):
                    folds.setdefault(new, set()).update(o for o in old if isinstance(o, str))
        new, old = data.get("path_template"), data.get("template_refined_from")
        if isinstance(new, str) and isinstance(old, list):
            folds.setdefault(new, set()).update(o for o in old if isinstance(o, str))
        method = data.get("method") or "GET"
        try:
            if data.get("service") == "app":  # the app's templates are learned across its origins
                scope: dict[str, str] = {"service": "app"}
            else:
                host = data.get("host") if event.kind == "http" else urlsplit(data["url"]).hostname
                scope = {"host": host or ""}
            for new_template, old_templates in folds.items():
                store.rewrite_path_templates(
                    event.session_id, method, sorted(old_templates), new_template, **scope
                )
        except Exception:
            # The batch is already written: raising now would make the engine write it again.
            log.exception("persist: could not rewrite templates %s", folds)
