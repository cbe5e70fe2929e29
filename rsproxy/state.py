"""The daemon's state file: how other rsproxy processes find and talk to a running daemon.

``$RSPROXY_HOME/projects/<name>/daemon.json``, mode 0600, holds the daemon's pid, its proxy and
API ports and the per-daemon API token. Only the user who started the daemon can read it, which is
what makes the token a secret. It is written atomically (write, then rename) and removed on a
clean stop; a file left behind by a killed daemon is recognised by its dead pid and ignored.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class DaemonState:
    pid: int
    project: str
    session_id: str
    proxy_url: str
    proxy_port: int
    api_port: int
    token: str
    target: str | None
    started_ms: float
    pipeline: str

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".daemon-", dir=path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(asdict(self), handle, indent=2)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def read(cls, path: Path) -> DaemonState | None:
        """The state of a live daemon, or None (no file, unreadable, or its process is gone)."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            state = cls(**raw)
        except (OSError, ValueError, TypeError):
            return None
        return state if state.alive() else None

    def alive(self) -> bool:
        try:
            return (
                psutil.pid_exists(self.pid)
                and psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE
            )
        except psutil.Error:
            return False


def remove_state(path: Path, pid: int) -> None:
    """Remove the state file if it still belongs to ``pid`` (a newer daemon may have replaced it)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if raw.get("pid") == pid:
        path.unlink(missing_ok=True)
