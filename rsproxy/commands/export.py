"""``rsproxy export``: a captured session written out in a format other tools read.

``rsproxy export --har [--session ID] [-o FILE]`` writes the session as HAR 1.2 (the
``export_har`` report, rsproxy/reports/export.py): to stdout, or atomically to FILE (a temporary
file in the same folder, renamed over it, so a reader never sees half a HAR). A one-line summary
goes to stderr either way, so stdout stays a clean document for a pipe. The format is a flag so
that other formats can join it; giving none is an error that lists the valid ones. Reads go
through the running daemon or, with none, the project's store (rsproxy/client.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from rsproxy.cli import ProjectOption, fail, write_atomically
from rsproxy.errors import RsproxyError
from rsproxy.project import Project

# flag -> (report, what it is called in messages); a new format is one more line here and a flag.
FORMATS: dict[str, tuple[str, str]] = {"--har": ("export_har", "HAR 1.2")}


def _report(project: str | None, name: str, **params: Any) -> Any:
    from rsproxy.client import open_reader

    try:
        reader = open_reader(Project.resolve(project))
        try:
            return reader.report(name, **params)
        finally:
            reader.close()
    except RsproxyError as exc:
        raise fail(str(exc)) from None


def export(
    har: Annotated[bool, typer.Option("--har", help="Write HAR 1.2 (pages, redacted bodies).")] = (
        False
    ),
    session: Annotated[
        str,
        typer.Option("--session", "-s", help="current, latest, latest-N, an id, or a git commit."),
    ] = "current",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of to stdout.")
    ] = None,
    no_bodies: Annotated[
        bool, typer.Option("--no-bodies", help="Leave request and response bodies out.")
    ] = False,
    project: ProjectOption = None,
) -> None:
    """Export a captured session for other tools: --har writes HAR 1.2."""
    chosen = [flag for flag, on in (("--har", har),) if on]
    if len(chosen) != 1:
        problem = "no format given" if not chosen else f"one format at a time, not {chosen}"
        raise fail(f"{problem}; choose one of: {', '.join(FORMATS)}", code=2)
    name, label = FORMATS[chosen[0]]
    document = _report(project, name, session=session, include_bodies=not no_bodies)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    log = document["log"]
    where = "stdout"
    if output is None:
        typer.echo(text, nl=False)
    else:
        try:
            write_atomically(output, text)
        except OSError as exc:
            raise fail(f"cannot write {label} to {output}: {exc}") from None
        where = str(output)
    truncated = " (truncated)" if log.get("_rsproxy", {}).get("truncated") else ""
    typer.echo(
        f"exported {label}: {len(log['entries'])} entries{truncated}, {len(log['pages'])} pages "
        f"-> {where}",
        err=True,
    )


def register(app: typer.Typer) -> None:
    app.command("export")(export)
