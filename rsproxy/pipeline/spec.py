"""Reading and validating a pipeline file into a ``PipelineSpec``.

Validation never stops at the first problem: it walks the whole file and reports every problem
with its place (``stages[2] (detect), line 14: thresholds.slow_request_ms: must be > 0``), the
nearest known stage name for a typo, and the valid keys for an unknown one. A spec that comes out
of ``load_spec`` is known good; building stages from it cannot fail on configuration.
"""

from __future__ import annotations

import builtins
import difflib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rsproxy.errors import PipelineLoadError, PipelineValidationError, Problem
from rsproxy.pipeline.registry import StageRegistry, default_registry
from rsproxy.pipeline.stage import Stage, StageConfig

SUPPORTED_VERSIONS = (1,)
_TOP_LEVEL_KEYS = ("version", "stages")


@dataclass(frozen=True)
class StageSpec:
    index: int
    type: str
    id: str
    cls: builtins.type[Stage]
    config: StageConfig


@dataclass(frozen=True)
class PipelineSpec:
    source: str  # the file it came from, or a label such as "<default>"
    version: int
    stages: tuple[StageSpec, ...]

    def stage_types(self) -> list[str]:
        return [s.type for s in self.stages]


def default_pipeline_path() -> Path:
    return Path(str(resources.files("rsproxy.pipelines").joinpath("default.yaml")))


def load_spec(path: Path, registry: StageRegistry | None = None) -> PipelineSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PipelineLoadError(f"pipeline file not found: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineLoadError(f"cannot read pipeline file {path}: {exc}") from exc
    return parse_spec(text, str(path), registry)


def parse_spec(text: str, source: str, registry: StageRegistry | None = None) -> PipelineSpec:
    registry = registry or default_registry()
    try:
        root_node = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PipelineLoadError(f"{source}: not valid YAML{where}: {problem}") from exc

    problems: list[Problem] = []
    if not isinstance(document, dict):
        got = "an empty file" if document is None else f"a {type(document).__name__}"
        raise PipelineValidationError(
            source,
            [Problem("", f"expected a mapping with `version: 1` and a `stages:` list, got {got}")],
        )

    for key in document:
        if key not in _TOP_LEVEL_KEYS:
            problems.append(Problem(str(key), _unknown_key(str(key), _TOP_LEVEL_KEYS)))

    version = document.get("version")
    if version is None:
        problems.append(Problem("version", "missing; add `version: 1` at the top"))
    elif isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
        problems.append(
            Problem("version", f"unsupported version {version!r}; supported: {SUPPORTED_VERSIONS}")
        )

    raw_stages = document.get("stages")
    stages: list[StageSpec] = []
    if raw_stages is None:
        problems.append(
            Problem("stages", "missing; list the stages, e.g. `stages: [{type: persist}]`")
        )
    elif not isinstance(raw_stages, list) or not raw_stages:
        problems.append(Problem("stages", "must be a non-empty list of stages"))
    else:
        lines = _stage_lines(root_node)
        for index, raw in enumerate(raw_stages):
            spec = _check_stage(index, raw, lines.get(index), registry, problems)
            if spec is not None:
                stages.append(spec)
        _check_unique_ids(stages, problems, lines)

    if problems:
        raise PipelineValidationError(source, problems)
    return PipelineSpec(source=source, version=int(version), stages=tuple(stages))  # type: ignore[arg-type]


def _stage_lines(root: yaml.Node | None) -> dict[int, int]:
    """Line number (1-based) of each stage entry, for error messages."""
    if not isinstance(root, yaml.MappingNode):
        return {}
    for key, value in root.value:
        if getattr(key, "value", None) == "stages" and isinstance(value, yaml.SequenceNode):
            return {i: item.start_mark.line + 1 for i, item in enumerate(value.value)}
    return {}


def _check_stage(
    index: int,
    raw: Any,
    line: int | None,
    registry: StageRegistry,
    problems: list[Problem],
) -> StageSpec | None:
    at_line = f", line {line}" if line else ""
    if not isinstance(raw, dict):
        problems.append(
            Problem(f"stages[{index}]{at_line}", "each stage must be a mapping with a `type` key")
        )
        return None
    stage_type = raw.get("type")
    where = (
        f"stages[{index}] ({stage_type}){at_line}" if stage_type else f"stages[{index}]{at_line}"
    )
    if not isinstance(stage_type, str) or not stage_type:
        problems.append(
            Problem(where, f"missing `type`; known stages: {', '.join(registry.names())}")
        )
        return None
    cls = registry.get(stage_type)
    if cls is None:
        problems.append(Problem(where, _unknown_stage(stage_type, registry)))
        return None
    settings = {k: v for k, v in raw.items() if k != "type"}
    try:
        config = cls.config_model.model_validate(settings)
    except ValidationError as exc:
        fields = list(cls.config_model.model_fields)
        for error in exc.errors():
            problems.append(Problem(where, _describe_error(error, fields)))
        return None
    return StageSpec(
        index=index, type=stage_type, id=config.id or stage_type, cls=cls, config=config
    )


def _check_unique_ids(
    stages: list[StageSpec], problems: list[Problem], lines: dict[int, int]
) -> None:
    """Two stages of one type need distinct ids, or their errors and counters could not be told apart."""
    seen: dict[str, int] = {}
    for spec in stages:
        if spec.id in seen:
            problems.append(
                Problem(
                    f"stages[{spec.index}] ({spec.type})"
                    + (f", line {lines[spec.index]}" if spec.index in lines else ""),
                    f"id {spec.id!r} is already used by stages[{seen[spec.id]}]; give one an `id:`",
                )
            )
        else:
            seen[spec.id] = spec.index


def _unknown_stage(name: str, registry: StageRegistry) -> str:
    if name in registry.broken:
        return f"stage {name!r} is installed but unusable: {registry.broken[name]}"
    close = difflib.get_close_matches(name, registry.names(), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown stage type {name!r}; {hint}known stages: {', '.join(registry.names())}"


def _unknown_key(key: str, valid: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key; {hint}valid keys: {', '.join(valid)}"


def _describe_error(error: Any, fields: list[str]) -> str:
    """Turn one pydantic error into words: where in the stage's config, and what is valid."""
    loc = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "extra_forbidden":
        parent_fields = fields if len(error["loc"]) == 1 else []
        return f"{loc}: " + (
            _unknown_key(str(error["loc"][-1]), parent_fields) if parent_fields else "unknown key"
        )
    messages = {
        "missing": "required",
        "greater_than": f"must be > {ctx.get('gt')}",
        "greater_than_equal": f"must be >= {ctx.get('ge')}",
        "less_than": f"must be < {ctx.get('lt')}",
        "less_than_equal": f"must be <= {ctx.get('le')}",
        "literal_error": f"must be one of {ctx.get('expected')}, got {value!r}",
    }
    text = messages.get(kind) or f"{error['msg'][0].lower()}{error['msg'][1:]}, got {value!r}"
    return f"{loc}: {text}" if loc else text
