"""``rsproxy ps``: the dev processes on this machine, and stopping them safely.

``rsproxy ps`` lists dev servers, watchers, runners, databases and tunnels by project, with their
ports, memory, CPU and uptime, and warns about memory hogs and stale servers;
``rsproxy ps kill PID``, ``rsproxy ps port N`` and ``rsproxy ps free-port N`` act under the
safety rules of rsproxy/processes/kill.py. The data is the MCP tools' (plain JSON with
``--json``); this module only prints it.
"""

from __future__ import annotations

import shutil
import time
from enum import StrEnum
from typing import Annotated, Any

import typer

from rsproxy.cli import JsonOption, fail, print_json
from rsproxy.errors import KillRefusedError, RsproxyError

ps_app = typer.Typer(
    help="List the dev processes on this machine by project (dev servers, watchers, runners, "
    "databases, tunnels, rsproxy itself), and stop them safely.",
    invoke_without_command=True,
)


class SignalName(StrEnum):
    TERM = "TERM"
    KILL = "KILL"


SignalOption = Annotated[
    SignalName,
    typer.Option(
        "--signal",
        "-s",
        case_sensitive=False,
        help="TERM asks the process to exit (KILL follows after the grace period); KILL ends it "
        "at once.",
    ),
]
ForceOption = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Also stop a process rsproxy does not recognise as a dev process. Never lifts the "
        "other rules (PID 1, other users' processes, rsproxy itself, your own shell).",
    ),
]
GraceOption = Annotated[
    float,
    typer.Option("--grace", min=0.0, max=120.0, help="Seconds between TERM and KILL."),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Check the rules and say what would stop; send nothing.")
]


def _megabytes(n: int | None) -> str:
    if n is None:
        return "-"
    if n >= 2**30:
        return f"{n / 2**30:.1f} GB"
    return f"{n / 2**20:.0f} MB"


def _uptime(seconds: float) -> str:
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m" if minutes else f"{int(seconds)}s"


def _print_entries(entries: list[dict[str, Any]], width: int) -> None:
    typer.echo(f"  {'PID':>7}  {'TYPE':18} {'PORTS':13} {'MEMORY':>8} {'CPU':>6} {'UP':>6}  WHAT")
    for e in entries:
        ports = ",".join(str(p) for p in e["ports"]) or "-"
        cpu = f"{e['cpu_percent']:.1f}%" if e["cpu_percent"] is not None else "-"
        flags = []
        if e["memory_warning"]:
            flags.append(f"[{e['memory_warning']} memory]")
        if e["stale"]:
            flags.append("[stale]")
        if e["helpers"]:
            flags.append(f"(+{len(e['helpers'])} helper{'s' if len(e['helpers']) > 1 else ''})")
        head = (
            f"  {e['pid']:>7}  {e['type'][:18]:18} {ports[:13]:13} {_megabytes(e['tree_rss_bytes']):>8} "
            f"{cpu:>6} {_uptime(e['uptime_s']):>6}  "
        )
        what = " ".join([e["label"], *flags, "—", e["command"]])
        room = max(20, width - len(head))
        typer.echo(head + (what if len(what) <= room else what[: room - 1] + "…"))


def _print_scan(result: dict[str, Any]) -> None:
    width = shutil.get_terminal_size((140, 24)).columns
    if not result["projects"] and not result["unassociated"]:
        typer.echo("no dev processes found (`rsproxy ps --all` lists every process)")
    for group in result["projects"]:
        where = f"  {group['root']}" if group.get("root") else ""
        typer.secho(
            f"project {group['name']}{where}  ({_megabytes(group['tree_rss_bytes'])})", bold=True
        )
        _print_entries(group["processes"], width)
    if result["unassociated"]:
        typer.secho("not in a project", bold=True)
        _print_entries(result["unassociated"], width)
    for warning in result["warnings"]:
        color = typer.colors.RED if warning["level"] == "critical" else typer.colors.YELLOW
        typer.secho(f"warning: {warning['message']}", fg=color)
    counts = result["counts"]
    typer.echo(
        f"{counts['dev_processes']} dev processes among {counts['processes_seen']} "
        f"(scan took {result['duration_ms']:.0f} ms)"
    )


@ps_app.callback()
def ps(
    ctx: typer.Context,
    as_json: JsonOption = False,
    show_all: Annotated[
        bool,
        typer.Option("--all", "-a", help="Also list processes that are not dev processes."),
    ] = False,
) -> None:
    """List the dev processes on this machine, grouped by project.

    Each shows its type, listening ports, memory (with its helper processes), CPU over the scan,
    uptime and command line. Warnings flag more than 500 MB or 1 GB of memory, and dev servers
    that had no traffic through rsproxy and no file changes in their project for 30 minutes.
    """
    if ctx.invoked_subcommand is not None:
        return
    from rsproxy.processes import scan

    result = scan(include_all=show_all)
    if as_json:
        print_json(result)
    else:
        _print_scan(result)


