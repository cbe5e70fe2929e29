"""The ``rsproxy`` command line.

Every command that reads data takes ``--project`` (default: the current directory's project) and
``--json`` for machine-readable output. Errors rsproxy anticipates are printed as one clear
message and exit with status 1 (2 for invalid usage or an invalid pipeline file); a traceback
means a bug.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from rsproxy import __version__
from rsproxy.errors import (
    ConfigError,
    NotRunningError,
    PipelineError,
    RsproxyError,
)
from rsproxy.project import Project

app = typer.Typer(
    name="rsproxy",
    help="Local runtime observability for web apps: a capturing proxy, a browser probe, a "
    "pipeline, and queries for you and your coding agent.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
pipeline_app = typer.Typer(
    help="Check pipeline files and list the available stages.", no_args_is_help=True
)
app.add_typer(pipeline_app, name="pipeline")

ProjectOption = Annotated[
    str | None,
    typer.Option("--project", "-p", help="Project name (default: the git root's folder name)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as an error and return the Exit to raise."""
    typer.secho(f"rsproxy: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    logging.getLogger("rsproxy").setLevel(logging.DEBUG if verbose else logging.INFO)


# ---- start / stop / status --------------------------------------------------------------------


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
    epilog="Examples: rsproxy start --target :3000 · rsproxy start --target :5173 -- npm run dev "
    "· rsproxy start (the bundled demo app)",
)
def start(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            "-t",
            help="The dev server: :PORT, HOST:PORT or an http(s) URL. Without it, rsproxy "
            "serves its bundled demo app.",
        ),
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Proxy port (default: 8080 or the next free one).")
    ] = None,
    pipeline: Annotated[
        Path | None,
        typer.Option("--pipeline", help="Pipeline YAML file (default: the bundled one)."),
    ] = None,
    project: ProjectOption = None,
    body_limit: Annotated[
        int, typer.Option("--body-limit", help="Bytes of each body kept in captured events.", min=0)
    ] = 64 * 1024,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; keep 127.0.0.1 unless you must.")
    ] = "127.0.0.1",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    """Start the capturing proxy in front of a dev server (arguments after -- run that server)."""
    from rsproxy import daemon
    from rsproxy.pipeline.spec import default_pipeline_path

    _setup_logging(verbose)
    try:
        options = daemon.StartOptions(
            project=Project.resolve(project),
            pipeline_path=pipeline or default_pipeline_path(),
            target=target,
            port=port,
            host=host,
            command=list(ctx.args),
            body_limit=body_limit,
        )
        spec = daemon.check_start(options)
    except PipelineError as exc:
        raise fail(f"not starting: the pipeline is invalid.\n{exc}", 2) from None
    except ConfigError as exc:
        raise fail(str(exc), 2) from None
    except RsproxyError as exc:
        raise fail(str(exc)) from None

    def ready(state: Any) -> None:
        stages = " → ".join(spec.stage_types())
        typer.echo(f"rsproxy {__version__} · project {state.project} · session {state.session_id}")
        typer.echo(f"  proxying  {state.target}")
        typer.secho(f"  open      {state.proxy_url}", bold=True)
        typer.echo(f"  pipeline  {stages}  ({state.pipeline})")
        typer.echo(f"  store     {options.project.store_path}")
        typer.echo("Press Ctrl+C to stop.")
        sys.stdout.flush()

    try:
        asyncio.run(daemon.run(options, ready))
    except RsproxyError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        pass
    typer.echo("rsproxy stopped; the store is flushed.")


@app.command()
def stop(project: ProjectOption = None) -> None:
    """Stop the project's running daemon (it flushes its store first)."""
    from rsproxy.client import DaemonClient

    try:
        client = DaemonClient.for_project(Project.resolve(project))
    except RsproxyError as exc:
        raise fail(str(exc)) from None
    pid = client.state.pid
    try:
        client.post("/api/shutdown")
    except (RsproxyError, httpx.HTTPError):
        os.kill(pid, signal.SIGTERM)  # the API is wedged; the daemon still stops cleanly on TERM
    finally:
        client.close()
    deadline = time.monotonic() + 30
    while client.state.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    if client.state.alive():
        raise fail(f"the daemon (pid {pid}) has not stopped after 30 s")
    typer.echo(f"stopped rsproxy (pid {pid})")


@app.command()
def status(project: ProjectOption = None, as_json: JsonOption = False) -> None:
    """Show whether rsproxy runs for the project, and what it has captured."""
    from rsproxy.client import DaemonClient

    try:
        client = DaemonClient.for_project(Project.resolve(project))
    except NotRunningError as exc:
        if as_json:
            print_json({"running": False})
        else:
            typer.echo(str(exc))
        raise typer.Exit(1) from None
    except RsproxyError as exc:
        raise fail(str(exc)) from None
    try:
        info = client.status()
    except RsproxyError as exc:
        raise fail(str(exc)) from None
    finally:
        client.close()
    if as_json:
        print_json({"running": True, **info})
        return
    events = info["events"]
    pipeline = info["pipeline"]
    typer.echo(f"rsproxy is running for project {info['project']} (pid {info['pid']})")
    typer.echo(f"  open      {info['proxy_url']}  →  {info['target']}")
    typer.echo(f"  session   {info['session_id']}, up {info['uptime_s']} s")
    typer.echo(
        f"  events    {events['processed']} processed, {events['queued']} queued, "
        f"{events['dropped']} dropped; {info['captured_http']} HTTP exchanges"
    )
    typer.echo(
        f"  pipeline  {' → '.join(pipeline['stages'])} (reloaded {pipeline['reloads']} times)"
    )
    if pipeline["last_error"]:
        typer.secho(
            f"  last pipeline edit was rejected:\n{pipeline['last_error']}", fg=typer.colors.YELLOW
        )
    errors = {k: v["errors"] for k, v in pipeline["stage_stats"].items() if v["errors"]}
    if errors:
        typer.secho(f"  stage errors: {errors}", fg=typer.colors.YELLOW)


