"""Stopping dev processes under safety rules, and finding (and freeing) what holds a port.

The rules, checked in this order; each refusal is a ``KillRefusedError`` whose ``reason`` code an
agent can branch on and whose message says why and what would be allowed:

1. ``pid1`` — never PID 1 (init: stopping it stops the machine or the container);
2. ``self`` — never the process asking, nor one of its ancestors (the user's shell or agent);
3. ``system`` — never a kernel thread;
4. ``foreign_user`` — never another user's process (run as root, only root's own): rsproxy is a
   dev tool, not an administration tool;
5. ``rsproxy_daemon`` — never rsproxy itself (a daemon or MCP server) unless asked for by name
   (``name="rsproxy"`` or its project's name): an agent talking through rsproxy must not cut its
   own line by a mistyped pid;
6. ``name_mismatch`` — when ``name`` is given it must match the process (its type, label,
   process name or project): a pid reused since it was listed is not stopped;
7. ``not_dev`` — never a process that is neither a recognised dev process nor a helper of one
   (see rsproxy/processes/scanner.py), unless ``force``. ``force`` lifts this rule only.

Stopping sends the signal to the process, waits up to the grace period (5 s) for it to exit, then
sends SIGTERM to whatever of its tree (its descendants, snapshotted before anything was sent)
outlived it, and SIGKILL to everything still running when the grace period is over. A zombie
counts as stopped: it has exited and only waits for its parent to collect its status.

Everything returns plain JSON-able dicts, so ``rsproxy ps`` and the MCP tools show the same.
"""

from __future__ import annotations

import os
import signal as signals
import time
from typing import Any

import psutil

from rsproxy.errors import ConfigError, KillRefusedError, NoSuchProcessError, ProcessError
from rsproxy.processes.scanner import Snapshot, describe

SIGNALS: dict[str, signals.Signals] = {"TERM": signals.SIGTERM, "KILL": signals.SIGKILL}
GRACE_S = 5.0
_POLL_S = 0.02
_ALLOWED = (
    "What rsproxy does stop: your own dev processes — the dev servers, watchers, runners, "
    "tunnels and local databases `rsproxy ps` lists — and their helper processes"
)


def parse_signal(value: str) -> signals.Signals:
    name = value.upper().removeprefix("SIG")
    if name not in SIGNALS:
        raise ConfigError(f"unknown signal {value!r}; use TERM (graceful, the default) or KILL")
    return SIGNALS[name]


def _refuse(reason: str, pid: int, message: str) -> KillRefusedError:
    return KillRefusedError(reason, message, pid)


def _descendants(snapshot: Snapshot, pid: int) -> list[int]:
    return [p for p in snapshot.procs if pid in snapshot.ancestors(p)]


def _matches(name: str, values: list[str | None]) -> bool:
    wanted = name.strip().lower()
    return any(v is not None and v.lower() == wanted for v in values)


