"""Which project a process belongs to.

In order of certainty:

1. ``rsproxy-daemon`` — the process is a running rsproxy daemon, or runs under one (the dev
   server ``rsproxy start -- CMD`` supervises): the project in the daemon's state file;
2. ``rsproxy`` — its working directory is inside the directory an rsproxy project was last
   started from (``rsproxy start`` records it as ``directory.json`` in the project's data dir,
   so a project named with ``--project shop`` is still found from ``~/code/shop-frontend``);
3. ``git`` — its working directory is inside a git repository: the project is the git root, named
   after its folder as ``rsproxy start`` names projects by default.

A process matching none of these (system services, a shell in ``/tmp``) is unassociated.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsproxy.project import Project, git_root, rsproxy_home
from rsproxy.state import DaemonState

DIRECTORY_FILE = "directory.json"


def record_project_directory(project: Project, directory: Path) -> None:
    """Note where ``project`` was started from (its git root, else ``directory`` itself)."""
    root = git_root(directory.resolve()) or directory.resolve()
    data_dir = project.ensure_data_dir()
    payload = {"directory": str(root), "recorded_ms": time.time() * 1000}
    (data_dir / DIRECTORY_FILE).write_text(json.dumps(payload), encoding="utf-8")


@dataclass(frozen=True)
class ProjectRef:
    name: str
    root: str | None
    source: str  # rsproxy-daemon, rsproxy, git
    rsproxy: bool  # rsproxy has data for a project of this name

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "root": self.root,
            "source": self.source,
            "rsproxy": self.rsproxy,
        }


class ProjectResolver:
    """Everything needed to place processes in projects, read once per scan."""

    def __init__(self) -> None:
        projects_dir = rsproxy_home() / "projects"
        self.known: set[str] = set()
        self.daemons: dict[int, DaemonState] = {}
        directories: list[tuple[Path, str]] = []
        try:
            entries = list(projects_dir.iterdir())
        except OSError:
            entries = []
        for entry in entries:
            if not entry.is_dir():
                continue
            self.known.add(entry.name)
            state = DaemonState.read(entry / "daemon.json")
            if state is not None:
                self.daemons[state.pid] = state
            try:
                recorded = json.loads((entry / DIRECTORY_FILE).read_text(encoding="utf-8"))
                directories.append((Path(recorded["directory"]), entry.name))
            except (OSError, ValueError, KeyError, TypeError):
                pass
        # Deepest first, so a project nested in another's directory wins for its own processes.
        self._directories = sorted(directories, key=lambda d: len(d[0].parts), reverse=True)
        self._roots: dict[str, Path | None] = {}
        self._recorded = {name: path for path, name in directories}

    def daemon_project(self, pid: int) -> ProjectRef | None:
        state = self.daemons.get(pid)
        if state is None:
            return None
        root = self._recorded.get(state.project)
        return ProjectRef(state.project, str(root) if root else None, "rsproxy-daemon", True)

    def for_process(self, pid: int, cwd: str | None, ancestors: list[int]) -> ProjectRef | None:
        for candidate in (pid, *ancestors):
            found = self.daemon_project(candidate)
            if found is not None:
                return found
        if not cwd:
            return None
        here = Path(cwd)
        for directory, name in self._directories:
            if here == directory or directory in here.parents:
                return ProjectRef(name, str(directory), "rsproxy", True)
        root = self._git_root(cwd)
        if root is None:
            return None
        return ProjectRef(root.name, str(root), "git", root.name in self.known)

    def _git_root(self, cwd: str) -> Path | None:
        if cwd not in self._roots:
            try:
                root = git_root(Path(cwd))
            except OSError:
                root = None
            # $HOME or / as a "repository" (dotfiles under git) says nothing about a project.
            if root is not None and (root == Path.home() or root == Path(root.anchor)):
                root = None
            self._roots[cwd] = root
        return self._roots[cwd]
