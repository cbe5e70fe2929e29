"""``rsproxy issues``: what the detectors found in a session, worst first, with the evidence.

Reads the ``issues`` report (rsproxy/reports/issues.py) through the running daemon or, with none
running, from the project's store; ``--json`` prints the report as it stands.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from rsproxy.cli import JsonOption, ProjectOption, fail, print_json
from rsproxy.errors import RsproxyError
from rsproxy.project import Project

_COLORS = {"high": typer.colors.RED, "medium": typer.colors.YELLOW, "low": typer.colors.BLUE}


def issues(
    project: ProjectOption = None,
    session: Annotated[
        str,
        typer.Option("--session", "-s", help="current, latest, latest-N, an id, or a git commit."),
    ] = "current",
    as_json: JsonOption = False,
    severity: Annotated[
        list[str] | None,
        typer.Option("--severity", help="Only this severity (high, medium, low); repeatable."),
    ] = None,
    detector: Annotated[
        list[str] | None,
        typer.Option("--detector", "-d", help="Only this detector, e.g. slow_request; repeatable."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=500, help="How many.")] = 50,
) -> None:
    """List the issues found in a session: failing, slow and N+1 requests, error spam, long
    tasks, poor web vitals, store thrashing, wasted renders, slow queries, ..."""
    from rsproxy.client import open_reader

    params: dict[str, Any] = {"session": session, "limit": limit}
    if severity:
        params["severity"] = severity
    if detector:
        params["detector"] = detector
    try:
        reader = open_reader(Project.resolve(project))
        try:
            answer = reader.report("issues", **params)
        finally:
            reader.close()
    except RsproxyError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print_json(answer)
        return
    _print(answer)


def _print(answer: dict[str, Any]) -> None:
    found = answer["issues"]
    counts = ", ".join(f"{n} {name}" for name, n in answer["by_severity"].items() if n)
    if not found:
        typer.echo(f"session {answer['session']}: no issues found")
        return
    more = f" (showing {len(found)})" if answer["total"] > len(found) else ""
    typer.echo(f"session {answer['session']}: {answer['total']} issue(s), {counts}{more}")
    for issue in found:
        when = time.strftime("%H:%M:%S", time.localtime(issue["last_seen"] / 1000))
        typer.echo("")
        typer.secho(
            f"{issue['severity'].upper():6}  {issue['title']}", fg=_COLORS.get(issue["severity"])
        )
        typer.echo(
            f"        {issue['detector']} · seen {issue['count']}x, last at {when} · {issue['id']}"
        )
        typer.echo(f"        {issue['explanation']}")
        typer.echo(f"        fix: {issue['suggestion']}")
        if issue["pages"]:
            typer.echo(f"        pages: {', '.join(issue['pages'][:3])}")
        for event in issue["evidence_events"]:
            typer.echo(f"        evidence {event['id']}: {event['summary']}")
        rest = len(issue["evidence"]) - len(issue["evidence_events"])
        if rest > 0:
            typer.echo(f"        ... and {rest} more evidence event(s) (--json lists them)")


def register(app: typer.Typer) -> None:
    app.command("issues")(issues)
