"""rsproxy/reports/logs.py over a real store filled by a real capture of a child's output, and the
live path that adds the ring's lines the pipeline has not stored yet.

(Named ``test_logs_report`` so it does not clash with tests/commands/test_logs.py.)
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rsproxy import reports
from rsproxy.errors import ReportError
from rsproxy.events import Event, new_id
from rsproxy.processes.output import OutputCapture
from rsproxy.store import SessionInfo, Store

SCRIPT = r"""
import sys
for n in range(1, 6):
    print(f"request {n} handled")
    print(f"warning {n}: slow", file=sys.stderr)
"""
LINES = 10


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Store, str]]:
    opened = Store.open(tmp_path / "rsproxy.duckdb")
    session = new_id()
    opened.start_session(SessionInfo(session, "logs", "proxy", None, time.time() * 1000))
    try:
        yield opened, session
    finally:
        opened.close()


def _capture(sink: Any) -> OutputCapture:
    child = subprocess.Popen(
        [sys.executable, "-u", "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    capture = OutputCapture(child, ["python", "server.py"], sink, echo=False).start()
    child.wait(10)
    deadline = time.monotonic() + 5
    while len(capture.ring_lines()) < LINES and time.monotonic() < deadline:
        time.sleep(0.02)
    return capture


def _storing(store: Store, session: str) -> Any:
    def sink(events: list[Event]) -> bool:
        for event in events:
            event.session_id = session
        store.write_events(events)
        return True

    return sink


def _run(store: Store, **params: Any) -> dict[str, Any]:
    result: dict[str, Any] = reports.run("logs", reports.ReportContext(store), params)
    return result


def test_stored_lines_oldest_first_with_stream_grep_and_tail(store: tuple[Store, str]) -> None:
    db, session = store
    _capture(_storing(db, session)).close()
    everything = _run(db)
    assert everything["returned"] == LINES and everything["truncated"] is False
    assert everything["commands"] == ["python server.py"]
    stdout = [line["line"] for line in everything["lines"] if line["stream"] == "stdout"]
    assert stdout == [f"request {n} handled" for n in range(1, 6)]
    assert everything["lines"] == sorted(everything["lines"], key=lambda line: line["ts"])

    errors = _run(db, stream="stderr")
    assert {line["stream"] for line in errors["lines"]} == {"stderr"}
    assert errors["returned"] == 5

    grep = _run(db, grep="warning [24]")
    assert [line["line"] for line in grep["lines"]] == ["warning 2: slow", "warning 4: slow"]

    # (the two streams are read on two threads: their relative order is not the child's)
    tail = _run(db, tail=2, stream="stdout")
    assert tail["truncated"] is True
    assert [line["line"] for line in tail["lines"]] == ["request 4 handled", "request 5 handled"]


def test_bad_patterns_are_explained(store: tuple[Store, str]) -> None:
    db, session = store
    _capture(_storing(db, session)).close()
    with pytest.raises(ReportError, match="bad --grep pattern '\\(unclosed'"):
        _run(db, grep="(unclosed")
    with pytest.raises(ReportError, match="RE2"):
        _run(db, grep="request(?= 1)")  # valid for Python, not for DuckDB's RE2


def test_live_report_adds_the_lines_not_stored_yet(store: tuple[Store, str]) -> None:
    db, session = store
    held: list[Event] = []

    def slow_pipeline(events: list[Event]) -> bool:
        held.extend(events)  # taken, but not written yet
        return True

    capture = _capture(slow_pipeline)
    try:
        deadline = time.monotonic() + 5
        while len(held) < LINES and time.monotonic() < deadline:
            time.sleep(0.02)  # the capture hands lines over every 0.1 s
        live = reports.ReportContext(db, current_session=session, live={"pid": 1})
        answer = reports.run("logs", live, {})
        assert answer["live"] is True and answer["from_ring"] == LINES
        assert [line["seq"] for line in answer["lines"] if line["stream"] == "stdout"] == [
            1,
            2,
            3,
            4,
            5,
        ]

        # The pipeline catches up with the first half: nothing is listed twice.
        for event in held:
            event.session_id = session
        db.write_events([e for e in held if e.data["seq"] <= 3])
        answer = reports.run("logs", live, {})
        assert answer["returned"] == LINES and answer["from_ring"] == 4
        assert len({(line["stream"], line["seq"]) for line in answer["lines"]}) == LINES
        assert reports.run("logs", live, {"grep": "warning 5"})["returned"] == 1

        # Not live (the store read-only, another session): the store alone answers.
        assert _run(db, session=session)["from_ring"] == 0
    finally:
        capture.close()
