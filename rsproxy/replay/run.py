"""The replay driver: a HAR or mitmproxy flow file through the project's pipeline into a session.

``replay`` sniffs the format, streams the file's entries in batches through the very pipeline
live capture uses (the project's default, or ``pipeline_path``), as a new session with
``source="replay"`` in the project's store, and counts what it read, replayed and skipped (and
why). It writes the store itself, so while a daemon holds the project's store the replay runs
inside the daemon instead, as steps of its pipeline worker (``replay_steps``).

On a fatal problem met halfway (a truncated file, a HAR version found after its entries, Ctrl+C,
a store error) the half-replayed session is rolled back: its rows are deleted and the store is
left exactly as it was before, earlier sessions untouched. A half session would otherwise look
like a complete capture to every later query and comparison.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from rsproxy.errors import ReplayError
from rsproxy.events import Event, new_id, now_ms
from rsproxy.pipeline.engine import Pipeline
from rsproxy.pipeline.spec import PipelineSpec, default_pipeline_path, load_spec
from rsproxy.pipeline.stage import StageContext
from rsproxy.project import BuildInfo, Project
from rsproxy.state import DaemonState
from rsproxy.store import SessionInfo, Store

from .flows import FlowFileReader
from .har import BadEntry, HarReader, entry_event, page_event

Format = Literal["har", "mitmproxy"]

BODY_LIMIT = 64 * 1024
# A batch is cut at this many events or body bytes, whichever comes first: 2,000 entries with
# 64 KB bodies would hold 250 MB at once, and the budget is a 100 MB HAR in little memory.
BATCH_EVENTS = 2_000
BATCH_BYTES = 8 << 20
SKIP_EXAMPLES = 20
log = logging.getLogger("rsproxy.replay")

Progress = Callable[[int], None]


@dataclass
class ReplaySummary:
    """What a replay read, replayed and skipped; ``to_dict`` is the ``summary`` of ``--json``."""

    file: str
    format: Format
    session_id: str
    project: str
    pipeline: str
    read: int = 0
    replayed: int = 0
    skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    skipped_examples: list[dict[str, Any]] = field(default_factory=list)
    events: int = 0
    har_version: str | None = None
    creator: str | None = None
    pages: int = 0
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def detect_format(path: Path) -> Format:
    """``har`` for a JSON file, ``mitmproxy`` for a flow file; ``ReplayError`` otherwise."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except FileNotFoundError:
        raise ReplayError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReplayError(f"{path}: is a directory; give a .har or a mitmproxy flow file") from None
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not text:
        raise ReplayError(f"{path}: the file is empty; give a HAR file or a mitmproxy flow file")
    if text[:1] in (b"{", b"["):
        return "har"
    # A flow file is a stream of tnetstrings: a decimal length, a colon, the payload.
    length, colon, _ = text.partition(b":")
    if colon and length.isdigit():
        return "mitmproxy"
    raise ReplayError(
        f"{path}: not a HAR file (JSON) nor a mitmproxy flow file; it starts with "
        f"{head[:24]!r}. Export a HAR from the browser's network panel (or Charles, Fiddler, "
        "HTTP Toolkit, mitmproxy), or record flows with `mitmdump -w FILE`"
    )


def replay(
    path: Path,
    project: Project,
    *,
    pipeline_path: Path | None = None,
    body_limit: int = BODY_LIMIT,
    progress: Progress | None = None,
) -> ReplaySummary:
    """Replay ``path`` into a new session of ``project``'s store and say what happened.

    Raises ``ReplayError`` (``HarFormatError``, ``FlowFileError``) for an unusable file or a busy
    store, ``PipelineError`` for an invalid pipeline file; nothing is stored in either case.
    While a daemon runs for the project it holds the store: the CLI then asks the daemon to
    replay (``replay_steps`` on its pipeline worker) instead of calling this.
    """
    fmt = detect_format(path)
    spec = load_spec(pipeline_path or default_pipeline_path())
    running = DaemonState.read(project.state_path)
    if running is not None:
        raise ReplayError(
            f"rsproxy is running for project {project.name!r} (pid {running.pid}) and holds its "
            f"store, which only one process may write. Replay through it (`rsproxy replay` does "
            f"when it finds it), stop it with `rsproxy stop --project {project.name}`, or "
            "replay into another project with `--project OTHER`"
        )
    project.ensure_data_dir()
    store = Store.open(project.store_path, wait_s=10.0)  # a reader may hold it a moment
    steps = replay_steps(store, path, fmt, project, spec, body_limit, progress)
    try:
        while True:
            try:
                next(steps)
            except StopIteration as finished:
                summary: ReplaySummary = finished.value
                return summary
    except BaseException:
        steps.close()  # Ctrl+C between two steps: the session is rolled back all the same
        raise
    finally:
        store.close()


