"""One pass over the process table: the dev processes on this machine, by project.

``scan()`` answers "what dev servers, watchers, databases and tunnels run here, which project is
each for, which ports do they hold, and what do they cost?" as plain JSON-able data:

* every process is classified (rsproxy/processes/classify.py); an unrecognised process under a
  recognised one (Vite's esbuild, uvicorn's reload worker, ``sh -c`` under ``npm run dev``), and
  a recognised one under its own kind (PostgreSQL's background workers, gunicorn's workers), is a
  *helper*: folded into that entry, whose memory, CPU and ports include it;
* listening TCP ports come from one ``psutil.net_connections`` call mapped by pid;
* memory is RSS (``rss_bytes`` the process, ``tree_rss_bytes`` with its helpers); warnings at
  500 MiB and 1 GiB of the tree;
* CPU is measured over the scan itself, at least ``cpu_interval`` seconds (0.1 s), so one scan
  gives a current figure rather than a lifetime average;
* the project comes from rsproxy/processes/projects.py; entries without one are listed apart;
* dev servers running for longer than the stale window get a stale verdict with its evidence
  (rsproxy/processes/activity.py).

Processes that vanish mid-scan, zombies and processes rsproxy may not inspect (another user's, when
not root) are skipped or shown with what could be read; a scan never fails because of one of them.
The process running the scan is never listed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from rsproxy.processes.activity import STALE_AFTER_S, TrafficIndex, newest_change, staleness
from rsproxy.processes.classify import (
    CATEGORIES,
    Classification,
    classify,
    classify_listener,
    normalize_cmdline,
)
from rsproxy.processes.projects import ProjectRef, ProjectResolver

MEMORY_HIGH_BYTES = 500 * 2**20
MEMORY_CRITICAL_BYTES = 2**30
CPU_INTERVAL_S = 0.1
COMMAND_CHARS = 300
_ATTRS = ["pid", "ppid", "name", "cmdline", "status", "create_time", "uids", "username"]
_KTHREADD = 2  # Linux: every kernel thread is kthreadd or its child


@dataclass
class ProcInfo:
    """What one pass of ``process_iter`` read about a process."""

    pid: int
    ppid: int
    name: str
    cmdline: list[str]
    uid: int | None
    user: str | None
    started_ms: float
    handle: psutil.Process
    classification: Classification | None = None


@dataclass
class Snapshot:
    """The process table at one moment: classified, with listening ports and project lookups.

    Shared by ``scan`` and by rsproxy/processes/kill.py, so ``kill`` judges a pid exactly as
    ``rsproxy ps`` shows it.
    """

    procs: dict[int, ProcInfo]
    listening: dict[int, list[tuple[str, int]]]
    hidden_listeners: list[tuple[str, int]]  # sockets whose owner this user may not see
    resolver: ProjectResolver
    zombies: int = 0
    own_pid: int = field(default_factory=os.getpid)
    _cwd: dict[int, str | None] = field(default_factory=dict)
    _project: dict[int, ProjectRef | None] = field(default_factory=dict)
    _roots: dict[int, int | None] = field(default_factory=dict)

    @classmethod
    def take(cls) -> Snapshot:
        procs: dict[int, ProcInfo] = {}
        zombies = 0
        for proc in psutil.process_iter(_ATTRS):
            info = proc.info
            pid, ppid = info["pid"], info["ppid"] or 0
            if pid in (0, _KTHREADD) or ppid == _KTHREADD:
                continue
            if info["status"] == psutil.STATUS_ZOMBIE:
                zombies += 1
                continue
            uids = info["uids"]
            cmdline = normalize_cmdline(info["cmdline"])
            procs[pid] = ProcInfo(
                pid=pid,
                ppid=ppid,
                name=info["name"] or "",
                cmdline=cmdline,
                uid=uids.real if uids is not None else None,
                user=info["username"],
                started_ms=(info["create_time"] or 0.0) * 1000,
                handle=proc,
                classification=classify(info["name"] or "", cmdline),
            )
        listening, hidden = _listening_sockets(procs)
        snapshot = cls(procs, listening, hidden, ProjectResolver(), zombies)
        snapshot._classify_listeners()
        return snapshot

    def _classify_listeners(self) -> None:
        """``node server.js`` or ``python app.py`` listening inside a project is a dev server,
        unless it already runs under one (uvicorn's reload worker is uvicorn's helper)."""
        for pid in self.listening:
            info = self.procs.get(pid)
            if info is None or info.classification is not None:
                continue
            if self._nearest_classified_ancestor(pid) is not None:
                continue
            guess = classify_listener(info.cmdline)
            if guess is not None and self.project(pid) is not None:
                info.classification = guess

    # ---- structure ------------------------------------------------------------------------------

    def ancestors(self, pid: int) -> list[int]:
        chain: list[int] = []
        info = self.procs.get(pid)
        while info is not None and info.ppid not in (0, 1) and len(chain) < 64:
            chain.append(info.ppid)
            info = self.procs.get(info.ppid)
        return chain

    def _nearest_classified_ancestor(self, pid: int) -> int | None:
        for ancestor in self.ancestors(pid):
            info = self.procs.get(ancestor)
            if info is not None and info.classification is not None:
                return ancestor
        return None

    def root_of(self, pid: int) -> int | None:
        """The pid of the entry ``pid`` is listed under: itself for a dev process, its dev process
        for a helper, None for a process that is neither."""
        if pid not in self._roots:
            self._roots[pid] = self._find_root(pid)
        return self._roots[pid]

    def _find_root(self, pid: int) -> int | None:
        info = self.procs.get(pid)
        if info is None:
            return None
        parent = self._nearest_classified_ancestor(pid)
        if info.classification is None:
            return self.root_of(parent) if parent is not None else None
        if parent is not None:
            parent_class = self.procs[parent].classification
            if parent_class is not None and parent_class.type == info.classification.type:
                return self.root_of(parent)
        return pid

    def helpers(self, root: int) -> list[int]:
        return [pid for pid in self.procs if pid != root and self.root_of(pid) == root]

    # ---- lookups --------------------------------------------------------------------------------

    def cwd(self, pid: int) -> str | None:
        if pid not in self._cwd:
            info = self.procs.get(pid)
            try:
                self._cwd[pid] = info.handle.cwd() if info is not None else None
            except (psutil.Error, OSError):
                self._cwd[pid] = None  # another user's process, or gone
        return self._cwd[pid]

    def project(self, pid: int) -> ProjectRef | None:
        if pid not in self._project:
            self._project[pid] = self.resolver.for_process(pid, self.cwd(pid), self.ancestors(pid))
        return self._project[pid]

    def ports(self, pids: list[int]) -> list[tuple[str, int]]:
        found = {sock for pid in pids for sock in self.listening.get(pid, ())}
        return sorted(found, key=lambda s: (s[1], s[0]))

    def owners_of_port(self, port: int) -> list[tuple[int | None, str]]:
        """(pid or None when hidden, address) of every listener on ``port``."""
        owners: list[tuple[int | None, str]] = [
            (pid, addr) for pid, socks in self.listening.items() for addr, p in socks if p == port
        ]
        owners += [(None, addr) for addr, p in self.hidden_listeners if p == port]
        return sorted(owners, key=lambda o: (o[0] or 0, o[1]))


def _listening_sockets(
    procs: dict[int, ProcInfo],
) -> tuple[dict[int, list[tuple[str, int]]], list[tuple[str, int]]]:
    """Listening TCP sockets by pid, from one ``net_connections`` call; sockets whose owner is
    invisible to this user come back apart."""
    by_pid: dict[int, list[tuple[str, int]]] = {}
    hidden: list[tuple[str, int]] = []
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        # Some systems (macOS) refuse the global table to non-root users: ask per process.
        connections = []
        for info in procs.values():
            try:
                for conn in info.handle.net_connections(kind="tcp"):
                    if conn.status == psutil.CONN_LISTEN and conn.laddr:
                        by_pid.setdefault(info.pid, []).append((conn.laddr.ip, conn.laddr.port))
            except psutil.Error:
                continue
    for conn in connections:
        if conn.status != psutil.CONN_LISTEN or not conn.laddr:
            continue
        sock = (conn.laddr.ip, conn.laddr.port)
        if conn.pid is None:
            hidden.append(sock)
        elif sock not in by_pid.setdefault(conn.pid, []):
            by_pid[conn.pid].append(sock)
    return by_pid, sorted(set(hidden))


# ---- scan ---------------------------------------------------------------------------------------


def _command_text(cmdline: list[str], name: str) -> str:
    text = " ".join(cmdline) or f"[{name}]"
    return text if len(text) <= COMMAND_CHARS else text[: COMMAND_CHARS - 1] + "…"


def _cpu_seconds(handle: psutil.Process) -> float | None:
    try:
        times = handle.cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


def _rss(handle: psutil.Process) -> int | None:
    try:
        return int(handle.memory_info().rss)
    except psutil.Error:
        return None


def memory_warning(tree_rss: int | None) -> str | None:
    if tree_rss is None:
        return None
    if tree_rss > MEMORY_CRITICAL_BYTES:
        return "critical"
    if tree_rss > MEMORY_HIGH_BYTES:
        return "high"
    return None


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def describe(snapshot: Snapshot, pid: int) -> dict[str, Any]:
    """One process as an entry: what it is, its helpers, ports, memory, project (no CPU, no
    staleness: those need the whole scan)."""
    info = snapshot.procs[pid]
    helpers = snapshot.helpers(pid)
    kind = info.classification
    rss = _rss(info.handle)
    helper_rows = []
    tree_rss = rss
    for helper in helpers:
        h = snapshot.procs[helper]
        h_rss = _rss(h.handle)
        if h_rss is not None:
            tree_rss = (tree_rss or 0) + h_rss
        helper_rows.append(
            {
                "pid": helper,
                "ppid": h.ppid,
                "name": h.name,
                "command": _command_text(h.cmdline, h.name),
                "rss_bytes": h_rss,
            }
        )
    sockets = snapshot.ports([pid, *helpers])
    project = snapshot.project(pid)
    now_ms = time.time() * 1000
    return {
        "pid": pid,
        "ppid": info.ppid,
        "type": kind.type if kind else "other",
        "category": kind.category if kind else "other",
        "label": kind.label if kind else info.name,
        "dev": kind is not None,
        "name": info.name,
        "cmdline": info.cmdline,
        "command": _command_text(info.cmdline, info.name),
        "cwd": snapshot.cwd(pid),
        "user": info.user,
        "uid": info.uid,
        "ports": sorted({port for _, port in sockets}),
        "listen": [f"[{a}]:{p}" if ":" in a else f"{a}:{p}" for a, p in sockets],
        "rss_bytes": rss,
        "tree_rss_bytes": tree_rss,
        "memory_warning": memory_warning(tree_rss),
        "cpu_percent": None,
        "started_ms": info.started_ms,
        "uptime_s": round(max(0.0, now_ms - info.started_ms) / 1000, 1),
        "project": project.as_dict() if project else None,
        "helpers": helper_rows,
        "stale": None,
        "activity": None,
    }


def scan(
    *,
    include_all: bool = False,
    cpu_interval: float = CPU_INTERVAL_S,
    stale_after_s: float = STALE_AFTER_S,
) -> dict[str, Any]:
    """Every dev process on the machine, grouped by project (``--all``: every process)."""
    started = time.perf_counter()
    snapshot = Snapshot.take()
    entry_pids = [
        pid
        for pid, info in snapshot.procs.items()
        if pid != snapshot.own_pid
        and (
            (info.classification is not None and snapshot.root_of(pid) == pid)
            or (include_all and snapshot.root_of(pid) is None)
        )
    ]
    cpu_start = time.perf_counter()
    cpu_before: dict[int, float | None] = {}
    entries: list[dict[str, Any]] = []
    for pid in entry_pids:
        try:
            entry = describe(snapshot, pid)
        except psutil.NoSuchProcess:
            continue
        members = [pid, *(h["pid"] for h in entry["helpers"])]
        for member in members:
            cpu_before[member] = _cpu_seconds(snapshot.procs[member].handle)
        entries.append(entry)

    _judge_staleness(snapshot, entries, stale_after_s)

    if cpu_interval > 0:
        remaining = cpu_interval - (time.perf_counter() - cpu_start)
        if remaining > 0:
            time.sleep(remaining)
        elapsed = time.perf_counter() - cpu_start
        for entry in entries:
            used = 0.0
            measured = False
            for member in [entry["pid"], *(h["pid"] for h in entry["helpers"])]:
                before = cpu_before.get(member)
                after = _cpu_seconds(snapshot.procs[member].handle)
                if before is not None and after is not None:
                    used += after - before
                    measured = True
            entry["cpu_percent"] = round(100 * used / elapsed, 1) if measured else None

    return _assemble(snapshot, entries, started, stale_after_s, include_all)


def _judge_staleness(snapshot: Snapshot, entries: list[dict[str, Any]], window_s: float) -> None:
    now_ms = time.time() * 1000
    traffic: TrafficIndex | None = None
    walks: dict[str, Any] = {}
    for entry in entries:
        if entry["category"] != "dev_server":
            continue
        if now_ms - entry["started_ms"] < window_s * 1000:
            # Cannot be stale yet: skip the walk and the daemon round trip.
            entry["stale"] = False
            continue
        if traffic is None:
            traffic = TrafficIndex(snapshot.resolver.daemons)
        project = entry["project"]
        last, known = traffic.last_traffic(entry["ports"], project["name"] if project else None)
        root = (project or {}).get("root")
        changes = None
        if root:
            if root not in walks:
                walks[root] = newest_change(Path(root))
            changes = walks[root]
        verdict = staleness(
            now_ms=now_ms,
            started_ms=entry["started_ms"],
            last_traffic_ms=last,
            traffic_known=known,
            changes=changes,
            stale_after_s=window_s,
        )
        entry["stale"] = verdict.pop("stale")
        entry["activity"] = verdict


def _sort_key(entry: dict[str, Any]) -> tuple[int, str, int]:
    order = list(CATEGORIES)
    category = entry["category"]
    return (order.index(category) if category in order else len(order), entry["type"], entry["pid"])


def _assemble(
    snapshot: Snapshot,
    entries: list[dict[str, Any]],
    started: float,
    window_s: float,
    include_all: bool,
) -> dict[str, Any]:
    entries.sort(key=_sort_key)
    projects: dict[str, dict[str, Any]] = {}
    unassociated: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    for entry in entries:
        project = entry["project"]
        if project is None:
            unassociated.append(entry)
        else:
            group = projects.setdefault(
                project["name"],
                {**project, "processes": [], "tree_rss_bytes": 0},
            )
            group["processes"].append(entry)
            group["tree_rss_bytes"] += entry["tree_rss_bytes"] or 0
        where = f", project {project['name']}" if project else ""
        what = f"{entry['label']} (pid {entry['pid']}{where})"
        if entry["memory_warning"]:
            warnings.append(
                {
                    "pid": entry["pid"],
                    "kind": "memory",
                    "level": entry["memory_warning"],
                    "message": f"{what} uses {_human_bytes(entry['tree_rss_bytes'])}",
                }
            )
        if entry["stale"]:
            warnings.append(
                {
                    "pid": entry["pid"],
                    "kind": "stale",
                    "level": "info",
                    "message": f"{what} looks stale: {entry['activity']['reason']}",
                }
            )
    dev = [e for e in entries if e["dev"]]
    return {
        "scanned_ms": time.time() * 1000,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        "all": include_all,
        "projects": sorted(projects.values(), key=lambda g: g["name"]),
        "unassociated": unassociated,
        "warnings": warnings,
        "counts": {
            "processes_seen": len(snapshot.procs),
            "listed": len(entries),
            "dev_processes": len(dev),
            "dev_servers": sum(1 for e in dev if e["category"] == "dev_server"),
            "zombies_skipped": snapshot.zombies,
            "hidden_listeners": len(snapshot.hidden_listeners),
        },
        "thresholds": {
            "memory_high_bytes": MEMORY_HIGH_BYTES,
            "memory_critical_bytes": MEMORY_CRITICAL_BYTES,
            "stale_after_s": window_s,
        },
    }
