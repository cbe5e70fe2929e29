"""``rsproxy logs``: what the dev server started by ``rsproxy start -- CMD`` printed.

Reads the ``logs`` report (rsproxy/reports/logs.py): through the daemon while it runs (newest
lines included before the pipeline stores them), from the read-only store after it stopped.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated

import typer

from rsproxy.cli import JsonOption, ProjectOption, fail, print_json
from rsproxy.errors import RsproxyError
from rsproxy.project import Project


class StreamName(StrEnum):
    stdout = "stdout"
    stderr = "stderr"


def logs(
    project: ProjectOption = None,
    as_json: JsonOption = False,
    tail: Annotated[
        int, typer.Option("--tail", "-n", min=1, max=10_000, help="Show the last N lines.")
    ] = 100,
    grep: Annotated[
        str | None,
        typer.Option("--grep", "-g", help="Only lines matching this regular expression."),
    ] = None,
    stream: Annotated[
        StreamName | None, typer.Option("--stream", help="Only stdout or only stderr.")
    ] = None,
    session: Annotated[
        str,
        typer.Option("--session", help="current (or latest without a daemon), latest-N, an id."),
    ] = "current",
) -> None:
    """Show the stdout and stderr of the dev server `rsproxy start -- CMD` runs, oldest first.

    Works while rsproxy runs and after it stopped (from the project's store).
    """
    from rsproxy.client import open_reader

    try:
        reader = open_reader(Project.resolve(project))
        try:
            answer = reader.report(
                "logs",
                session=session,
                tail=tail,
                grep=grep,
                stream=stream.value if stream else None,
            )
        finally:
            reader.close()
    except RsproxyError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print_json(answer)
        return
    if not answer["lines"]:
        if grep or stream:
            typer.echo(f"no output lines match in session {answer['session']}")
        else:
            typer.echo(
                f"no dev-server output in session {answer['session']}: only "
                "`rsproxy start --target :PORT -- CMD` runs (and records) a command"
            )
        return
    if answer["truncated"]:
        typer.secho(f"… earlier lines left out (--tail {tail})", dim=True)
    for line in answer["lines"]:
        clock = time.strftime("%H:%M:%S", time.localtime(line["ts"] / 1000))
        tag = "err" if line["stream"] == "stderr" else "out"
        typer.echo(f"{clock} {tag} | {line['line']}")


def register(app: typer.Typer) -> None:
    app.command("logs")(logs)