def replay_steps(
    store: Store,
    path: Path,
    fmt: Format,
    project: Project,
    spec: PipelineSpec,
    body_limit: int = BODY_LIMIT,
    progress: Progress | None = None,
) -> Generator[None, None, ReplaySummary]:
    """The replay as steps, one pipeline batch each, returning the summary: ``replay`` runs them
    in a row; a daemon's pipeline worker runs them between its live batches (it is the store's
    only writer). A failure, or closing the generator early, rolls the session back."""
    session_id = new_id()
    summary = ReplaySummary(
        file=str(path),
        format=fmt,
        session_id=session_id,
        project=project.name,
        pipeline=spec.source,
    )
    started = time.perf_counter()
    build = BuildInfo.detect()
    try:
        store.start_session(
            SessionInfo(
                id=session_id,
                project=project.name,
                source="replay",
                target=None,
                started_ms=now_ms(),
                git_commit=build.commit,
                git_branch=build.branch,
                git_dirty=build.dirty,
                pipeline=spec.source,
                meta={"file": str(path.resolve()), "format": fmt},
            )
        )
        pipeline = Pipeline(spec, StageContext(project.name, session_id, store))
        try:
            read = _har_events if fmt == "har" else _flow_events
            events = read(path, summary, body_limit)
            yield from _run(pipeline, events, project.name, session_id, summary, progress)
            pipeline.flush()
        finally:
            pipeline.close()
        store.end_session(session_id, now_ms())
        store.checkpoint()
    except BaseException:
        _discard_session(store, session_id)
        raise
    summary.elapsed_s = round(time.perf_counter() - started, 3)
    return summary


def _run(
    pipeline: Pipeline,
    events: Iterator[tuple[Event, int]],
    project: str,
    session_id: str,
    summary: ReplaySummary,
    progress: Progress | None,
) -> Generator[None, None, None]:
    batch: list[Event] = []
    weight = 0
    position = 0
    for event, position in events:
        event.project = project
        event.session_id = session_id
        batch.append(event)
        data = event.data
        weight += len(data.get("response_body") or "") + len(data.get("request_body") or "")
        if len(batch) >= BATCH_EVENTS or weight >= BATCH_BYTES:
            pipeline.run(batch)
            summary.events += len(batch)
            batch, weight = [], 0
            if progress is not None:
                progress(position)
            yield
    if batch:
        pipeline.run(batch)
        summary.events += len(batch)
    if progress is not None:
        progress(position)


def _skip(summary: ReplaySummary, index: int, reason: str) -> None:
    summary.skipped += 1
    summary.skipped_reasons[reason] = summary.skipped_reasons.get(reason, 0) + 1
    if len(summary.skipped_examples) < SKIP_EXAMPLES:
        summary.skipped_examples.append({"index": index, "reason": reason})


def _har_events(path: Path, summary: ReplaySummary, body_limit: int) -> Iterator[tuple[Event, int]]:
    """The file's events with the byte position reached, counting entries into ``summary``."""
    reader = HarReader(path)
    pages_done = 0
    for index, entry in enumerate(reader.entries()):
        summary.read += 1
        # Pages usually come before the entries; emit each page view once, before its requests.
        while pages_done < len(reader.pages):
            page = page_event(reader.pages[pages_done])
            pages_done += 1
            if page is not None:
                summary.pages += 1
                yield page, reader.bytes_read
        try:
            event = entry_event(entry, body_limit)
        except BadEntry as exc:
            _skip(summary, index, str(exc))
            continue
        summary.replayed += 1
        yield event, reader.bytes_read
    summary.har_version = reader.version
    summary.creator = reader.creator


def _flow_events(
    path: Path, summary: ReplaySummary, body_limit: int
) -> Iterator[tuple[Event, int]]:
    reader = FlowFileReader(path, body_limit)
    for item in reader.items():
        summary.read += 1
        if item.skipped is not None:
            _skip(summary, item.index, item.skipped)
            continue
        summary.replayed += 1
        for event in item.events:
            yield event, reader.bytes_read


def _discard_session(store: Store, session_id: str) -> None:
    """Delete every row of a session that did not finish, so the store is as it was before."""
    try:
        cursor = store.cursor()
        tables = cursor.execute(
            """SELECT c.table_name FROM information_schema.columns c
               JOIN information_schema.tables t
                 ON t.table_schema = c.table_schema AND t.table_name = c.table_name
               WHERE c.column_name = 'session_id' AND t.table_type = 'BASE TABLE'"""
        ).fetchall()
        for (table,) in tables:
            cursor.execute(f'DELETE FROM "{table}" WHERE session_id = ?', [session_id])
        cursor.execute("DELETE FROM sessions WHERE id = ?", [session_id])
        store.checkpoint()
    except Exception:
        # The error that stopped the replay matters more than this one: log, and let it through.
        log.exception("could not remove the partial session %s", session_id)


def skip_lines(summary: ReplaySummary) -> list[str]:
    """The skip reasons as lines for people, most frequent first."""
    counts = Counter(summary.skipped_reasons)
    first: dict[str, int] = {}
    for example in summary.skipped_examples:
        first.setdefault(example["reason"], example["index"])
    lines = []
    for reason, n in counts.most_common():
        where = f" (first: entry {first[reason]})" if reason in first else ""
        lines.append(f"{n}x {reason}{where}")
    return lines
