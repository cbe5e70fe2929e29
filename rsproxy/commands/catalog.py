"""``rsproxy catalog``: the API the app talks to, as the ``catalog`` stage found it.

``rsproxy catalog`` prints the endpoints by service with calls, success rate, latency, statuses
and auth; ``--json`` prints the ``catalog`` report with the inferred contracts; ``--openapi FILE``
writes an OpenAPI 3.1 document (YAML when FILE ends in .yaml or .yml, else JSON) and
``--markdown FILE`` Markdown docs. ``rsproxy catalog services`` is the service map,
``rsproxy catalog health`` classes endpoints healthy, degraded or failing, and
``rsproxy catalog curl ENDPOINT`` prints a cURL command replaying a sample request. Reads go
through the running daemon or, with none, the project's store (rsproxy/client.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rsproxy.analysis.openapi import document_text
from rsproxy.cli import JsonOption, ProjectOption, fail, print_json, write_atomically
from rsproxy.errors import RsproxyError
from rsproxy.project import Project

catalog_app = typer.Typer(
    help="The API endpoints the app calls, their contracts, health and docs.",
    invoke_without_command=True,
)

SessionOption = Annotated[
    str,
    typer.Option("--session", "-s", help="current, latest, latest-N, an id, or a git commit."),
]
ServiceOption = Annotated[
    str | None, typer.Option("--service", help="Only this service (app, stripe, a host, ...).")
]


def _report(project: str | None, name: str, **params: Any) -> Any:
    from rsproxy.client import open_reader

    try:
        reader = open_reader(Project.resolve(project))
        try:
            return reader.report(name, **{k: v for k, v in params.items() if v is not None})
        finally:
            reader.close()
    except RsproxyError as exc:
        raise fail(str(exc)) from None


def _write(path: Path, text: str, what: str) -> None:
    try:
        write_atomically(path, text)
    except OSError as exc:
        raise fail(f"cannot write {what} to {path}: {exc}") from None
    typer.echo(f"wrote {what} to {path}", err=True)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}ms"


def _statuses(codes: dict[str, int]) -> str:
    return " ".join(f"{code}x{n}" for code, n in codes.items()) or "-"


@catalog_app.callback()
def catalog(
    ctx: typer.Context,
    project: ProjectOption = None,
    session: SessionOption = "current",
    service: ServiceOption = None,
    as_json: JsonOption = False,
    openapi: Annotated[
        Path | None,
        typer.Option("--openapi", help="Write an OpenAPI 3.1 document here (.json, .yaml)."),
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Write Markdown API docs here.")
    ] = None,
) -> None:
    """List the API endpoints by service, with calls, success rate, p50/p95, statuses and auth;
    --json adds the inferred request and response contracts."""
    if ctx.invoked_subcommand is not None:
        return
    if openapi is not None:
        document = _report(project, "openapi", session=session, service=service)
        paths = len(document.get("paths", {}))
        _write(openapi, document_text(document, openapi), f"OpenAPI 3.1 ({paths} paths)")
    if markdown is not None:
        docs = _report(project, "api_docs", session=session, service=service)
        _write(markdown, docs["markdown"], f"API docs ({docs['endpoints']} endpoints)")
    if (openapi is not None or markdown is not None) and not as_json:
        return
    answer = _report(project, "catalog", session=session, service=service)
    if as_json:
        print_json(answer)
        return
    _print(answer)


def _print(answer: dict[str, Any]) -> None:
    endpoints = answer["endpoints"]
    for note in answer.get("notes") or ():
        typer.secho(note, fg=typer.colors.YELLOW)
    if not endpoints:
        if not answer.get("notes"):
            typer.echo("no API endpoints catalogued yet")
        return
    services = len({e["service"] for e in endpoints})
    typer.echo(
        f"session {answer['session']}: {answer['count']} endpoints in {services} "
        f"service{'s' if services != 1 else ''}"
    )
    width = min(max(len(e["path_template"]) for e in endpoints), 60)
    current = None
    for e in endpoints:
        if e["service"] != current:
            current = e["service"]
            origins = ", ".join(e.get("origins") or e.get("hosts") or [])
            typer.echo("")
            typer.secho(f"{current}  {origins}", bold=True)
            typer.echo(
                f"  {'METHOD':7} {'PATH':{width}} {'CALLS':>6} {'OK':>5} {'P50':>8} {'P95':>8}  "
                "STATUS / AUTH"
            )
        rate = e.get("success_rate")
        color = None
        if rate is not None and rate < 0.5:
            color = typer.colors.RED
        elif rate is not None and rate < 0.95:
            color = typer.colors.YELLOW
        auth = ",".join(e.get("auth") or {}) or "-"
        typer.secho(
            f"  {e['method']:7} {e['path_template']:{width}} {e['calls']:>6} "
            f"{_percent(rate):>5} {_ms(e.get('p50_ms')):>8} {_ms(e.get('p95_ms')):>8}  "
            f"{_statuses(e.get('status_codes') or {})}  {auth}",
            fg=color,
        )
    if answer.get("truncated"):
        typer.echo(f"... {answer['count'] - len(endpoints)} more (use --json, or --service)")


@catalog_app.command("services")
def services(
    project: ProjectOption = None,
    session: SessionOption = "current",
    as_json: JsonOption = False,
) -> None:
    """The service map: each service the app calls, its hosts, endpoints, calls, errors, p95."""
    answer = _report(project, "service_map", session=session)
    if as_json:
        print_json(answer)
        return
    if not answer["services"]:
        typer.echo("no services catalogued yet")
        return
    typer.echo(
        f"{'SERVICE':24} {'ENDPOINTS':>9} {'CALLS':>7} {'ERRORS':>7} {'P95':>9}  HOSTS / AUTH"
    )
    for s in answer["services"]:
        typer.echo(
            f"{s['service']:24} {s['endpoints']:>9} {s['calls']:>7} "
            f"{_percent(s['error_rate']):>7} {_ms(s['p95_ms']):>9}  "
            f"{', '.join(s['hosts'])}  {','.join(s['auth'])}"
        )


@catalog_app.command("health")
def health(
    project: ProjectOption = None,
    session: SessionOption = "current",
    service: ServiceOption = None,
    as_json: JsonOption = False,
    slow_ms: Annotated[
        float, typer.Option("--slow-ms", help="A p95 above this is degraded.", min=1)
    ] = 1000.0,
) -> None:
    """Each endpoint classed failing, degraded or healthy, worst first, with the reasons."""
    answer = _report(project, "api_health", session=session, service=service, slow_ms=slow_ms)
    if as_json:
        print_json(answer)
        return
    summary = answer["summary"]
    typer.echo(", ".join(f"{summary[k]} {k}" for k in ("failing", "degraded", "healthy")))
    colors = {"failing": typer.colors.RED, "degraded": typer.colors.YELLOW}
    for e in answer["endpoints"]:
        reasons = "; ".join(e["reasons"])
        typer.secho(
            f"  {e['health']:9} {e['method']:7} {e['path_template']}  ({e['service']}, "
            f"{e['calls']} calls){'  ' + reasons if reasons else ''}",
            fg=colors.get(e["health"]),
        )


@catalog_app.command("curl")
def curl(
    endpoint: Annotated[
        str,
        typer.Argument(
            help="`GET /users/{userId}`, a template, a path such as /users/42, or a key."
        ),
    ],
    project: ProjectOption = None,
    session: SessionOption = "current",
    service: ServiceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print a cURL command that replays a sample request of an endpoint (secrets redacted)."""
    answer = _report(project, "curl", session=session, service=service, endpoint=endpoint)
    if as_json:
        print_json(answer)
        return
    typer.echo(f"# {answer['endpoint']} (event {answer['event_id']}); {answer['note']}", err=True)
    typer.echo(answer["command"])


def register(app: typer.Typer) -> None:
    app.add_typer(catalog_app, name="catalog")
