"""What a pipeline stage is: a name, a typed config model, a docstring, an example, and a class.

A stage sees events in batches. Most stages only implement ``handle(event)`` and let the base
class loop; a stage that gains from seeing the whole batch at once (``persist`` writes it in one
transaction) overrides ``process``. Either way the stage never deals with failures of other
stages: the engine isolates them (see ``engine.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from rsproxy.events import Event

if TYPE_CHECKING:
    from rsproxy.store import Store

OnError = Literal["continue", "drop", "dead_letter"]


class StageConfig(BaseModel):
    """Keys every stage accepts; a stage's own config model adds its keys to these."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = Field(
        default=None, description="Name used in logs and errors; defaults to the stage type."
    )
    on_error: OnError = Field(
        default="continue",
        description=(
            "What happens to an event this stage fails on: continue (pass it on unchanged), "
            "drop it, or dead_letter (keep it in the store's dead_letters table)."
        ),
    )


ConfigT = TypeVar("ConfigT", bound=StageConfig)

# Called by a stage when it fails on one event; returns True when the event should go on.
FailureSink = Callable[[Event, BaseException], bool]


@dataclass
class StageContext:
    """What the runtime hands every stage: where it runs and the store, when there is one."""

    project: str
    session_id: str
    store: Store | None = None


class Stage(Generic[ConfigT]):
    """Base class. Subclasses set ``name``, ``config_model`` and ``example`` and have a docstring."""

    name: ClassVar[str]
    config_model: ClassVar[type[StageConfig]] = StageConfig
    example: ClassVar[str]  # a YAML list item showing the stage with its useful keys

    def __init__(self, config: ConfigT, context: StageContext) -> None:
        self.config = config
        self.context = context

    def handle(self, event: Event) -> Event | None:
        """Return the event (changed or not) to pass it on, or None to drop it."""
        return event

    def process(self, batch: list[Event], failed: FailureSink) -> list[Event]:
        out: list[Event] = []
        append = out.append
        handle = self.handle
        for event in batch:
            try:
                result = handle(event)
            except Exception as exc:
                if failed(event, exc):
                    append(event)
                continue
            if result is not None:
                append(result)
        return out

    def flush(self) -> None:
        """Write out anything buffered. Called when the worker is idle and before close."""

    def close(self) -> None:
        """Release resources; the stage is not used afterwards."""

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Name, description, config schema and example, as `rsproxy pipeline stages` prints them."""
        doc = (cls.__doc__ or "").strip()
        return {
            "name": cls.name,
            # The first paragraph, unwrapped: a summary sentence may run over two lines.
            "summary": " ".join(doc.split("\n\n", 1)[0].split()),
            "description": doc,
            "config_schema": cls.config_model.model_json_schema(),
            "example": cls.example.strip(),
        }
