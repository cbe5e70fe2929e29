"""The stage registry (rsproxy/pipeline/registry.py).

Built-ins and third-party stages go through one ``register`` with one set of checks. Third-party
stages come from the ``rsproxy.stages`` entry-point group; the tests create real modules under
tmp_path and real ``importlib.metadata.EntryPoint`` objects pointing at them, and replace only the
stdlib's listing of installed entry points. A broken entry point must not break rsproxy: it is
recorded and reported when a pipeline asks for it.
"""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rsproxy.errors import PipelineValidationError, StageRegistryError
from rsproxy.pipeline import registry as registry_module
from rsproxy.pipeline.registry import ENTRY_POINT_GROUP, StageRegistry, default_registry
from rsproxy.pipeline.spec import parse_spec
from rsproxy.pipeline.stage import Stage, StageConfig
from rsproxy.stages import BUILTIN_STAGES
from rsproxy.stages.persist import Persist
from rsproxy.stages.redact import Redact


class EchoConfig(StageConfig):
    pass


class Echo(Stage[EchoConfig]):
    """Passes events on."""

    name = "echo"
    config_model = EchoConfig
    example = "- type: echo\n"


def test_register_and_get() -> None:
    registry = StageRegistry()
    assert registry.register(Echo) is Echo
    assert registry.get("echo") is Echo
    assert registry.get("nope") is None
    assert registry.names() == ["echo"]


def test_names_are_sorted() -> None:
    registry = StageRegistry()
    for cls in (Redact, Echo, Persist):
        registry.register(cls)
    assert registry.names() == ["echo", "persist", "redact"]


def test_a_name_taken_twice_is_refused() -> None:
    registry = StageRegistry()
    registry.register(Echo)

    class OtherEcho(Echo):
        """Same name, different class."""

    with pytest.raises(StageRegistryError, match=r"'echo'.*already registered") as info:
        registry.register(OtherEcho, origin="entry point acme:OtherEcho")
    assert "acme:OtherEcho" in str(info.value)
    assert "Echo" in str(info.value)
    assert registry.get("echo") is Echo  # the first one stays


def test_registering_the_same_class_twice_is_refused() -> None:
    registry = StageRegistry()
    registry.register(Echo)
    with pytest.raises(StageRegistryError):
        registry.register(Echo)


def test_a_class_without_a_name_is_refused() -> None:
    class Nameless(Stage[StageConfig]):
        """No name."""

        example = "- type: nameless\n"

    with pytest.raises(StageRegistryError, match="no `name`"):
        StageRegistry().register(Nameless)


def test_an_empty_name_is_refused() -> None:
    class Empty(Echo):
        """Empty name."""

        name = ""

    with pytest.raises(StageRegistryError, match="no `name`"):
        StageRegistry().register(Empty)


@pytest.mark.parametrize("config_model", [None, dict, object(), str])
def test_a_class_without_a_stage_config_model_is_refused(config_model: object) -> None:
    class Odd(Stage[StageConfig]):
        """Bad config model."""

        name = "odd"
        example = "- type: odd\n"

    Odd.config_model = config_model  # type: ignore[assignment]
    registry = StageRegistry()
    with pytest.raises(StageRegistryError, match="config_model must subclass StageConfig"):
        registry.register(Odd)
    assert registry.get("odd") is None


def test_a_class_without_an_example_is_refused() -> None:
    class NoExample(Stage[StageConfig]):
        """No example."""

        name = "no_example"

    with pytest.raises(StageRegistryError, match="example"):
        StageRegistry().register(NoExample)


def test_something_that_is_not_a_stage_is_refused() -> None:
    class NotAStage:
        """Looks like a stage on paper only."""

        name = "impostor"
        config_model = StageConfig
        example = "- type: impostor\n"

    with pytest.raises(StageRegistryError):
        StageRegistry().register(NotAStage)  # type: ignore[arg-type]


def test_describe_gives_what_pipeline_stages_prints() -> None:
    described = Redact.describe()
    assert described["name"] == "redact"
    assert described["summary"]
    assert "headers" in described["config_schema"]["properties"]
    assert described["example"].startswith("- type: redact")


def test_default_registry_holds_the_built_ins() -> None:
    registry = default_registry()
    for cls in BUILTIN_STAGES:
        assert registry.get(cls.name) is cls
    assert default_registry() is registry


# ---- entry points -----------------------------------------------------------------------------


