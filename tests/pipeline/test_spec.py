"""Reading and validating pipeline files (rsproxy/pipeline/spec.py).

Validation must report every problem in one go, each with its place (``stages[i] (type), line
N``), suggest the nearest stage name for a typo, list the valid keys for an unknown one, and turn
unreadable or non-YAML files into ``PipelineLoadError``. The tests use a registry of their own
holding the built-in stages plus a ``detect``-like stage with bounded, nested settings.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from rsproxy.errors import PipelineLoadError, PipelineValidationError, Problem
from rsproxy.pipeline.registry import StageRegistry
from rsproxy.pipeline.spec import default_pipeline_path, load_spec, parse_spec
from rsproxy.pipeline.stage import Stage, StageConfig
from rsproxy.stages.persist import Persist, PersistConfig
from rsproxy.stages.redact import Redact, RedactConfig


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    slow_request_ms: int = Field(default=1_000, gt=0)
    error_rate: float = Field(default=0.05, ge=0, le=1)


class DetectConfig(StageConfig):
    thresholds: Thresholds = Field(default_factory=Thresholds)
    max_issues: int = Field(default=100, ge=1, le=10_000)


class Detect(Stage[DetectConfig]):
    """A stand-in detector with bounded settings, for validation tests."""

    name = "detect"
    config_model = DetectConfig
    example = "- type: detect\n  thresholds: {slow_request_ms: 500}\n"


@pytest.fixture
def registry() -> StageRegistry:
    r = StageRegistry()
    for cls in (Redact, Persist, Detect):
        r.register(cls)
    return r


def _problems(text: str, registry: StageRegistry) -> list[Problem]:
    with pytest.raises(PipelineValidationError) as info:
        parse_spec(text, "pipe.yaml", registry)
    assert info.value.source == "pipe.yaml"
    return info.value.problems


def _only(text: str, registry: StageRegistry) -> Problem:
    problems = _problems(text, registry)
    assert len(problems) == 1, problems
    return problems[0]


# ---- valid files ------------------------------------------------------------------------------------


def test_the_default_pipeline_loads() -> None:
    path = default_pipeline_path()
    assert path.is_file()
    spec = load_spec(path)
    assert spec.version == 1
    assert spec.source == str(path)
    assert spec.stage_types()[0] == "redact"
    assert spec.stage_types()[-1] == "persist"
    redact = spec.stages[0]
    assert redact.cls is Redact
    assert isinstance(redact.config, RedactConfig)
    assert "authorization" in redact.config.headers
    assert "password" in redact.config.body_keys
    assert [s.index for s in spec.stages] == list(range(len(spec.stages)))


def test_a_valid_file_becomes_typed_configs(registry: StageRegistry) -> None:
    spec = parse_spec(
        """
version: 1
stages:
  - type: redact
    replacement: "***"
  - type: detect
    id: strict-detect
    on_error: dead_letter
    thresholds:
      slow_request_ms: 250
  - type: persist
    exclude_kinds: [dom_mutation]