# ---- reading ------------------------------------------------------------------------------------


@app.command()
def requests(
    project: ProjectOption = None,
    as_json: JsonOption = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="How many.")] = 50,
    session: Annotated[
        str, typer.Option("--session", help="current (or latest without a daemon), all, or an id.")
    ] = "current",
) -> None:
    """List captured HTTP exchanges, newest first."""
    from rsproxy.client import open_reader

    try:
        reader = open_reader(Project.resolve(project))
        try:
            rows = reader.events(kinds=["http"], session=session, since_ms=None, limit=limit)
        finally:
            reader.close()
    except RsproxyError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no requests captured yet")
        return
    for row in reversed(rows):
        data = row["data"]
        when = time.strftime("%H:%M:%S", time.localtime(row["ts"] / 1000))
        total = (data.get("timings") or {}).get("total_ms")
        duration = f"{total:8.1f} ms" if isinstance(total, (int, float)) else "       - ms"
        status_text = str(data.get("status") or "ERR")
        path = data.get("path", "") + (f"?{data['query']}" if data.get("query") else "")
        typer.echo(f"{when}  {data.get('method', ''):6} {status_text:>3}  {duration}  {path}")


@app.command(name="exec")
def exec_in_page(
    code: Annotated[str, typer.Argument(help="JavaScript to run, e.g. 'document.title'.")],
    project: ProjectOption = None,
    page_id: Annotated[
        str | None,
        typer.Option("--page", help="The page_id to run in (default: most recently active page)."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the page.", min=0.001, max=60)
    ] = 5.0,
    as_json: JsonOption = False,
) -> None:
    """Run JavaScript in a page opened through the proxy and print its result (Promises awaited)."""
    from rsproxy.client import DaemonClient

    try:
        client = DaemonClient.for_project(Project.resolve(project))
        try:
            result = client.post(
                "/api/exec",
                {"code": code, "page_id": page_id, "timeout_ms": int(timeout * 1000)},
                timeout=timeout + 5,
            )
        finally:
            client.close()
    except RsproxyError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print_json(result)
    elif result["ok"]:
        typer.echo(json.dumps(result.get("value"), indent=2, default=str))
    else:
        error = result.get("error") or {}
        typer.secho(
            f"{error.get('name', 'Error')}: {error.get('message', '')} (page {result['page_id']})",
            err=True,
            fg=typer.colors.RED,
        )
    if not result["ok"]:
        raise typer.Exit(1)


# ---- pipeline -----------------------------------------------------------------------------------


@pipeline_app.command("validate")
def pipeline_validate(
    file: Annotated[Path, typer.Argument(help="The pipeline YAML file.")],
) -> None:
    """Check a pipeline file and print every problem with its place."""
    from rsproxy.pipeline.spec import load_spec

    try:
        spec = load_spec(file)
    except PipelineError as exc:
        raise fail(str(exc), 2) from None
    typer.echo(f"{file}: valid ({' → '.join(spec.stage_types())})")


@pipeline_app.command("stages")
def pipeline_stages(as_json: JsonOption = False) -> None:
    """List the available stages with their config keys and an example."""
    from rsproxy.pipeline.registry import default_registry

    registry = default_registry()
    described = [registry.get(name).describe() for name in registry.names()]  # type: ignore[union-attr]
    if as_json:
        print_json(described)
        return
    for info in described:
        typer.secho(f"{info['name']}", bold=True, nl=False)
        typer.echo(f" — {info['summary']}")
        props = info["config_schema"].get("properties", {})
        for key, prop in props.items():
            kind = prop.get("type") or " | ".join(
                p.get("type", "?") for p in prop.get("anyOf", []) if isinstance(p, dict)
            )
            if not kind and "$ref" in prop:  # a nested settings object (detect's thresholds)
                kind = "object"
            default = prop.get("default")
            shown = f" (default {json.dumps(default)})" if default not in (None, []) else ""
            typer.echo(f"    {key}: {kind}{shown} — {prop.get('description', '')}")
        typer.echo("  example:")
        for line in info["example"].splitlines():
            typer.echo(f"    {line}")
        typer.echo()
    if registry.broken:
        for name, why in registry.broken.items():
            typer.secho(f"{name} (unusable): {why}", fg=typer.colors.YELLOW)


@app.command()
def version() -> None:
    """Print rsproxy's version."""
    typer.echo(__version__)


def main() -> None:
    app()


# Commands in rsproxy/commands/, registered last: they import the options above from here.
from rsproxy.commands import register as _register_commands  # noqa: E402

_register_commands(app)
