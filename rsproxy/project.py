"""Where a project's data lives, what the project is called, and which build it is.

A project is named after the git root of the working directory (or the directory itself outside
git). Its data lives in ``$RSPROXY_HOME/projects/<name>/`` (``~/.rsproxy`` by default): the DuckDB
store and the running daemon's state file. Build metadata (commit, branch, dirty flag) tags each
session so sessions can be compared across builds.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from rsproxy.errors import ConfigError

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def rsproxy_home() -> Path:
    """The root of all rsproxy data: ``$RSPROXY_HOME`` or ``~/.rsproxy``."""
    configured = os.environ.get("RSPROXY_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".rsproxy"


def git_root(start: Path) -> Path | None:
    """The nearest directory at or above ``start`` that holds a ``.git`` entry."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def default_project_name(cwd: Path | None = None) -> str:
    """The git root's folder name, or the working directory's name outside git."""
    here = (cwd or Path.cwd()).resolve()
    return (git_root(here) or here).name or "default"


def check_project_name(name: str) -> str:
    """Refuse names that would escape the projects folder or be awkward on disk."""
    cleaned = _SAFE_NAME.sub("-", name).strip("-.")
    if not cleaned or cleaned != name:
        raise ConfigError(
            f"invalid project name {name!r}: use letters, digits, '.', '_' and '-' "
            f"(for example {cleaned or 'my-app'!r})"
        )
    return name


@dataclass(frozen=True)
class Project:
    """A project's name and the files rsproxy keeps for it."""

    name: str

    @classmethod
    def resolve(cls, name: str | None = None, cwd: Path | None = None) -> Project:
        return cls(check_project_name(name) if name else default_project_name(cwd))

    @property
    def data_dir(self) -> Path:
        return rsproxy_home() / "projects" / self.name

    @property
    def store_path(self) -> Path:
        return self.data_dir / "rsproxy.duckdb"

    @property
    def state_path(self) -> Path:
        return self.data_dir / "daemon.json"

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.data_dir


@dataclass(frozen=True)
class BuildInfo:
    """The build a session ran against, read from git; all None outside a repository."""

    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None

    @classmethod
    def detect(cls, cwd: Path | None = None) -> BuildInfo:
        here = cwd or Path.cwd()

        def git(*args: str) -> str | None:
            try:
                done = subprocess.run(
                    ["git", *args], cwd=here, capture_output=True, text=True, timeout=5
                )
            except (OSError, subprocess.TimeoutExpired):
                return None
            return done.stdout.strip() if done.returncode == 0 else None

        commit = git("rev-parse", "HEAD")
        if commit is None:
            return cls()
        branch = git("rev-parse", "--abbrev-ref", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no")
        return cls(commit=commit, branch=branch, dirty=bool(status) if status is not None else None)
