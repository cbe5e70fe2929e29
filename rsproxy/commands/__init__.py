"""CLI commands that live outside rsproxy/cli.py, one module per command group (catalog,
issues, sessions, ...). Each module defines ``register(app)``; list it in ``MODULES``.

They read through ``rsproxy.client.open_reader(project).report(name, **params)`` (see
rsproxy/reports) and share the options and helpers of rsproxy/cli.py (``ProjectOption``,
``JsonOption``, ``fail``, ``print_json``).
"""

from __future__ import annotations

import importlib

import typer

MODULES: tuple[str, ...] = (
    "sessions",
    "mcp",
    "ps",
    "logs",
    "issues",
    "catalog",
    "export",
    "replay",
)


def register(app: typer.Typer) -> None:
    for name in MODULES:
        importlib.import_module(f"rsproxy.commands.{name}").register(app)