_PLUGIN = '''
from rsproxy.pipeline.stage import Stage, StageConfig


class ShoutConfig(StageConfig):
    pass


class Shout(Stage[ShoutConfig]):
    """Upper-cases console messages."""

    name = "shout"
    config_model = ShoutConfig
    example = "- type: shout\\n"


class Redact(Stage[ShoutConfig]):
    """Tries to take a built-in's name."""

    name = "redact"
    config_model = ShoutConfig
    example = "- type: redact\\n"


NOT_A_CLASS = 42
'''


@pytest.fixture
def plugin_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A real module on sys.path, with a name unique to the test."""
    name = "rsproxy_test_plugin_" + "".join(c for c in request.node.name if c.isalnum())
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(_PLUGIN))
    (tmp_path / f"{name}_broken.py").write_text("raise ImportError('needs libfoo 3.0')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in (name, f"{name}_broken"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    yield name
    for module in (name, f"{name}_broken"):
        sys.modules.pop(module, None)


def _install(monkeypatch: pytest.MonkeyPatch, *entries: tuple[str, str]) -> Callable[..., object]:
    points = [
        importlib.metadata.EntryPoint(name=n, value=v, group=ENTRY_POINT_GROUP) for n, v in entries
    ]
    seen_groups: list[str | None] = []

    def entry_points(**params: object) -> list[importlib.metadata.EntryPoint]:
        seen_groups.append(params.get("group"))  # type: ignore[arg-type]
        return points if params.get("group") == ENTRY_POINT_GROUP else []

    monkeypatch.setattr(registry_module.importlib.metadata, "entry_points", entry_points)
    entry_points.seen_groups = seen_groups  # type: ignore[attr-defined]
    return entry_points


def _registry_with_plugins() -> StageRegistry:
    registry = StageRegistry()
    for cls in BUILTIN_STAGES:
        registry.register(cls)
    registry.load_entry_points()
    return registry


def test_a_third_party_stage_loads_and_is_usable(
    plugin_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _install(monkeypatch, ("shout", f"{plugin_module}:Shout"))
    registry = _registry_with_plugins()
    assert fake.seen_groups == [ENTRY_POINT_GROUP]  # type: ignore[attr-defined]
    assert registry.broken == {}
    assert "shout" in registry.names()
    spec = parse_spec(
        "version: 1\nstages:\n  - type: shout\n  - type: persist\n", "p.yaml", registry
    )
    assert spec.stages[0].cls.__module__ == plugin_module


def test_an_entry_point_that_fails_to_import_is_recorded(
    plugin_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(
        monkeypatch,
        ("fancy", f"{plugin_module}_broken:Fancy"),
        ("missing", "rsproxy_no_such_module_anywhere:Stage"),
        ("noattr", f"{plugin_module}:DoesNotExist"),
        ("shout", f"{plugin_module}:Shout"),
    )
    registry = _registry_with_plugins()  # must not raise
    assert set(registry.broken) == {"fancy", "missing", "noattr"}
    assert "needs libfoo 3.0" in registry.broken["fancy"]
    assert f"{plugin_module}_broken:Fancy" in registry.broken["fancy"]
    assert "rsproxy_no_such_module_anywhere" in registry.broken["missing"]
    assert registry.get("shout") is not None  # a broken neighbour does not stop the others
    assert registry.get("redact") is Redact


def test_an_entry_point_that_is_not_a_stage_is_recorded(
    plugin_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(
        monkeypatch,
        ("number", f"{plugin_module}:NOT_A_CLASS"),
        ("redact", f"{plugin_module}:Redact"),
    )
    registry = _registry_with_plugins()
    assert set(registry.broken) == {"number", "redact"}
    assert "already registered" in registry.broken["redact"]
    assert registry.get("redact") is Redact  # a plugin cannot replace a built-in


def test_a_pipeline_using_a_broken_stage_says_why(
    plugin_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(monkeypatch, ("fancy", f"{plugin_module}_broken:Fancy"))
    registry = _registry_with_plugins()
    with pytest.raises(PipelineValidationError) as info:
        parse_spec(
            "version: 1\nstages:\n  - type: redact\n  - type: fancy\n  - type: persist\n",
            "p.yaml",
            registry,
        )
    [problem] = info.value.problems
    assert problem.where == "stages[1] (fancy), line 4"
    assert "installed but unusable" in problem.message
    assert "needs libfoo 3.0" in problem.message
    # A pipeline that does not use it is fine.
    parse_spec("version: 1\nstages:\n  - type: persist\n", "p.yaml", registry)