def plan_kill(
    snapshot: Snapshot, pid: int, *, force: bool = False, name: str | None = None
) -> dict[str, Any]:
    """What stopping ``pid`` would do, or the KillRefusedError the rules give for it."""
    if pid <= 0:
        raise ProcessError(f"{pid} is not a process id; take one from `rsproxy ps`")
    if pid == 1:
        raise _refuse(
            "pid1",
            pid,
            "pid 1 is the init process of this machine or container; stopping it would stop "
            f"everything, so rsproxy never does. {_ALLOWED}.",
        )
    info = snapshot.procs.get(pid)
    if info is None:
        _explain_missing(pid)
    assert info is not None
    own = snapshot.own_pid
    if pid == own or pid in snapshot.ancestors(own):
        raise _refuse(
            "self",
            pid,
            f"pid {pid} ({info.name}) is the process asking for the kill, or one of its parents "
            f"(a shell, an editor, an agent); rsproxy does not stop its own caller. {_ALLOWED}.",
        )
    my_uid = os.getuid()
    if info.uid is None or info.uid != my_uid:
        owner = info.user or (f"uid {info.uid}" if info.uid is not None else "an unknown user")
        me = psutil.Process(own).username()
        raise _refuse(
            "foreign_user",
            pid,
            f"pid {pid} ({info.name}) belongs to {owner}, not to you ({me}), and rsproxy never "
            f"stops another user's process, even with force. {_ALLOWED}. For a system service "
            "use its service manager (for example `systemctl stop`).",
        )
    root = snapshot.root_of(pid)
    entry = describe(snapshot, root if root is not None else pid)
    project = entry["project"]
    names = [entry["type"], entry["label"], info.name, project["name"] if project else None]
    kind = info.classification
    if kind is not None and kind.type == "rsproxy" and not (name and _matches(name, names)):
        daemon = project is not None and project["source"] == "rsproxy-daemon"
        where = f" for project {project['name']!r}" if daemon else ""
        stop_hint = f"`rsproxy stop --project {project['name']}`, or " if daemon else ""
        raise _refuse(
            "rsproxy_daemon",
            pid,
            f"pid {pid} is rsproxy itself ({kind.label}{where}); it is never stopped by pid "
            f"alone. Use {stop_hint}ask for it by name: `rsproxy ps kill {pid} --name rsproxy` "
            '(kill_process with name="rsproxy").',
        )
    if name and not _matches(name, names):
        raise _refuse(
            "name_mismatch",
            pid,
            f"pid {pid} is {entry['label']} ({info.name}), not {name!r}; nothing was stopped. "
            "Check the pid with `rsproxy ps` (it may have been reused).",
        )
    if root is None and not force:
        raise _refuse(
            "not_dev",
            pid,
            f"pid {pid} (`{entry['command'][:120]}`) is not a recognised dev process, nor a "
            "helper of one. rsproxy recognises dev servers (Vite, Next.js, webpack, uvicorn, "
            "Django, flask, http.server, Node and Python servers...), watchers, runners (npm run, "
            "turbo), local databases, tunnels and Docker; `rsproxy ps` lists what it found. If "
            "you are sure, pass force (`rsproxy ps kill PID --force`, kill_process with "
            "force=true).",
        )
    part_of = None
    if root is not None and root != pid:
        part_of = {"pid": root, "type": entry["type"], "label": entry["label"]}
    tree = [pid, *(d for d in _descendants(snapshot, pid) if snapshot.procs[d].uid == my_uid)]
    return {
        "pid": pid,
        "name": info.name,
        "type": kind.type if kind else ("helper" if part_of else "other"),
        "label": kind.label if kind else info.name,
        "command": " ".join(info.cmdline) or info.name,
        "user": info.user,
        "project": project,
        "ports": sorted({port for _, port in snapshot.ports([pid])}),
        "part_of": part_of,
        "forced": root is None,
        "tree": tree,
    }


def _explain_missing(pid: int) -> None:
    """Raise the right error for a pid the snapshot did not list."""
    try:
        proc = psutil.Process(pid)
        status = proc.status()
        ppid = proc.ppid()
    except psutil.NoSuchProcess:
        raise NoSuchProcessError(
            f"no process has pid {pid} (it may have exited); `rsproxy ps` lists the running ones"
        ) from None
    except psutil.Error:
        status, ppid = "", 0
    if status == psutil.STATUS_ZOMBIE:
        raise NoSuchProcessError(
            f"pid {pid} has already exited (a zombie waiting for its parent, pid {ppid}, to "
            "collect it); there is nothing left to stop"
        )
    raise _refuse("system", pid, f"pid {pid} is a kernel thread; rsproxy never signals those.")


def _gone(handle: psutil.Process) -> bool:
    try:
        # is_running() compares start times, so a pid reused by a new process counts as gone.
        return not handle.is_running() or handle.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def _wait_gone(handles: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every handle has exited (zombies count); return those still running."""
    deadline = time.monotonic() + timeout
    alive = [h for h in handles if not _gone(h)]
    while alive and time.monotonic() < deadline:
        time.sleep(_POLL_S)
        alive = [h for h in alive if not _gone(h)]
    return alive


def _send(handles: list[psutil.Process], sig: signals.Signals) -> None:
    for handle in handles:
        try:
            handle.send_signal(sig)  # psutil refuses a pid reused since the snapshot
        except psutil.NoSuchProcess:
            continue


def execute(
    plan: dict[str, Any], snapshot: Snapshot, sig: signals.Signals, grace_s: float
) -> dict[str, Any]:
    """Stop a planned process: ``sig``, the grace period, then TERM/KILL for what is left."""
    started = time.monotonic()
    handles = {pid: snapshot.procs[pid].handle for pid in plan["tree"] if pid in snapshot.procs}
    root = handles[plan["pid"]]
    rest = [h for pid, h in handles.items() if pid != plan["pid"]]
    escalated = False
    if sig == signals.SIGKILL:
        _send([root, *rest], sig)
    else:
        _send([root], sig)
        if _wait_gone([root], grace_s):
            escalated = True
        else:
            # The process is gone: its helpers get TERM for what is left of the grace period.
            _send([h for h in rest if not _gone(h)], sig)
            remaining = max(0.5, grace_s - (time.monotonic() - started))
            escalated = bool(_wait_gone(rest, remaining))
        if escalated:
            _send([h for h in handles.values() if not _gone(h)], signals.SIGKILL)
    alive = _wait_gone(list(handles.values()), 2.0)
    still = sorted(h.pid for h in alive)
    return {
        **{k: v for k, v in plan.items() if k != "tree"},
        "signal": sig.name.removeprefix("SIG"),
        "escalated_to_kill": escalated,
        "stopped": sorted(pid for pid in handles if pid not in still),
        "still_running": still,
        "ok": not still,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }


def kill(
    pid: int,
    signal: str = "TERM",
    *,
    force: bool = False,
    name: str | None = None,
    grace_s: float = GRACE_S,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Stop ``pid`` and its helper processes under the safety rules (see the module docstring).

    ``dry_run`` checks the rules and returns what would be stopped without sending anything.
    """
    sig = parse_signal(signal)
    snapshot = Snapshot.take()
    plan = plan_kill(snapshot, pid, force=force, name=name)
    if dry_run:
        return {**plan, "signal": sig.name.removeprefix("SIG"), "dry_run": True}
    return execute(plan, snapshot, sig, grace_s)


def _check_port(port: int) -> None:
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} is out of range; ports are 1-65535")


