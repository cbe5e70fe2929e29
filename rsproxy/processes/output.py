"""The output of the dev server ``rsproxy start -- CMD`` supervises: echoed, kept, and stored.

Each of the child's two pipes is read on its own thread, line by line:

* the raw bytes are echoed to rsproxy's own stdout or stderr, so the terminal shows the dev
  server's output as it did before rsproxy was in front of it;
* the line (ANSI colours stripped, a carriage-return progress line reduced to its last state,
  capped at 8 KiB) is kept in a ring of the last 256 KiB per stream, which costs bounded memory
  however chatty the server is;
* and it becomes a ``process`` event (``{stream, line, pid, command, seq}``; ``truncated`` when
  capped), handed to the pipeline in batches every 0.1 s (or 500 lines). Lines read before the
  runtime is up wait in a bounded queue and go to the store once it is.

``seq`` numbers the lines of one stream, so the ``logs`` report can add the ring's newest lines
the pipeline has not stored yet (rsproxy/reports/logs.py): ``current()`` is the capture of the
daemon this process runs, if any.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from rsproxy.events import Event

log = logging.getLogger("rsproxy")

RING_BYTES = 256 * 1024
MAX_LINE_BYTES = 8 * 1024
FLUSH_INTERVAL_S = 0.1
FLUSH_LINES = 500
MAX_WAITING_LINES = 10_000  # lines held while the runtime is not up yet
STREAMS = ("stdout", "stderr")
_READ_CHUNK = 64 * 1024
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")


@dataclass(frozen=True)
class OutputLine:
    seq: int
    ts: float  # epoch ms
    stream: str
    line: str
    truncated: bool
    size: int  # bytes of the raw line, for the ring's budget

    def as_dict(self, pid: int, command: str) -> dict[str, Any]:
        data: dict[str, Any] = {
            "stream": self.stream,
            "line": self.line,
            "pid": pid,
            "command": command,
            "seq": self.seq,
        }
        if self.truncated:
            data["truncated"] = True
        return data


class OutputRing:
    """The newest lines of one stream within a byte budget; older lines fall out."""

    def __init__(self, max_bytes: int = RING_BYTES) -> None:
        self.max_bytes = max_bytes
        self._lines: deque[OutputLine] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self.dropped = 0  # lines that fell out of the ring

    def append(self, line: OutputLine) -> None:
        with self._lock:
            self._lines.append(line)
            self._bytes += line.size
            while self._bytes > self.max_bytes and len(self._lines) > 1:
                self._bytes -= self._lines.popleft().size
                self.dropped += 1

    def lines(self) -> list[OutputLine]:
        with self._lock:
            return list(self._lines)

    @property
    def bytes(self) -> int:
        return self._bytes


def clean_line(raw: bytes) -> tuple[str, bool]:
    """A raw line as text for the store: decoded, colours stripped, capped."""
    raw = raw.rstrip(b"\r\n")
    truncated = len(raw) > MAX_LINE_BYTES
    text = raw[:MAX_LINE_BYTES].decode("utf-8", "replace")
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    if "\r" in text:  # a progress line redrawn in place: keep what the terminal last showed
        text = text.rsplit("\r", 1)[-1]
    return text, truncated


# An event sink returns False while it cannot take events yet (no runtime); they are kept.
Sink = Callable[[list[Event]], bool]


class OutputCapture:
    """Reads a child's stdout and stderr pipes; see the module docstring."""

    def __init__(
        self,
        child: subprocess.Popen[bytes],
        command: Sequence[str],
        sink: Sink,
        *,
        echo: bool = True,
        ring_bytes: int = RING_BYTES,
    ) -> None:
        self.child = child
        self.pid = child.pid
        self.command = " ".join(command)
        self.rings = {stream: OutputRing(ring_bytes) for stream in STREAMS}
        self._sink = sink
        self._echo = echo
        self._pending: list[Event] = []
        self._lock = threading.Lock()
        self._seq = dict.fromkeys(STREAMS, 0)
        self._stop = threading.Event()
        self.waiting_dropped = 0
        self._readers = [
            threading.Thread(
                target=self._read,
                args=(stream, pipe),
                name=f"rsproxy-{stream}",
                daemon=True,
            )
            for stream, pipe in (("stdout", child.stdout), ("stderr", child.stderr))
            if pipe is not None
        ]
        self._flusher = threading.Thread(
            target=self._flush_loop, name="rsproxy-output", daemon=True
        )

    def start(self) -> OutputCapture:
        global _current
        for thread in self._readers:
            thread.start()
        self._flusher.start()
        _current = self
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Wait for the pipes to reach their end (the group has been stopped), flush, stop."""
        global _current
        deadline = time.monotonic() + timeout
        for thread in self._readers:
            # A grandchild that left the process group may hold a pipe open for ever.
            thread.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        self._flusher.join(2.0)
        self.flush()
        if _current is self:
            _current = None

    # ---- reading ----------------------------------------------------------------------------------

    def _read(self, stream: str, pipe: IO[bytes]) -> None:
        echo = getattr(sys, stream).buffer if self._echo else None
        skipping = False  # inside an over-long line whose head was already kept
        try:
            for raw in iter(lambda: pipe.readline(_READ_CHUNK), b""):
                if echo is not None:
                    try:
                        echo.write(raw)
                        echo.flush()
                    except (OSError, ValueError):
                        echo = None  # the terminal went away; keep capturing
                complete = raw.endswith(b"\n")
                if skipping:
                    skipping = not complete
                    continue
                self._keep(stream, raw, cut=not complete and len(raw) >= _READ_CHUNK)
                skipping = not complete and len(raw) >= _READ_CHUNK
        except (OSError, ValueError):
            pass  # the pipe was closed under us on shutdown
        finally:
            pipe.close()

    def _keep(self, stream: str, raw: bytes, *, cut: bool) -> None:
        text, truncated = clean_line(raw)
        with self._lock:
            self._seq[stream] += 1
            line = OutputLine(
                self._seq[stream],
                time.time() * 1000,
                stream,
                text,
                truncated or cut,
                len(raw),
            )
            self.rings[stream].append(line)
            self._pending.append(
                Event(
                    kind="process",
                    source="proxy",
                    ts=line.ts,
                    data=line.as_dict(self.pid, self.command),
                )
            )
            if len(self._pending) > MAX_WAITING_LINES:
                overflow = len(self._pending) - MAX_WAITING_LINES
                del self._pending[:overflow]
                self.waiting_dropped += overflow
            full = len(self._pending) >= FLUSH_LINES
        if full:
            self.flush()

    # ---- storing ----------------------------------------------------------------------------------

    def _flush_loop(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_S):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            accepted = self._sink(batch)
        except Exception:  # a sink failing must not stop the capture (or the dev server)
            log.exception("storing the dev server's output failed")
            accepted = True
        if not accepted:
            with self._lock:
                self._pending[:0] = batch

    def ring_lines(self, stream: str | None = None) -> list[OutputLine]:
        streams = (stream,) if stream else STREAMS
        merged = [line for s in streams for line in self.rings[s].lines()]
        return sorted(merged, key=lambda line: line.ts)


_current: OutputCapture | None = None


def current() -> OutputCapture | None:
    """The capture of the dev server this process supervises, if it supervises one."""
    return _current