""",
        "pipe.yaml",
        registry,
    )
    assert spec.stage_types() == ["redact", "detect", "persist"]
    assert [s.id for s in spec.stages] == ["redact", "strict-detect", "persist"]
    detect = spec.stages[1]
    assert isinstance(detect.config, DetectConfig)
    assert detect.config.thresholds.slow_request_ms == 250
    assert detect.config.thresholds.error_rate == 0.05
    assert detect.config.on_error == "dead_letter"
    assert isinstance(spec.stages[2].config, PersistConfig)
    assert spec.stages[2].config.exclude_kinds == ["dom_mutation"]


def test_two_stages_of_one_type_with_distinct_ids(registry: StageRegistry) -> None:
    spec = parse_spec(
        "version: 1\nstages:\n  - {type: persist, id: one}\n  - {type: persist, id: two}\n",
        "pipe.yaml",
        registry,
    )
    assert [s.id for s in spec.stages] == ["one", "two"]


# ---- files that cannot be read ----------------------------------------------------------------------


def test_a_missing_file_is_a_load_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PipelineLoadError, match="not found") as info:
        load_spec(missing)
    assert str(missing) in str(info.value)


def test_a_directory_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(PipelineLoadError, match="cannot read"):
        load_spec(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.yaml"
    path.write_text("version: 1\nstages: [{type: persist}]\n")
    path.chmod(0)
    with pytest.raises(PipelineLoadError, match="cannot read"):
        load_spec(path)


def test_a_path_through_a_file_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    with pytest.raises(PipelineLoadError, match="cannot read"):
        load_spec(tmp_path / "plain" / "pipe.yaml")


def test_a_file_that_is_not_utf8_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\n# caf\xe9\nstages: [{type: persist}]\n")
    with pytest.raises(PipelineLoadError, match="cannot read"):
        load_spec(path)


def test_invalid_yaml_reports_line_and_column(registry: StageRegistry) -> None:
    text = "version: 1\nstages:\n  - type: redact\n    headers: [authorization\n  - type: persist\n"
    with pytest.raises(PipelineLoadError) as info:
        parse_spec(text, "pipe.yaml", registry)
    message = str(info.value)
    assert message.startswith("pipe.yaml: not valid YAML at line ")
    match = re.search(r"line (\d+), column (\d+)", message)
    assert match is not None
    assert int(match.group(1)) in (4, 5)


def test_tab_indentation_reports_its_place(registry: StageRegistry) -> None:
    with pytest.raises(PipelineLoadError, match=r"line 3, column 1"):
        parse_spec("version: 1\nstages:\n\t- type: persist\n", "pipe.yaml", registry)


@pytest.mark.parametrize(
    ("text", "got"), [("", "an empty file"), ("- type: persist\n", "a list"), ("42\n", "a int")]
)
def test_a_document_that_is_not_a_mapping(registry: StageRegistry, text: str, got: str) -> None:
    problem = _only(text, registry)
    assert got in problem.message
    assert "version: 1" in problem.message


# ---- top level --------------------------------------------------------------------------------------


def test_missing_version_and_stages(registry: StageRegistry) -> None:
    problems = _problems("# nothing but a comment\nname: mine\n", registry)
    by_place = {p.where: p.message for p in problems}
    assert set(by_place) == {"name", "version", "stages"}
    assert "version: 1" in by_place["version"]
    assert "missing" in by_place["stages"]


def test_unsupported_version(registry: StageRegistry) -> None:
    problem = _only("version: 2\nstages: [{type: persist}]\n", registry)
    assert problem.where == "version"
    assert "unsupported version 2" in problem.message


@pytest.mark.parametrize("stages", ["[]", "persist", "{type: persist}"])
def test_stages_must_be_a_non_empty_list(registry: StageRegistry, stages: str) -> None:
    problem = _only(f"version: 1\nstages: {stages}\n", registry)
    assert problem.where == "stages"
    assert "non-empty list" in problem.message


def test_unknown_top_level_key_suggests_and_lists(registry: StageRegistry) -> None:
    problem = _only("version: 1\nstage: []\nstages: [{type: persist}]\n", registry)
    assert problem.where == "stage"
    assert "did you mean 'stages'?" in problem.message
    assert "valid keys: version, stages" in problem.message


def test_boolean_version_is_refused(registry: StageRegistry) -> None:
    _only("version: true\nstages: [{type: persist}]\n", registry)


# ---- stages ------------------------------------------------------------------------------------------


def test_unknown_stage_suggests_the_nearest_and_lists_all(registry: StageRegistry) -> None:
    problem = _only("version: 1\nstages:\n  - type: redcat\n  - type: persist\n", registry)
    assert problem.where == "stages[0] (redcat), line 3"
    assert "unknown stage type 'redcat'" in problem.message
    assert "did you mean 'redact'?" in problem.message
    assert "known stages: detect, persist, redact" in problem.message


def test_unknown_stage_without_a_near_name(registry: StageRegistry) -> None:
    problem = _only("version: 1\nstages:\n  - type: zzzzzz\n", registry)
    assert "did you mean" not in problem.message
    assert "known stages: detect, persist, redact" in problem.message


@pytest.mark.parametrize("stage", ["{id: x}", "{type: ''}", "{type: 3}", "persist", "[persist]"])
def test_a_stage_without_a_usable_type(registry: StageRegistry, stage: str) -> None:
    problem = _only(f"version: 1\nstages:\n  - {stage}\n", registry)
    assert problem.where.startswith("stages[0]")
    assert problem.where.endswith(", line 3")
    assert "type" in problem.message


def test_unknown_config_key_lists_valid_keys(registry: StageRegistry) -> None:
    problem = _only("version: 1\nstages:\n  - type: redact\n    header: [x-token]\n", registry)
    assert problem.where == "stages[0] (redact), line 3"
    assert problem.message.startswith("header: unknown key; did you mean 'headers'?")
    for key in ("id", "on_error", "headers", "body_keys", "query_params", "replacement"):
        assert key in problem.message.split("valid keys:")[1]


def test_unknown_nested_key_is_named_with_its_path(registry: StageRegistry) -> None:
    problem = _only(
        "version: 1\nstages:\n  - type: detect\n    thresholds: {slow_requst_ms: 5}\n", registry
    )
    assert problem.where == "stages[0] (detect), line 3"
    assert problem.message.startswith("thresholds.slow_requst_ms: unknown key")


def test_wrong_type(registry: StageRegistry) -> None:
    problem = _only("version: 1\nstages:\n  - type: persist\n    exclude_kinds: 3\n", registry)
    assert problem.where == "stages[0] (persist), line 3"
    assert problem.message.startswith("exclude_kinds: ")
    assert "list" in problem.message
    assert "got 3" in problem.message


def test_bound_violations(registry: StageRegistry) -> None:
    problems = _problems(
        """version: 1
