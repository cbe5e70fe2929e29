"""``rsproxy mcp``: run the stdio MCP server, or print how to register it with a client."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from typing import Annotated

import typer

from rsproxy.cli import ProjectOption


def mcp(
    project: ProjectOption = None,
    print_config: Annotated[
        bool,
        typer.Option(
            "--print-config", help="Print the `claude mcp add` command and a JSON config."
        ),
    ] = False,
) -> None:
    """Serve rsproxy's tools to an MCP client (Claude Code and others) over stdio."""
    if print_config:
        found = shutil.which("rsproxy")
        command, *rest = [found] if found else [sys.executable, "-m", "rsproxy"]
        args = [*rest, "mcp", *(["--project", project] if project else [])]
        typer.echo("Claude Code:")
        typer.echo(f"  claude mcp add rsproxy -- {shlex.join([command, *args])}")
        typer.echo("\nOther MCP clients (mcpServers JSON):")
        block = {"mcpServers": {"rsproxy": {"command": command, "args": args}}}
        typer.echo(json.dumps(block, indent=2))
        return
    from rsproxy import mcp_server

    mcp_server.default_project = project
    mcp_server.main()


def register(app: typer.Typer) -> None:
    app.command(name="mcp")(mcp)
