"""``rsproxy sessions`` (the captures of a project) and ``rsproxy sessions diff A B``."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from rsproxy.cli import JsonOption, ProjectOption, fail, print_json
from rsproxy.errors import RsproxyError
from rsproxy.project import Project

sessions_app = typer.Typer(
    help="List the project's sessions, or compare two of them.",
    invoke_without_command=True,
)


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


def _when(ms: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ms / 1000)) if ms else "-"


@sessions_app.callback()
def sessions(
    ctx: typer.Context,
    project: ProjectOption = None,
    as_json: JsonOption = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=500, help="How many.")] = 20,
) -> None:
    """List the project's sessions, newest first (`rsproxy sessions diff A B` compares two)."""
    if ctx.invoked_subcommand is not None:
        return
    answer = _report(project, "sessions", limit=limit)
    if as_json:
        print_json(answer)
        return
    rows = answer["sessions"]
    if not rows:
        typer.echo("no sessions yet: run `rsproxy start` or `rsproxy replay FILE.har`")
        return
    typer.echo(
        f"{'#':>3}  {'session':32}  {'started':16}  {'source':7} {'commit':8}  "
        f"{'events':>7} {'requests':>8} {'issues':>6}"
    )
    for n, row in enumerate(rows):
        commit = (row.get("git_commit") or "-")[:7] + ("*" if row.get("git_dirty") else "")
        live = "  (live)" if row.get("live") else ""
        ref = "latest" if n == 0 else f"latest-{n}"
        typer.echo(
            f"{ref:>8}  {row['id']:32}  {_when(row['started_ms']):16}  {row['source'] or '-':7} "
            f"{commit:8}  {row['events']:>7} {row['requests']:>8} {row['issues']:>6}{live}"
        )


@sessions_app.command("diff")
def diff(
    a: Annotated[
        str, typer.Argument(help="Earlier session: an id, latest-N, or a git commit.")
    ] = "latest-1",
    b: Annotated[str, typer.Argument(help="Later session (default: latest).")] = "latest",
    project: ProjectOption = None,
    as_json: JsonOption = False,
    all_metrics: Annotated[
        bool, typer.Option("--all", help="Also list the metrics that did not change.")
    ] = False,
    latency_rel: Annotated[
        float, typer.Option(help="A latency must change by this fraction to count.")
    ] = 0.2,
    latency_abs_ms: Annotated[
        float, typer.Option(help="... and by this many milliseconds.")
    ] = 25.0,
) -> None:
    """Compare two sessions: latency and errors per endpoint, renders per component, queries,
    web vitals, console errors and issues, each classed as regression, improvement or unchanged."""
    answer = _report(
        project,
        "session_diff",
        a=a,
        b=b,
        include_unchanged=all_metrics,
        latency_rel=latency_rel,
        latency_abs_ms=latency_abs_ms,
    )
    if as_json:
        print_json(answer)
        return
    counts = answer["counts"]
    typer.echo(
        f"{answer['a']['id']} -> {answer['b']['id']}: "
        + ", ".join(f"{counts.get(c, 0)} {c}" for c in ("regression", "improvement", "new", "gone"))
    )
    colors = {"regression": typer.colors.RED, "improvement": typer.colors.GREEN}
    for change in answer["changes"]:
        before = "-" if change["a"] is None else f"{change['a']:g}"
        after = "-" if change["b"] is None else f"{change['b']:g}"
        typer.secho(
            f"  {change['change']:11} {change['area']:13} {change['metric']:18} "
            f"{before:>10} -> {after:<10} {change['key']}",
            fg=colors.get(change["change"]),
        )


def register(app: typer.Typer) -> None:
    app.add_typer(sessions_app, name="sessions")
