"""Dev processes on this machine: find them, tell what they are, and stop them safely.

One concern per module:

* ``classify`` — which kind of dev process a command line is (Vite, uvicorn, PostgreSQL, ngrok,
  rsproxy itself...), a pure function of what ``ps`` shows;
* ``projects`` — which project a process belongs to (a running rsproxy daemon, a directory an
  rsproxy project was started from, or a git root);
* ``activity`` — whether a dev server is stale: no traffic through rsproxy and no file changes in
  its project for 30 minutes;
* ``scanner`` — one psutil pass over the process table: classification, helper processes folded
  into their dev server, listening ports, memory, CPU, project, warnings;
* ``kill`` — stopping a process under the safety rules, who holds a port, freeing a port;
* ``output`` — the stdout/stderr of the dev server ``rsproxy start -- CMD`` supervises: a bounded
  ring per stream, echoed to the terminal and stored as ``process`` events.

Everything returns plain JSON-able data, and every refusal is a ``KillRefusedError`` that says
why and what would be allowed, so the CLI (``rsproxy ps``) and the MCP tools share the code.
"""

from __future__ import annotations

from rsproxy.processes.kill import free_port, kill, port_owner
from rsproxy.processes.scanner import scan

__all__ = ["free_port", "kill", "port_owner", "scan"]