def _owner_rows(snapshot: Snapshot, port: int) -> list[dict[str, Any]]:
    rows: dict[int | None, dict[str, Any]] = {}
    hidden: list[str] = []
    for pid, address in snapshot.owners_of_port(port):
        if pid is None:
            hidden.append(address)
            continue
        if pid in rows:
            rows[pid]["addresses"].append(address)
            continue
        info = snapshot.procs.get(pid)
        if info is None:  # listed by the socket table, exited before the process table was read
            continue
        root = snapshot.root_of(pid)
        entry = describe(snapshot, root if root is not None else pid)
        rows[pid] = {
            "pid": pid,
            "addresses": [address],
            "name": info.name,
            "user": info.user,
            "command": " ".join(info.cmdline) or info.name,
            "type": entry["type"],
            "category": entry["category"],
            "label": entry["label"],
            "dev": root is not None,
            "part_of": root if root not in (None, pid) else None,
            "project": entry["project"],
        }
    result = list(rows.values())
    if hidden:
        result.append(
            {
                "pid": None,
                "addresses": hidden,
                "message": "held by a process rsproxy cannot see (another user's when not root, "
                "or outside this container's process namespace)",
            }
        )
    return result


def port_owner(port: int) -> dict[str, Any]:
    """Who listens on TCP ``port`` (every address), as ``rsproxy ps`` would describe them."""
    _check_port(port)
    owners = _owner_rows(Snapshot.take(), port)
    return {"port": port, "in_use": bool(owners), "owners": owners}


def _listening(port: int) -> bool:
    return any(
        c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
        for c in psutil.net_connections(kind="tcp")
    )


def free_port(
    port: int,
    signal: str = "TERM",
    *,
    force: bool = False,
    grace_s: float = GRACE_S,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Stop what listens on ``port``: each owner's dev process (a reload worker's supervisor, not
    just the worker, so it is not respawned). Every owner is checked against the rules before
    anything is signalled, so a refusal leaves everything running."""
    _check_port(port)
    sig = parse_signal(signal)
    snapshot = Snapshot.take()
    owners = _owner_rows(snapshot, port)
    if not owners:
        return {"port": port, "was_in_use": False, "freed": True, "stopped": []}
    if any(o["pid"] is None for o in owners):
        raise KillRefusedError(
            "hidden",
            f"cannot free port {port}: it is held by a process rsproxy cannot see or stop "
            "(another user's, or outside this container); find it with `ss -ltnp` as its owner",
        )
    targets: list[int] = []
    for owner in owners:
        target = owner["pid"]
        # The dev process the holder belongs to — unless that is rsproxy, which supervises
        # the holder: then the holder alone.
        if owner["part_of"] and owner["type"] != "rsproxy":
            target = owner["part_of"]
        if target not in targets:
            targets.append(target)
    plans = []
    for target in targets:
        try:
            plans.append(plan_kill(snapshot, target, force=force))
        except KillRefusedError as exc:
            raise KillRefusedError(exc.reason, f"cannot free port {port}: {exc}", exc.pid) from None
    if dry_run:
        return {"port": port, "was_in_use": True, "dry_run": True, "would_stop": plans}
    results = [execute(plan, snapshot, sig, grace_s) for plan in plans]
    deadline = time.monotonic() + 2.0
    while _listening(port) and time.monotonic() < deadline:
        time.sleep(_POLL_S)
    return {"port": port, "was_in_use": True, "freed": not _listening(port), "stopped": results}
