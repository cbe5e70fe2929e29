"""The ``persist`` stage: writes each batch to the project's DuckDB store in one transaction.

Persist is usually the last stage, after ``redact``, so only redacted events reach the disk. It
passes events on unchanged, so stages placed after it still see them. The store itself belongs
to the runtime (one per daemon or replay), not to the stage, so a hot reload of the pipeline does
not reopen the database.
"""

from __future__ import annotations

from pydantic import Field

from rsproxy.events import Event
from rsproxy.pipeline.stage import FailureSink, Stage, StageConfig


class PersistConfig(StageConfig):
    exclude_kinds: list[str] = Field(
        default_factory=list,
        description="Event kinds not to store (they still pass on to later stages).",
    )


class Persist(Stage[PersistConfig]):
    """Store events in the project's DuckDB file: typed tables for hot kinds, `events` for all."""

    name = "persist"
    config_model = PersistConfig
    example = """
- type: persist
  exclude_kinds: [dom_mutation]
"""

    def process(self, batch: list[Event], failed: FailureSink) -> list[Event]:
        store = self.context.store
        if store is None:
            raise RuntimeError(
                "the persist stage needs a store, and this pipeline runs without one"
            )
        excluded = self.config.exclude_kinds
        store.write_events([e for e in batch if e.kind not in excluded] if excluded else batch)
        return batch