def _refused(exc: RsproxyError, as_json: bool) -> typer.Exit:
    if as_json and isinstance(exc, KillRefusedError):
        print_json(exc.as_dict())
        return typer.Exit(1)
    return fail(str(exc))


def _print_stopped(result: dict[str, Any]) -> None:
    what = f"{result['label']} (pid {result['pid']})"
    if result.get("dry_run"):
        tree = result["tree"]
        extra = f" and {len(tree) - 1} child process(es)" if len(tree) > 1 else ""
        typer.echo(f"would send {result['signal']} to {what}{extra}: {result['command']}")
        return
    how = f"{result['signal']}, then KILL" if result["escalated_to_kill"] else result["signal"]
    if result["ok"]:
        typer.echo(
            f"stopped {what} with {how} in {result['duration_ms']:.0f} ms"
            + (
                f" (with {len(result['stopped']) - 1} child process(es))"
                if len(result["stopped"]) > 1
                else ""
            )
        )
    else:
        typer.secho(
            f"{what} got {how} but pids {result['still_running']} are still running",
            fg=typer.colors.RED,
        )


@ps_app.command("kill")
def kill_command(
    pid: Annotated[int, typer.Argument(help="The process id, as `rsproxy ps` shows it.")],
    signal: SignalOption = SignalName.TERM,
    force: ForceOption = False,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="What you expect the process to be (a type such as vite, its project, or "
            "rsproxy); required to stop rsproxy itself.",
        ),
    ] = None,
    grace: GraceOption = 5.0,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Stop a dev process and its helpers: TERM, then KILL after the grace period.

    Refused: PID 1, your own shell or agent, other users' processes, rsproxy itself unless
    asked for by --name, and processes that are not dev processes unless --force.
    """
    from rsproxy.processes import kill

    try:
        result = kill(pid, signal.value, force=force, name=name, grace_s=grace, dry_run=dry_run)
    except RsproxyError as exc:
        raise _refused(exc, as_json) from None
    if as_json:
        print_json(result)
    else:
        _print_stopped(result)
    if not result.get("dry_run") and not result["ok"]:
        raise typer.Exit(1)


@ps_app.command("port")
def port_command(
    port: Annotated[int, typer.Argument(help="A TCP port number.")],
    as_json: JsonOption = False,
) -> None:
    """Show which process listens on a TCP port (on any address)."""
    from rsproxy.processes import port_owner

    try:
        result = port_owner(port)
    except RsproxyError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print_json(result)
        return
    if not result["in_use"]:
        typer.echo(f"port {port} is free")
        return
    for owner in result["owners"]:
        addresses = ", ".join(owner["addresses"])
        if owner["pid"] is None:
            typer.echo(f"port {port} ({addresses}): {owner['message']}")
            continue
        project = f", project {owner['project']['name']}" if owner["project"] else ""
        part = f", part of pid {owner['part_of']}" if owner["part_of"] else ""
        kind = owner["label"] if owner["dev"] else "not a dev process"
        typer.echo(
            f"port {port} ({addresses}): pid {owner['pid']} {owner['name']} — {kind}{part}"
            f"{project}, user {owner['user']}\n    {owner['command']}"
        )


@ps_app.command("free-port")
def free_port_command(
    port: Annotated[int, typer.Argument(help="The TCP port to free.")],
    signal: SignalOption = SignalName.TERM,
    force: ForceOption = False,
    grace: GraceOption = 5.0,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Stop whatever listens on a TCP port, under the same rules as `rsproxy ps kill`.

    The whole dev process holding the port is stopped (a reloader, not only its worker, so
    nothing restarts it); every holder is checked before anything is signalled.
    """
    from rsproxy.processes import free_port

    started = time.monotonic()
    try:
        result = free_port(port, signal.value, force=force, grace_s=grace, dry_run=dry_run)
    except RsproxyError as exc:
        raise _refused(exc, as_json) from None
    if as_json:
        print_json(result)
    elif not result["was_in_use"]:
        typer.echo(f"port {port} is already free")
    elif result.get("dry_run"):
        for plan in result["would_stop"]:
            _print_stopped({**plan, "dry_run": True, "signal": signal.value})
    else:
        for stopped in result["stopped"]:
            _print_stopped(stopped)
        state = "free" if result["freed"] else "STILL IN USE"
        typer.echo(f"port {port} is {state} ({(time.monotonic() - started) * 1000:.0f} ms)")
    if not result.get("dry_run") and not result["freed"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(ps_app, name="ps")
