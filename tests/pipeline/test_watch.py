"""Hot reload of the pipeline file (rsproxy/pipeline/watch.py) with real file-system events.

``watch_pipeline`` runs in its own event loop (``asyncio.run``) inside each test. The watcher
gives no signal when it is ready, so each test repeats its edit (each time with a different
comment, so the content really changes) until the callback it expects fires; every wait is
bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from rsproxy.errors import PipelineError, PipelineLoadError, PipelineValidationError
from rsproxy.pipeline.spec import PipelineSpec
from rsproxy.pipeline.watch import watch_pipeline
from rsproxy.testing import run_async

TIMEOUT = 20.0  # seconds for the whole scenario of one test
RETRY = 0.4  # seconds between repeated edits while waiting for the watcher

VALID = "version: 1\nstages:\n  - type: redact\n  - type: persist\n"


def _valid(revision: int, kinds: str = "dom_mutation") -> str:
    return (
        f"# revision {revision}\nversion: 1\nstages:\n  - type: redact\n"
        f"  - type: persist\n    exclude_kinds: [{kinds}]\n"
    )


def _invalid(revision: int) -> str:
    return f"# revision {revision}\nversion: 1\nstages:\n  - type: redcat\n"


class Recorder:
    def __init__(self) -> None:
        self.valid: list[PipelineSpec] = []
        self.invalid: list[PipelineError] = []

    def on_valid(self, spec: PipelineSpec) -> None:
        self.valid.append(spec)

    def on_invalid(self, error: PipelineError) -> None:
        self.invalid.append(error)


def _watching(path: Path, scenario: Callable[[Recorder], Awaitable[None]]) -> Recorder:
    """Run ``scenario`` while ``watch_pipeline`` watches ``path``; stop the watcher after."""
    recorder = Recorder()

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(
            watch_pipeline(path, recorder.on_valid, recorder.on_invalid, stop)
        )
        try:
            await asyncio.wait_for(scenario(recorder), TIMEOUT)
        finally:
            stop.set()
            await asyncio.wait_for(task, TIMEOUT)

    run_async(main())
    return recorder


async def _edit_until(
    condition: Callable[[], bool], edit: Callable[[int], None], first: int = 1
) -> int:
    """Apply edit(1), edit(2), ... until ``condition`` holds; returns the last revision."""
    revision = first
    while True:
        edit(revision)
        for _ in range(int(RETRY / 0.05)):
            await asyncio.sleep(0.05)
            if condition():
                return revision
        revision += 1


def test_a_valid_edit_calls_on_valid_with_the_new_spec(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(VALID)

    async def scenario(rec: Recorder) -> None:
        revision = await _edit_until(
            lambda: bool(rec.valid), lambda r: path.write_text(_valid(r, "vital"))
        )
        assert revision >= 1

    rec = _watching(path, scenario)
    assert rec.invalid == []
    spec = rec.valid[-1]
    assert spec.stage_types() == ["redact", "persist"]
    assert spec.stages[1].config.exclude_kinds == ["vital"]  # type: ignore[attr-defined]
    assert Path(spec.source).resolve() == path.resolve()


def test_an_invalid_edit_calls_on_invalid_only(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(VALID)

    async def scenario(rec: Recorder) -> None:
        last = await _edit_until(lambda: bool(rec.invalid), lambda r: path.write_text(_invalid(r)))
        # Give a wrongly made on_valid call the same time to show up.
        for _ in range(int(RETRY / 0.05)):
            await asyncio.sleep(0.05)
        assert rec.valid == []
        # The watcher is still alive after a bad edit: a good one is applied.
        await _edit_until(
            lambda: bool(rec.valid), lambda r: path.write_text(_valid(r)), first=last + 1
        )

    rec = _watching(path, scenario)
    error = rec.invalid[0]
    assert isinstance(error, PipelineValidationError)
    assert "did you mean 'redact'?" in str(error)
    assert rec.valid[-1].stage_types() == ["redact", "persist"]


def test_invalid_yaml_is_reported_as_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(VALID)

    async def scenario(rec: Recorder) -> None:
        await _edit_until(
            lambda: bool(rec.invalid),
            lambda r: path.write_text(f"# {r}\nversion: 1\nstages: [{{type: persist\n"),
        )

    rec = _watching(path, scenario)
    assert isinstance(rec.invalid[0], PipelineLoadError)
    assert rec.valid == []


def test_an_editor_style_save_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(VALID)

    def save_like_an_editor(revision: int) -> None:
        temp = tmp_path / f".pipeline.yaml.{revision}.swp"
        temp.write_text(_valid(revision, "long_task"))
        os.replace(temp, path)

    async def scenario(rec: Recorder) -> None:
        await _edit_until(lambda: bool(rec.valid), save_like_an_editor)

    rec = _watching(path, scenario)
    assert rec.valid[-1].stages[1].config.exclude_kinds == ["long_task"]  # type: ignore[attr-defined]
    assert rec.invalid == []
    assert not list(tmp_path.glob("*.swp"))


def test_changes_to_other_files_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(VALID)
    neighbour = tmp_path / "other.yaml"

    async def scenario(rec: Recorder) -> None:
        # Wait until the watcher is certainly running (it reacts to our own file)...
        last = await _edit_until(lambda: bool(rec.valid), lambda r: path.write_text(_valid(r)))
        seen = len(rec.valid)
        # ...then write a broken neighbour many times: nothing may be reported.
        for revision in range(5):
            neighbour.write_text(_invalid(revision))
            await asyncio.sleep(0.1)
        await asyncio.sleep(RETRY)
        assert len(rec.valid) == seen
        assert rec.invalid == []
        assert last >= 1

    _watching(path, scenario)


def test_a_save_without_a_change_is_not_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(VALID)

    async def scenario(rec: Recorder) -> None:
        last = await _edit_until(lambda: bool(rec.valid), lambda r: path.write_text(_valid(r)))
        seen = len(rec.valid)
        text = _valid(last)
        for _ in range(3):
            path.write_text(text)  # same bytes again, as an editor's plain `:w` would
            await asyncio.sleep(0.1)
        await asyncio.sleep(RETRY)
        assert len(rec.valid) == seen

    _watching(path, scenario)


def test_stop_ends_the_watcher_promptly(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(VALID)

    async def scenario(_rec: Recorder) -> None:
        await asyncio.sleep(0.1)

    rec = _watching(path, scenario)  # returns only because the watcher task ended after stop
    assert rec.valid == [] and rec.invalid == []
