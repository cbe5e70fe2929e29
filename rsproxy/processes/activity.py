"""Is a dev server stale? No traffic through rsproxy and no file changes in its project for a while.

A one-shot scan cannot watch files, so both signals are read from what is already on disk:

* **traffic** — the newest captured HTTP exchange for any of the server's listening ports: from
  every live rsproxy daemon whose ``--target`` is one of those ports (asked over its local API),
  and from the store of the server's own project when no daemon of that project runs (sessions
  whose target was one of the ports). A daemon that cannot be asked counts as "unknown";
* **file changes** — the newest modification time under the project root, walked with a budget
  (20,000 entries, 0.25 s) and skipping dependency, VCS and build folders (``node_modules``,
  ``.git``, ``.venv``, ``dist``, ``target``...). A walk cut short by its budget counts as
  "unknown".

A server is stale only when it has run for the whole window (30 minutes by default) and both
signals are known and older than the window: being wrong the other way would suggest killing a
server someone is using.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rsproxy.errors import RsproxyError
from rsproxy.project import Project
from rsproxy.state import DaemonState

STALE_AFTER_S = 30 * 60
WALK_MAX_ENTRIES = 20_000
WALK_BUDGET_S = 0.25
IGNORED_DIRS = frozenset(
    {
        "node_modules",
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        "dist",
        "build",
        "target",
        ".next",
        ".nuxt",
        ".svelte-kit",
        ".turbo",
        ".cache",
        ".parcel-cache",
        ".vite",
        "coverage",
        ".rsproxy",
    }
)


@dataclass(frozen=True)
class Changes:
    """The newest mtime (epoch ms) under a folder; ``complete`` is False when the walk was cut."""

    newest_ms: float | None
    complete: bool
    entries: int


def newest_change(
    root: Path, *, max_entries: int = WALK_MAX_ENTRIES, budget_s: float = WALK_BUDGET_S
) -> Changes:
    """Walk ``root`` (not following symlinks, skipping IGNORED_DIRS) for the newest mtime."""
    deadline = time.monotonic() + budget_s
    newest = 0.0
    entries = 0
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                for entry in listing:
                    entries += 1
                    if entries > max_entries or time.monotonic() > deadline:
                        return Changes(newest * 1000 or None, False, entries)
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if entry.name not in IGNORED_DIRS:
                                stack.append(entry.path)
                            continue
                        mtime = entry.stat(follow_symlinks=False).st_mtime
                    except OSError:
                        continue  # vanished or unreadable while walking
                    newest = max(newest, mtime)
        except OSError:
            continue
    return Changes(newest * 1000 or None, True, entries)


def _target_port(target: str | None) -> int | None:
    if not target:
        return None
    try:
        return urlsplit(target).port
    except ValueError:
        return None


class TrafficIndex:
    """The newest proxied HTTP exchange per target port, from live daemons and stored sessions;
    each daemon and store is asked at most once per scan."""

    def __init__(self, daemons: dict[int, DaemonState]) -> None:
        self._daemons = list(daemons.values())
        self._live_projects = {d.project for d in self._daemons}
        self._daemon_answers: dict[int, float | str | None] = {}
        self._store_answers: dict[tuple[str, int], float | str | None] = {}

    def last_traffic(self, ports: list[int], project: str | None) -> tuple[float | None, bool]:
        """(newest exchange in epoch ms or None, whether every source could be read)."""
        newest: float | None = None
        known = True
        for daemon in self._daemons:
            if _target_port(daemon.target) in ports:
                answer = self._ask_daemon(daemon)
                if isinstance(answer, str):
                    known = False
                elif answer is not None:
                    newest = max(newest or 0.0, answer)
        if project is not None and project not in self._live_projects:
            for port in ports:
                stored = self._ask_store(project, port)
                if isinstance(stored, str):
                    known = False
                elif stored is not None:
                    newest = max(newest or 0.0, stored)
        return newest, known

    def _ask_daemon(self, daemon: DaemonState) -> float | str | None:
        if daemon.pid not in self._daemon_answers:
            from rsproxy.client import DaemonClient

            client = DaemonClient(daemon, timeout=2.0)
            try:
                rows = client.events(kinds=["http"], session="current", since_ms=None, limit=1)
                answer: float | str | None = float(rows[0]["ts"]) if rows else None
            except (RsproxyError, KeyError, ValueError) as exc:
                answer = f"cannot ask the daemon of {daemon.project}: {exc}"
            finally:
                client.close()
            self._daemon_answers[daemon.pid] = answer
        return self._daemon_answers[daemon.pid]

    def _ask_store(self, project: str, port: int) -> float | str | None:
        key = (project, port)
        if key not in self._store_answers:
            from rsproxy.store import Store

            path = Project(project).store_path
            answer: float | str | None = None
            if path.exists():
                try:
                    store = Store.open_readonly(path)
                    try:
                        rows = store.query(
                            "SELECT max(h.ts) AS ts FROM http h JOIN sessions s "
                            "ON h.session_id = s.id WHERE s.target LIKE ?",
                            [f"%:{port}"],
                        )
                    finally:
                        store.close()
                    answer = rows[0]["ts"] if rows else None
                except RsproxyError as exc:
                    answer = f"cannot read the store of {project}: {exc}"
            self._store_answers[key] = answer
        return self._store_answers[key]


def staleness(
    *,
    now_ms: float,
    started_ms: float,
    last_traffic_ms: float | None,
    traffic_known: bool,
    changes: Changes | None,
    stale_after_s: float = STALE_AFTER_S,
) -> dict[str, Any]:
    """The stale verdict and its evidence, for one dev server."""
    window_ms = stale_after_s * 1000
    evidence: dict[str, Any] = {
        "last_traffic_ms": last_traffic_ms,
        "last_file_change_ms": changes.newest_ms if changes else None,
        "window_s": stale_after_s,
    }
    if now_ms - started_ms < window_ms:
        return {"stale": False, "reason": "started less than the window ago", **evidence}
    if not traffic_known:
        return {
            "stale": False,
            "reason": "traffic unknown (a daemon or store could not be read)",
            **evidence,
        }
    if last_traffic_ms is not None and now_ms - last_traffic_ms < window_ms:
        return {"stale": False, "reason": "recent traffic through rsproxy", **evidence}
    if changes is None:
        return {"stale": False, "reason": "no project folder to check for changes", **evidence}
    if not changes.complete:
        return {"stale": False, "reason": "project too large to check within budget", **evidence}
    if changes.newest_ms is not None and now_ms - changes.newest_ms < window_ms:
        return {"stale": False, "reason": "recent file changes in the project", **evidence}
    minutes = round(stale_after_s / 60)
    return {
        "stale": True,
        "reason": f"no traffic through rsproxy and no file changes for {minutes} min",
        **evidence,
    }
