"""Hot reload: watch the pipeline file and hand each valid edit to the runtime.

The parent directory is watched rather than the file, because editors often save by writing a new
file and renaming it over the old one, which a watch on the old inode would miss. An edit that does
not validate is reported (with every problem, as ``pipeline validate`` prints them) and the running
pipeline stays as it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import watchfiles

from rsproxy.errors import PipelineError
from rsproxy.pipeline.spec import PipelineSpec, load_spec

log = logging.getLogger("rsproxy.pipeline")


async def watch_pipeline(
    path: Path,
    on_valid: Callable[[PipelineSpec], None],
    on_invalid: Callable[[PipelineError], None],
    stop: asyncio.Event,
) -> None:
    target = path.resolve()
    last_text = _read(target)

    def concerns_target(_change: watchfiles.Change, changed: str) -> bool:
        return Path(changed).resolve() == target

    async for _changes in watchfiles.awatch(
        target.parent, watch_filter=concerns_target, stop_event=stop, debounce=200, step=50
    ):
        text = _read(target)
        if text is None or text == last_text:
            continue
        last_text = text
        try:
            spec = load_spec(target)
        except PipelineError as exc:
            log.error("pipeline edit not applied, the running pipeline is kept:\n%s", exc)
            on_invalid(exc)
            continue
        on_valid(spec)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None
