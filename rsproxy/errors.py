"""Every error rsproxy raises on purpose, in one tree.

Each error carries a message a person (or an agent) can act on: what was wrong, where, and what
would be valid. Code that catches errors catches these classes, never bare strings.

    RsproxyError                     base of everything below; the CLI prints it and exits 1
    ├── ConfigError                  a bad command-line value or environment setting
    │   └── TargetError              --target is not a port, HOST:PORT or http(s) URL
    ├── PipelineError                a pipeline file cannot be used
    │   ├── PipelineLoadError        the file is missing, unreadable or not YAML
    │   ├── PipelineValidationError  one or more located problems (all of them, never just the first)
    │   └── StageRegistryError       a stage name registered twice, or a broken entry point
    ├── StoreError                   the DuckDB store cannot be opened or queried
    │   └── NoStoreError             the project has no store yet
    ├── ReportError                  a report was asked for by a wrong name, parameter or session
    ├── ReplayError                  a capture file cannot be replayed (`rsproxy replay`)
    │   ├── HarFormatError           not a usable HAR: not JSON, truncated, wrong version, no
    │   │                            log.entries; names the file, the position and what is valid
    │   └── FlowFileError            not a usable mitmproxy flow file; names the file and the flow
    ├── DaemonError                  the daemon cannot be started, reached or stopped
    │   ├── AlreadyRunningError      a live daemon already serves this project
    │   ├── NotRunningError          no daemon runs for this project
    │   └── PortError                no port could be bound
    ├── ProcessError                 a process cannot be found or acted on (`rsproxy ps`)
    │   ├── NoSuchProcessError       no process has that pid (any more)
    │   └── KillRefusedError         the safety rules forbid stopping it; says why and what is allowed
    └── ProbeMessageError            a message from a page failed validation (counted, never fatal)
"""

from __future__ import annotations

from dataclasses import dataclass


class RsproxyError(Exception):
    """Base class: the message is meant for the user as it stands."""


class ConfigError(RsproxyError):
    """A command-line option or environment variable has a value rsproxy cannot use."""


class TargetError(ConfigError):
    """The --target value is not a port, HOST:PORT, or http(s) URL."""


class PipelineError(RsproxyError):
    """A pipeline file cannot be loaded or used."""


class PipelineLoadError(PipelineError):
    """The pipeline file is missing, unreadable, or not valid YAML."""


@dataclass(frozen=True)
class Problem:
    """One located problem in a pipeline file: ``where`` is e.g. ``stages[2] (detect)``."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class PipelineValidationError(PipelineError):
    """The pipeline file parsed but is not valid; ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        count = len(problems)
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{source}: {count} {noun}:\n{lines}")


class StageRegistryError(PipelineError):
    """A stage name is registered twice, or a third-party entry point fails to load."""


class StoreError(RsproxyError):
    """The DuckDB store cannot be opened or queried."""


class NoStoreError(StoreError):
    """The project has never captured anything, so there is no store to read."""


class ReportError(RsproxyError):
    """A report (rsproxy/reports) was asked for with an unknown name, bad parameters, or a
    session reference that matches no session."""


class ReplayError(RsproxyError):
    """A capture file cannot be replayed: missing, of an unknown format, or the store is busy."""


class HarFormatError(ReplayError):
    """The file is not a HAR rsproxy can read; the message names the file, the position
    (line, column, entry index) and what would be valid. Bad single entries are skipped instead."""


class FlowFileError(ReplayError):
    """The file is not a readable mitmproxy flow file; the message names the file and the flow."""


class DaemonError(RsproxyError):
    """The daemon cannot be started, reached or stopped."""


class AlreadyRunningError(DaemonError):
    """A live daemon already serves this project."""


class NotRunningError(DaemonError):
    """No daemon is running for this project."""


class PortError(DaemonError):
    """No port could be bound for the proxy or the local API."""


class ProcessError(RsproxyError):
    """A process cannot be found, inspected or stopped (rsproxy/processes)."""


class NoSuchProcessError(ProcessError):
    """No process has the given pid, or it exited while rsproxy was looking at it."""


class KillRefusedError(ProcessError):
    """Stopping a process is against the safety rules (rsproxy/processes/kill.py).

    ``reason`` is a stable code an agent can branch on: ``pid1``, ``self``, ``system``,
    ``foreign_user``, ``rsproxy_daemon``, ``name_mismatch``, ``not_dev``, ``hidden``; the message
    says why and what would be allowed.
    """

    def __init__(self, reason: str, message: str, pid: int | None = None) -> None:
        self.reason = reason
        self.pid = pid
        super().__init__(message)

    def as_dict(self) -> dict[str, object]:
        return {
            "error": "kill_refused",
            "reason": self.reason,
            "pid": self.pid,
            "message": str(self),
        }


class ProbeMessageError(RsproxyError):
    """A message from a page's probe failed validation; it is counted and dropped."""