stages:
  - type: detect
    max_issues: 0
    thresholds:
      slow_request_ms: 0
      error_rate: 1.5
""",
        registry,
    )
    messages = sorted(p.message for p in problems)
    assert messages == [
        "max_issues: must be >= 1",
        "thresholds.error_rate: must be <= 1.0",
        "thresholds.slow_request_ms: must be > 0",
    ]
    assert {p.where for p in problems} == {"stages[0] (detect), line 3"}


def test_on_error_must_be_a_known_policy(registry: StageRegistry) -> None:
    problem = _only("version: 1\nstages:\n  - type: persist\n    on_error: retry\n", registry)
    assert problem.message.startswith("on_error: must be one of")
    for policy in ("continue", "drop", "dead_letter"):
        assert policy in problem.message
    assert "'retry'" in problem.message


def test_every_problem_is_reported_at_once(registry: StageRegistry) -> None:
    text = """# a file with one problem per stage, and one at the top
version: 1
mode: fast
stages:
  - type: redcat

  - type: redact
    headerz: [authorization]
    replacement: ""

  - type: detect
    thresholds:
      slow_request_ms: -5

  - type: persist
    exclude_kinds: nope
"""
    with pytest.raises(PipelineValidationError) as info:
        parse_spec(text, "pipe.yaml", registry)
    problems = [str(p) for p in info.value.problems]
    assert len(problems) == 6, problems
    expected_prefixes = [
        "mode: unknown key",
        "stages[0] (redcat), line 5: unknown stage type 'redcat'",
        "stages[1] (redact), line 7: ",
        "stages[1] (redact), line 7: ",
        "stages[2] (detect), line 11: thresholds.slow_request_ms: must be > 0",
        "stages[3] (persist), line 15: exclude_kinds: ",
    ]
    for prefix, problem in zip(expected_prefixes, problems, strict=True):
        assert problem.startswith(prefix), (prefix, problem)
    redact_messages = " | ".join(problems[2:4])
    assert "headerz: unknown key" in redact_messages
    assert "replacement: " in redact_messages
    # The exception's own message lists them all, for `pipeline validate` to print.
    message = str(info.value)
    assert message.startswith("pipe.yaml: 6 problems:")
    for problem in problems:
        assert f"  - {problem}" in message


def test_duplicate_stage_ids(registry: StageRegistry) -> None:
    problems = _problems(
        "version: 1\nstages:\n  - type: persist\n  - type: redact\n  - type: persist\n"
        "  - {type: redact, id: persist}\n",
        registry,
    )
    assert len(problems) == 2
    assert problems[0].where.startswith("stages[2] (persist)")
    assert "id 'persist' is already used by stages[0]" in problems[0].message
    assert problems[1].where.startswith("stages[3] (redact)")
    assert "already used by stages[0]" in problems[1].message


def test_duplicate_stage_id_names_its_line(registry: StageRegistry) -> None:
    problem = _only("version: 1\nstages:\n  - type: persist\n  - type: persist\n", registry)
    assert problem.where == "stages[1] (persist), line 4"


def test_load_spec_reads_a_file(tmp_path: Path, registry: StageRegistry) -> None:
    path = tmp_path / "pipe.yaml"
    path.write_text("version: 1\nstages:\n  - type: redcat\n", encoding="utf-8")
    with pytest.raises(PipelineValidationError) as info:
        load_spec(path, registry)
    assert info.value.source == str(path)
    assert str(info.value).startswith(f"{path}: 1 problem:")
