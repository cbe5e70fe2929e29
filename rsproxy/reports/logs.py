"""The ``logs`` report: what the dev server supervised by ``rsproxy start -- CMD`` printed.

Its lines are ``process`` events (``{stream, line, pid, command, seq}``, see
rsproxy/processes/output.py), so past sessions are read from the store like any other report.
When the report runs in the daemon for its live session, the capture's ring adds the newest
lines the pipeline has not stored yet (those with a higher ``seq``), so ``rsproxy logs`` shows
a line as soon as the server printed it.

``grep`` is a regular expression searched in each line, in the store with DuckDB's RE2 (no
look-arounds or back-references), in the ring with Python's ``re``: keep to the syntax both share.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from rsproxy.errors import ReportError, StoreError
from rsproxy.reports import Params, ReportContext, report
from rsproxy.store import loads

MAX_TAIL = 10_000


class LogsParams(Params):
    session: str = Field(default="current", description="current, latest, latest-N, an id.")
    tail: int = Field(default=100, ge=1, le=MAX_TAIL, description="The last N lines.")
    grep: str | None = Field(default=None, description="Only lines matching this regex.")
    stream: Literal["stdout", "stderr"] | None = Field(
        default=None, description="Only this stream."
    )


def _compile(pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ReportError(
            f"bad --grep pattern {pattern!r}: {exc}. Use a regular expression such as "
            "'error|warn' or 'GET /api/'"
        ) from None


@report("logs", LogsParams)
def logs(ctx: ReportContext, p: LogsParams) -> dict[str, Any]:
    """The supervised dev server's stdout and stderr, oldest first, the last ``tail`` lines."""
    regex = _compile(p.grep)
    session = ctx.session(p.session)
    clauses = ["session_id = ?", "kind = 'process'"]
    params: list[Any] = [session]
    streams = [p.stream] if p.stream else ["stdout", "stderr"]
    clauses.append(f"json_extract_string(data, '$.stream') IN ({', '.join('?' for _ in streams)})")
    params.extend(streams)
    if p.grep is not None:
        clauses.append("regexp_matches(json_extract_string(data, '$.line'), ?)")
        params.append(p.grep)
    live = ctx.live is not None and session == ctx.current_session
    if live and ctx.cleared_ms is not None:
        clauses.append("ts >= ?")
        params.append(ctx.cleared_ms)
    try:
        rows = ctx.store.query(
            f"SELECT id, ts, data FROM generic_events WHERE {' AND '.join(clauses)} "
            "ORDER BY ts DESC, id DESC LIMIT ?",
            [*params, p.tail + 1],
        )
    except StoreError as exc:
        # The rest of the query is fixed, so with a pattern given the pattern is what failed.
        if p.grep is not None and "invalid input" in str(exc).lower():
            raise ReportError(
                f"bad --grep pattern {p.grep!r} for the store's RE2 engine (no look-arounds or "
                "back-references): " + str(exc)
            ) from None
        raise
    lines = [_line(row["ts"], loads(row["data"])) for row in rows]
    from_ring = _unstored_ring_lines(ctx, session, p.stream, regex) if live else []
    lines.extend(from_ring)
    lines.sort(key=lambda line: (line["ts"], line["seq"] or 0))
    truncated = len(lines) > p.tail
    lines = lines[-p.tail :]
    commands = sorted({line["command"] for line in lines if line["command"]})
    return {
        "session": session,
        "live": live,
        "commands": commands,
        "lines": lines,
        "returned": len(lines),
        "truncated": truncated,
        "from_ring": len(from_ring),
    }


def _line(ts: float, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "ts": ts,
        "stream": data.get("stream"),
        "line": data.get("line", ""),
        "pid": data.get("pid"),
        "seq": data.get("seq"),
        "command": data.get("command"),
        "truncated": bool(data.get("truncated")),
    }


def _unstored_ring_lines(
    ctx: ReportContext, session: str, stream: str | None, regex: re.Pattern[str] | None
) -> list[dict[str, Any]]:
    """Lines in the live capture's ring that the pipeline has not stored yet."""
    from rsproxy.processes.output import current

    capture = current()
    if capture is None:
        return []
    stored = ctx.store.query(
        "SELECT json_extract_string(data, '$.stream') AS stream, "
        "max(TRY_CAST(json_extract(data, '$.seq') AS BIGINT)) AS seq FROM generic_events "
        "WHERE session_id = ? AND kind = 'process' "
        "AND TRY_CAST(json_extract(data, '$.pid') AS BIGINT) = ? GROUP BY 1",
        [session, capture.pid],
    )
    newest = {row["stream"]: row["seq"] or 0 for row in stored}
    since = ctx.cleared_ms or 0.0
    found = []
    for line in capture.ring_lines(stream):
        if line.seq <= newest.get(line.stream, 0) or line.ts < since:
            continue
        if regex is not None and not regex.search(line.line):
            continue
        found.append(_line(line.ts, line.as_dict(capture.pid, capture.command)))
    return found
