"""rsproxy/processes/output.py: a real child's stdout and stderr, echoed, kept in bounded rings
and turned into ``process`` events — also when the runtime is not up yet.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from rsproxy.events import Event
from rsproxy.processes.output import (
    MAX_LINE_BYTES,
    RING_BYTES,
    OutputCapture,
    OutputLine,
    OutputRing,
    clean_line,
    current,
)

CHATTY = r"""
import sys
print("first line")
print("\x1b[32mgreen\x1b[0m and plain")
sys.stderr.write("an error line\n")
sys.stderr.flush()
print("x" * 100_000)
print("progress 10%\rprogress 100%")
print("after the long one")
sys.stdout.write("no newline at the end")
"""


def _line(seq: int, size: int = 100) -> OutputLine:
    return OutputLine(seq, float(seq), "stdout", f"line {seq}", False, size)


def test_ring_keeps_the_newest_lines_within_its_byte_budget() -> None:
    ring = OutputRing(max_bytes=1000)
    for seq in range(1, 51):
        ring.append(_line(seq))
    assert ring.bytes <= 1000
    assert [line.seq for line in ring.lines()] == list(range(41, 51))
    assert ring.dropped == 40
    assert RING_BYTES == 256 * 1024


def test_a_line_bigger_than_the_ring_is_still_kept_alone() -> None:
    ring = OutputRing(max_bytes=10)
    ring.append(_line(1, 5))
    ring.append(_line(2, 50))
    assert [line.seq for line in ring.lines()] == [2]


def test_clean_line() -> None:
    assert clean_line(b"\x1b[1;31mred\x1b[0m text\r\n") == ("red text", False)
    assert clean_line(b"10%\r50%\r100%\n") == ("100%", False)
    assert clean_line("caf\u00e9 \xff".encode("latin-1")) == ("caf\ufffd \ufffd", False)
    text, truncated = clean_line(b"y" * (MAX_LINE_BYTES + 10) + b"\n")
    assert truncated is True and len(text) == MAX_LINE_BYTES


def _run(sink: Any, *, echo: bool = False) -> OutputCapture:
    child = subprocess.Popen(
        [sys.executable, "-u", "-c", CHATTY], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    capture = OutputCapture(child, ["python", "chatty.py"], sink, echo=echo).start()
    assert current() is capture
    child.wait(10)
    capture.close()
    assert current() is None
    return capture


def test_capture_turns_each_line_into_a_process_event() -> None:
    stored: list[Event] = []
    capture = _run(lambda events: stored.extend(events) or True)
    by_stream = {s: [e.data for e in stored if e.data["stream"] == s] for s in ("stdout", "stderr")}
    assert [d["line"] for d in by_stream["stderr"]] == ["an error line"]
    lines = [d["line"] for d in by_stream["stdout"]]
    assert lines[0:2] == ["first line", "green and plain"]
    assert lines[3:] == ["progress 100%", "after the long one", "no newline at the end"]
    long = by_stream["stdout"][2]
    assert long["truncated"] is True and long["line"] == "x" * MAX_LINE_BYTES
    assert [d["seq"] for d in by_stream["stdout"]] == list(range(1, 7))
    assert all(e.kind == "process" and e.source == "proxy" for e in stored)
    assert {(d["pid"], d["command"]) for d in by_stream["stdout"]} == {
        (capture.pid, "python chatty.py")
    }
    # the ring holds the same lines, in order, merged across the two streams by time
    assert [line.line for line in capture.ring_lines("stderr")] == ["an error line"]
    assert len(capture.ring_lines()) == 7


def test_lines_wait_until_the_runtime_takes_them() -> None:
    stored: list[Event] = []
    state = {"up": False, "refused": 0}

    def sink(events: list[Event]) -> bool:
        if not state["up"]:  # the runtime is not up yet
            state["refused"] += 1
            return False
        stored.extend(events)
        return True

    child = subprocess.Popen(
        [sys.executable, "-u", "-c", CHATTY], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    capture = OutputCapture(child, ["python", "chatty.py"], sink, echo=False).start()
    try:
        child.wait(10)
        deadline = time.monotonic() + 5
        while not state["refused"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert state["refused"] and not stored
        state["up"] = True
    finally:
        capture.close()
    assert [e.data["seq"] for e in stored if e.data["stream"] == "stdout"] == list(range(1, 7))


def test_a_failing_sink_does_not_stop_the_capture(caplog: pytest.LogCaptureFixture) -> None:
    def sink(events: list[Event]) -> bool:
        raise RuntimeError("store is gone")

    capture = _run(sink)
    assert len(capture.ring_lines()) == 7
    assert "storing the dev server's output failed" in caplog.text


def test_output_is_echoed_to_the_terminal_unchanged(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    _run(lambda events: True, echo=True)
    out, err = capfdbinary.readouterr()
    assert b"\x1b[32mgreen\x1b[0m and plain\n" in out  # colours and all, as the server wrote it
    assert b"x" * 100_000 in out
    assert out.endswith(b"no newline at the end")
    assert err == b"an error line\n"
