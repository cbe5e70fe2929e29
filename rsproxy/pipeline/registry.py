"""The stage registry: built-in stages and third-party ones from the ``rsproxy.stages`` entry points.

Built-ins register through the same ``register`` call third-party stages go through, so there is
one path and one set of checks (a name taken twice is refused, a class must look like a stage).
A third-party entry point that fails to import does not make rsproxy unusable: the failure is kept
and reported when a pipeline asks for that stage by name.
"""

from __future__ import annotations

import importlib.metadata
from functools import cache

from rsproxy.errors import StageRegistryError
from rsproxy.pipeline.stage import Stage, StageConfig

ENTRY_POINT_GROUP = "rsproxy.stages"


class StageRegistry:
    def __init__(self) -> None:
        self._stages: dict[str, type[Stage]] = {}
        self.broken: dict[str, str] = {}  # entry point name -> why it failed to load

    def register(self, cls: type[Stage], *, origin: str = "built-in") -> type[Stage]:
        if not (isinstance(cls, type) and issubclass(cls, Stage)):
            raise StageRegistryError(f"{cls!r} ({origin}) is not a subclass of rsproxy's Stage")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise StageRegistryError(f"{cls!r} ({origin}) has no `name`; a stage needs one")
        if name in self._stages:
            raise StageRegistryError(
                f"stage name {name!r} ({origin}, {cls.__module__}.{cls.__qualname__}) is already "
                f"registered by {self._stages[name].__module__}.{self._stages[name].__qualname__}"
            )
        config_model = getattr(cls, "config_model", None)
        if not (isinstance(config_model, type) and issubclass(config_model, StageConfig)):
            raise StageRegistryError(f"stage {name!r}: config_model must subclass StageConfig")
        if not isinstance(getattr(cls, "example", None), str):
            raise StageRegistryError(f"stage {name!r}: needs an `example` YAML string")
        self._stages[name] = cls
        return cls

    def get(self, name: str) -> type[Stage] | None:
        return self._stages.get(name)

    def names(self) -> list[str]:
        return sorted(self._stages)

    def load_entry_points(self) -> None:
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                cls = entry.load()
            except Exception as exc:
                self.broken[entry.name] = f"entry point {entry.value} failed to load: {exc}"
                continue
            try:
                self.register(cls, origin=f"entry point {entry.value}")
            except StageRegistryError as exc:
                self.broken[entry.name] = str(exc)


@cache
def default_registry() -> StageRegistry:
    from rsproxy.stages import BUILTIN_STAGES

    registry = StageRegistry()
    for cls in BUILTIN_STAGES:
        registry.register(cls)
    registry.load_entry_points()
    return registry
