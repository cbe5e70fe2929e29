"""Named read-only reports over a project's store, shared by the CLI, the local API and MCP.

A report is a function ``fn(ctx, params) -> JSON-able value`` registered under a name with a
pydantic model for its parameters. The CLI and the MCP server never query the store themselves:
they call ``reader.report(name, **params)`` (rsproxy/client.py), which runs the report in the
daemon (``POST /api/report/<name>``) when one is running, or here on the store opened
read-only when none is. So a report is written once and answers the same everywhere.

Each module in ``MODULES`` registers its reports with ``@report``; add a module there to make
its reports known.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from rsproxy.errors import ReportError
from rsproxy.store import Store

MODULES: tuple[str, ...] = (
    "sessions",
    "events",
    "logs",
    "issues",
    "catalog",
    "api_changes",
    "export",
)


class Params(BaseModel):
    """Base of every report's parameter model: unknown parameters are an error."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class ReportContext:
    """Where a report runs: the store, and the live session when a daemon runs it."""

    store: Store
    current_session: str | None = None
    live: dict[str, Any] | None = None  # the daemon's status when a daemon runs the report
    cleared_ms: float | None = None  # `clear_events`: the live session is read from here on

    def session(self, ref: str | None) -> str:
        """A session id from a reference: ``current``, ``latest``, ``latest-N``, an id, a
        unique id prefix, or a git commit (prefix) the session was captured at."""
        return resolve_session(self.store, ref or "current", self.current_session)


@dataclass(frozen=True)
class ReportSpec:
    name: str
    params: type[Params]
    fn: Callable[[ReportContext, Any], Any]
    summary: str


REPORTS: dict[str, ReportSpec] = {}
_loaded = False


def report(name: str, params: type[Params] = Params) -> Callable[[Callable[..., Any]], Any]:
    def register(fn: Callable[[ReportContext, Any], Any]) -> Callable[[ReportContext, Any], Any]:
        if name in REPORTS:
            raise RuntimeError(f"report {name!r} registered twice")
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        REPORTS[name] = ReportSpec(name, params, fn, summary)
        return fn

    return register


def load() -> dict[str, ReportSpec]:
    global _loaded
    if not _loaded:
        for module in MODULES:
            importlib.import_module(f"rsproxy.reports.{module}")
        _loaded = True
    return REPORTS


def run(name: str, ctx: ReportContext, params: dict[str, Any]) -> Any:
    """Validate ``params`` against the report's model and run it."""
    reports = load()
    spec = reports.get(name)
    if spec is None:
        known = ", ".join(sorted(reports)) or "none"
        raise ReportError(f"no report named {name!r}; known reports: {known}")
    try:
        parsed = spec.params(**params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'params'}: {err['msg']}"
            for err in exc.errors()
        )
        valid = ", ".join(spec.params.model_fields) or "none"
        raise ReportError(
            f"bad parameters for report {name!r}: {problems}. Valid parameters: {valid}"
        ) from None
    return spec.fn(ctx, parsed)


def resolve_session(store: Store, ref: str, current: str | None = None) -> str:
    if ref == "current":
        if current is not None:
            return current
        ref = "latest"
    rows = store.query("SELECT id, git_commit FROM sessions ORDER BY started_ms DESC")
    if not rows:
        raise ReportError("the store has no sessions yet; capture one with `rsproxy start`")
    if ref == "latest" or ref.startswith("latest-"):
        back = 0
        if ref != "latest":
            try:
                back = int(ref.removeprefix("latest-"))
            except ValueError:
                back = -1
        if back < 0:
            raise ReportError(f"bad session {ref!r}: use latest or latest-N with N a number")
        if back >= len(rows):
            raise ReportError(f"no session {ref!r}: the store holds {len(rows)} session(s)")
        return str(rows[back]["id"])
    exact = [r["id"] for r in rows if r["id"] == ref]
    if exact:
        return str(exact[0])
    matches = [r["id"] for r in rows if r["id"].startswith(ref)]
    if not matches and len(ref) >= 4:
        # Newest first, so a commit captured twice means its latest session.
        matches = [r["id"] for r in rows if (r["git_commit"] or "").startswith(ref)][:1]
    if len(matches) == 1:
        return str(matches[0])
    if matches:
        raise ReportError(f"session {ref!r} is ambiguous: {', '.join(matches[:5])}")
    raise ReportError(
        f"no session {ref!r}; use an id (see `rsproxy sessions`), latest, latest-N, or a git commit"
    )
