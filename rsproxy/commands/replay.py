"""``rsproxy replay FILE``: a HAR or mitmproxy flow file through the pipeline, offline.

The file becomes a new session in the project's store (rsproxy/replay) — written by the running
daemon when there is one, since it holds the store — so `rsproxy issues`, `catalog` and the MCP
tools query it afterwards like a live capture. The command then
prints what the replay read and skipped, the top issues and the API catalog, read back through
the same reports the other commands use; ``--json`` prints them as one object.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rsproxy.cli import ProjectOption, fail, print_json, write_atomically
from rsproxy.errors import PipelineError, RsproxyError
from rsproxy.project import Project

if TYPE_CHECKING:
    from rsproxy.replay import ReplaySummary

_COLORS = {"high": typer.colors.RED, "medium": typer.colors.YELLOW, "low": typer.colors.BLUE}
TOP_ISSUES = 10


def replay(
    file: Annotated[
        Path,
        typer.Argument(
            help="A HAR file (1.1 or 1.2, from a browser, Charles, Fiddler, HTTP Toolkit, "
            "mitmproxy...) or a mitmproxy flow file (`mitmdump -w FILE`).",
            show_default=False,
        ),
    ],
    pipeline: Annotated[
        Path | None,
        typer.Option("--pipeline", help="Pipeline YAML file (default: the bundled one)."),
    ] = None,
    project: ProjectOption = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON object: session_id, summary (read, replayed, skipped and why), "
            "catalog, issues.",
        ),
    ] = False,
    openapi: Annotated[
        Path | None,
        typer.Option(
            "--openapi",
            help="Also write the replayed API as an OpenAPI 3.1 document to this file "
            "(YAML for .yaml/.yml, JSON otherwise).",
        ),
    ] = None,
    body_limit: Annotated[
        int, typer.Option("--body-limit", help="Bytes of each body kept in the events.", min=0)
    ] = 64 * 1024,
) -> None:
    """Replay a HAR or mitmproxy flow file through the pipeline into a new session, then print
    its issues and API catalog.

    Entries the file cannot give (no method, no URL, no date) are skipped and counted with the
    reason; a file that is not a usable HAR or flow file (not JSON, truncated, HAR version other
    than 1.1/1.2) stops the replay with the position of the problem, and nothing is stored.
    While `rsproxy start` runs for the project, the daemon does the replay (it holds the store)
    with the daemon's pipeline unless --pipeline is given.
    """
    from rsproxy.client import open_reader
    from rsproxy.replay import replay as run_replay
    from rsproxy.replay.run import skip_lines
    from rsproxy.state import DaemonState

    try:
        resolved = Project.resolve(project)
        if DaemonState.read(resolved.state_path) is not None:
            summary = _replay_through_daemon(file, resolved, pipeline, body_limit)
        else:
            summary = _replay_with_progress(file, resolved, pipeline, body_limit, run_replay)
        reader = open_reader(resolved)
        try:
            sid = summary.session_id
            catalog = reader.report("catalog", session=sid, contracts=False, limit=5000)
            issues = reader.report("issues", session=sid, limit=500, evidence_events=1)
            spec = reader.report("openapi", session=sid) if openapi is not None else None
        finally:
            reader.close()
    except KeyboardInterrupt:
        raise fail(
            "interrupted: the partial replay was rolled back, nothing was stored", 130
        ) from None
    except PipelineError as exc:
        raise fail(f"not replaying: the pipeline is invalid.\n{exc}", 2) from None
    except RsproxyError as exc:
        raise fail(str(exc)) from None
    if openapi is not None:
        _write_openapi(openapi, spec)
    if as_json:
        print_json(
            {
                "session_id": summary.session_id,
                "summary": summary.to_dict(),
                "catalog": [_with_host(e) for e in catalog["endpoints"]],
                "issues": issues["issues"],
            }
        )
        return
    typer.secho(
        f"replayed {summary.file} ({summary.format}"
        + (f", HAR {summary.har_version}" if summary.har_version else "")
        + (f", from {summary.creator}" if summary.creator else "")
        + f") into session {summary.session_id} of project {summary.project}",
        bold=True,
    )
    typer.echo(
        f"  {summary.read} entries read, {summary.replayed} replayed, {summary.skipped} skipped"
        f"; {summary.events} events in {summary.elapsed_s:.2f} s"
    )
    for line in skip_lines(summary):
        typer.secho(f"  skipped {line}", fg=typer.colors.YELLOW)
    if openapi is not None:
        typer.echo(f"  OpenAPI written to {openapi}")
    _print_issues(issues)
    _print_catalog(catalog)
    typer.echo(
        f"\nQuery it further: rsproxy issues --session {summary.session_id} "
        f"--project {summary.project}"
    )


def _replay_through_daemon(
    file: Path, project: Project, pipeline: Path | None, body_limit: int
) -> ReplaySummary:
    """The running daemon holds the store, so it replays (between its live batches). The file
    and pipeline are checked here first, so their errors read as they do without a daemon."""
    from rsproxy.client import DaemonClient
    from rsproxy.pipeline.spec import load_spec
    from rsproxy.replay import ReplaySummary, detect_format

    detect_format(file)
    if pipeline is not None:
        load_spec(pipeline)
    if sys.stderr.isatty():
        typer.echo(f"replaying {file.name} through the running daemon...", err=True)
    client = DaemonClient.for_project(project)
    try:
        answer = client.post(
            "/api/replay",
            {
                "path": str(file.resolve()),
                "pipeline": str(pipeline.resolve()) if pipeline is not None else None,
                "body_limit": body_limit,
            },
            timeout=24 * 3600,  # as long as the file takes; Ctrl+C stops waiting
        )
    finally:
        client.close()
    return ReplaySummary(**answer)


def _replay_with_progress(
    file: Path,
    project: Project,
    pipeline: Path | None,
    body_limit: int,
    run: Callable[..., ReplaySummary],
) -> ReplaySummary:
    """Run the replay with a progress bar (bytes of the file) on stderr, if that is a terminal."""
    if not sys.stderr.isatty():
        return run(file, project, pipeline_path=pipeline, body_limit=body_limit)
    size = file.stat().st_size if file.is_file() else 0
    with typer.progressbar(
        length=size, label=f"replaying {file.name}", file=sys.stderr, show_eta=False
    ) as bar:
        done = 0

        def advance(position: int) -> None:
            nonlocal done
            bar.update(max(position - done, 0))
            done = max(done, position)

        return run(file, project, pipeline_path=pipeline, body_limit=body_limit, progress=advance)


def _with_host(endpoint: dict[str, Any]) -> dict[str, Any]:
    """The endpoint with ``host`` beside ``hosts``: the host it was called on (the first, when an
    app's endpoint answered on several, e.g. localhost and 127.0.0.1)."""
    hosts = endpoint.get("hosts") or []
    keys = ("key", "service", "method", "path_template")
    named: dict[str, Any] = {k: endpoint[k] for k in keys if k in endpoint}
    return {**named, "host": hosts[0] if hosts else None, **endpoint}


def _write_openapi(path: Path, spec: Any) -> None:
    from rsproxy.analysis.openapi import document_text

    try:
        write_atomically(path, document_text(spec, path))
    except OSError as exc:
        raise fail(f"cannot write the OpenAPI document to {path}: {exc.strerror or exc}") from None


def _print_issues(answer: dict[str, Any]) -> None:
    found = answer["issues"]
    typer.echo("")
    if not found:
        typer.echo("no issues found")
        return
    shown = f", top {TOP_ISSUES}" if len(found) > TOP_ISSUES else ""
    typer.secho(f"{answer['total']} issue(s){shown}:", bold=True)
    for issue in found[:TOP_ISSUES]:
        typer.secho(
            f"  {issue['severity'].upper():6} {issue['title']}", fg=_COLORS.get(issue["severity"])
        )
        typer.echo(f"         {issue['detector']} · seen {issue['count']}x · fix: ", nl=False)
        typer.echo(issue["suggestion"])


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _print_catalog(answer: dict[str, Any]) -> None:
    endpoints = answer["endpoints"]
    typer.echo("")
    if not endpoints:
        typer.echo("no API endpoints catalogued" + "".join(f"; {n}" for n in answer["notes"]))
        return
    typer.secho(f"API catalog: {len(endpoints)} endpoint(s)", bold=True)
    typer.echo(
        f"  {'SERVICE':14} {'METHOD':7} {'PATH':40} {'CALLS':>6} {'P50':>8} {'P95':>8}  STATUS"
    )
    for e in endpoints:
        codes = ", ".join(f"{code}x{n}" for code, n in sorted(e["status_codes"].items()))
        typer.echo(
            f"  {e['service'][:14]:14} {e['method']:7} {e['path_template']:40} {e['calls']:>6} "
            f"{_ms(e['p50_ms']):>8} {_ms(e['p95_ms']):>8}  {codes}"
        )


def register(app: typer.Typer) -> None:
    app.command(
        "replay",
        epilog="Examples: rsproxy replay session.har · rsproxy replay flows.mitm --json · "
        "rsproxy replay bug.har --project scratch --openapi api.yaml",
    )(replay)
