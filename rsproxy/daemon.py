"""``rsproxy start``: embed mitmproxy in reverse mode in front of the target, with rsproxy's addons.

Order of start-up, each step able to refuse with a clear message before the next happens:
the project must not already have a live daemon; the pipeline file must validate; the target is
parsed (or the bundled demo app is started as the target); a free port is found (8080 first);
only then is anything bound. SIGINT and SIGTERM stop mitmproxy, whose ``done`` hook drains the
pipeline and flushes the store; a supervised dev-server command is stopped with its whole
process group.

The supervised command (``rsproxy start -- CMD``) runs in its own process group with its stdin
closed and its stdout and stderr piped through rsproxy/processes/output.py: echoed to this
terminal, kept in a 256 KiB ring per stream, and stored as ``process`` events once the runtime
is up (``rsproxy logs`` reads them; what the server prints while stopping, after the store has
closed, reaches only the terminal). ``rsproxy start`` also records the directory it was started
from in the project's data dir, so ``rsproxy ps`` can place processes in the project.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rsproxy.errors import AlreadyRunningError, PortError, TargetError
from rsproxy.events import Event
from rsproxy.pipeline.spec import PipelineSpec, load_spec
from rsproxy.processes.output import OutputCapture
from rsproxy.processes.projects import record_project_directory
from rsproxy.project import Project, rsproxy_home
from rsproxy.runtime import DEFAULT_BODY_LIMIT, Runtime
from rsproxy.state import DaemonState

log = logging.getLogger("rsproxy")

DEFAULT_PORT = 8080
_PORT_ATTEMPTS = 100
_CHILD_GRACE_SECONDS = 5.0


@dataclass
class StartOptions:
    project: Project
    pipeline_path: Path
    target: str | None = None
    port: int | None = None
    host: str = "127.0.0.1"
    command: Sequence[str] = ()
    body_limit: int = DEFAULT_BODY_LIMIT


def parse_target(value: str) -> str:
    """``:3000``, ``3000``, ``host:3000`` or an http(s) URL → an origin URL without a path."""
    raw = value.strip()
    if raw.isdigit() or (raw.startswith(":") and raw[1:].isdigit()):
        raw = f"http://127.0.0.1:{raw.lstrip(':')}"
    elif "://" not in raw:
        raw = f"http://{raw}"
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise TargetError(_target_help(value, str(exc))) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(_target_help(value, "expected an http or https address"))
    if parts.path not in ("", "/") or parts.query:
        raise TargetError(_target_help(value, "give the server's origin, without a path"))
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    if not 0 < port < 65536:
        raise TargetError(_target_help(value, f"port {port} is out of range"))
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


def _target_help(value: str, why: str) -> str:
    return (
        f"invalid --target {value!r}: {why}. Valid forms: :3000, 3000, localhost:5173, "
        "http://127.0.0.1:8000, https://localhost:8443"
    )


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        # The servers we start (asyncio, mitmproxy) bind with SO_REUSEADDR, so a port whose last
        # connections linger in TIME_WAIT is free for them; test the same way.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(host: str, requested: int | None) -> int:
    if requested is not None:
        if not 0 < requested < 65536:
            raise PortError(f"--port {requested} is out of range (1-65535)")
        if not port_is_free(host, requested):
            raise PortError(
                f"port {requested} on {host} is in use; pick another with --port, or leave "
                f"--port out to use the first free port from {DEFAULT_PORT}"
            )
        return requested
    for port in range(DEFAULT_PORT, DEFAULT_PORT + _PORT_ATTEMPTS):
        if port_is_free(host, port):
            return port
    raise PortError(
        f"no free port between {DEFAULT_PORT} and {DEFAULT_PORT + _PORT_ATTEMPTS - 1} on {host}; "
        "choose one with --port"
    )


def refuse_if_running(project: Project) -> None:
    state = DaemonState.read(project.state_path)
    if state is not None:
        raise AlreadyRunningError(
            f"rsproxy is already running for project {project.name!r} at {state.proxy_url} "
            f"(pid {state.pid}). Stop it with `rsproxy stop`, or use --project for another one."
        )


def check_start(options: StartOptions) -> PipelineSpec:
    """Everything that can be refused before a port is bound."""
    refuse_if_running(options.project)
    spec = load_spec(options.pipeline_path)
    if options.target is not None:
        options.target = parse_target(options.target)
    return spec


async def run(options: StartOptions, on_ready: Callable[[DaemonState], None]) -> None:
    """Run the proxy until SIGINT/SIGTERM or `rsproxy stop`."""
    from mitmproxy.options import Options
    from mitmproxy.tools.dump import DumpMaster

    from rsproxy.addons.lifecycle import Lifecycle
    from rsproxy.addons.rsproxy import make_addons

    addons = make_addons()
    lifecycle = next(
        child
        for addon in addons
        for child in getattr(addon, "addons", [addon])
        if isinstance(child, Lifecycle)
    )
    with contextlib.suppress(OSError):  # only `rsproxy ps` needs it; the store will say more
        record_project_directory(options.project, Path.cwd())
    supervised = _supervised(options.command, lambda: lifecycle.runtime)
    async with _target(options) as target, supervised:
        port = choose_port(options.host, options.port)
        loopback = is_loopback(target)
        mitm_options = Options(confdir=str(rsproxy_home() / "mitmproxy"))
        master = DumpMaster(mitm_options, with_termlog=False, with_dumper=False)
        master.addons.add(*addons)
        # Options are declared by the addons that use them, so they can be set only now.
        mitm_options.update(
            listen_host=options.host,
            listen_port=port,
            mode=[f"reverse:{target}"],
            # The Host the browser used reaches the addons (DNS-rebinding checks) and local dev
            # servers (their absolute URLs point back at the proxy); the upstream_host addon
            # gives a remote target its own name.
            keep_host_header=True,
            ssl_insecure=loopback,  # local HTTPS dev servers use self-signed certificates
            connection_strategy="lazy",
            rsproxy_project=options.project.name,
            rsproxy_pipeline=str(options.pipeline_path),
            rsproxy_body_limit=options.body_limit,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, master.shutdown)
        announce = asyncio.create_task(_announce_when_ready(options.project, on_ready))
        try:
            await master.run()
        finally:
            announce.cancel()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


async def _announce_when_ready(project: Project, on_ready: Callable[[DaemonState], None]) -> None:
    pid = os.getpid()
    while True:
        state = DaemonState.read(project.state_path)
        if state is not None and state.pid == pid:
            on_ready(state)
            return
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def _target(options: StartOptions) -> AsyncIterator[str]:
    if options.target is not None:
        yield options.target
        return
    from rsproxy.demo_app.app import serve

    runner, port = await serve(host="127.0.0.1", port=0)
    log.info("no --target given: serving the bundled demo app on 127.0.0.1:%d", port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def _supervised(
    command: Sequence[str], runtime: Callable[[], Runtime | None]
) -> AsyncIterator[subprocess.Popen[bytes] | None]:
    """Run the dev-server command in its own process group, its output captured (stored through
    ``runtime()`` once that is up); stop the whole group on the way out."""
    if not command:
        yield None
        return
    # Python dev servers block-buffer a piped stdout; unbuffered, their lines arrive as printed.
    env = {**os.environ, "PYTHONUNBUFFERED": os.environ.get("PYTHONUNBUFFERED") or "1"}
    try:
        child = subprocess.Popen(
            list(command),
            start_new_session=True,
            stdin=subprocess.DEVNULL,  # the terminal's input belongs to rsproxy (Ctrl+C)
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
    except OSError as exc:
        raise TargetError(f"cannot run {' '.join(command)!r}: {exc.strerror or exc}") from exc
    log.info("started `%s` (pid %d)", " ".join(command), child.pid)

    def store(events: list[Event]) -> bool:
        live = runtime()
        if live is None:
            return False  # not up yet: the capture keeps the lines until it is
        for event in events:
            live.submit(event)
        return True

    capture = OutputCapture(child, command, store).start()
    try:
        yield child
    finally:
        if child.poll() is not None:
            log.info("`%s` had exited with code %s", " ".join(command), child.returncode)
        await asyncio.to_thread(stop_group, child)
        await asyncio.to_thread(capture.close)


def stop_group(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the child's whole process group, SIGKILL to what is left after the grace."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + _CHILD_GRACE_SECONDS
    while time.monotonic() < deadline and _group_alive(child):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait(5)


def _group_alive(child: subprocess.Popen[bytes]) -> bool:
    child.poll()  # reap the leader if it has exited, so it does not count as a member
    try:
        os.killpg(child.pid, 0)
    except ProcessLookupError:
        return False
    return True
