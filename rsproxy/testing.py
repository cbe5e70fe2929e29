"""Helpers for rsproxy's own tests and benchmarks (and for anyone testing a custom stage).

* event factories: ``make_event``, ``make_http_event``;
* ``LoopbackServer``: an aiohttp app served on 127.0.0.1 from a background thread, for tests
  that drive a synchronous client (Playwright, httpx) against a real upstream;
* ``fixture_site``: an upstream with the awkward cases a proxy must get right (every content
  encoding, strict CSP, a slow Server-Sent Events stream, a WebSocket echo, an echo of what it
  was sent);
* ``DaemonProcess``: a real ``rsproxy start`` in a subprocess, with its state file and an API
  client;
* Chromium: where Debian's binary is, the flags it needs here, and whether a missing browser
  (or database) must fail rather than skip (``RSPROXY_REQUIRE_BROWSER`` / ``_SERVICES``);
* fixtures: ``load_fixture`` imports a file under fixtures/ (not a package), ``react_app_dist``
  builds fixtures/react_app with npm, ``npm_install`` installs a fixture's npm packages from
  its lockfile;
* MCP: ``mcp_calls`` drives `rsproxy mcp` over stdio with the ``mcp`` package's client.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from aiohttp import WSMsgType, web

from rsproxy.events import Event
from rsproxy.state import DaemonState

# ---- events -----------------------------------------------------------------------------------


def make_event(kind: str, **data: Any) -> Event:
    return Event(kind=kind, data=data, session_id="test-session", project="test")


def make_http_event(**overrides: Any) -> Event:
    data: dict[str, Any] = {
        "method": "GET",
        "url": "http://127.0.0.1:3000/api/users/42?page=2",
        "scheme": "http",
        "host": "127.0.0.1",
        "port": 3000,
        "path": "/api/users/42",
        "query": "page=2",
        "http_version": "HTTP/1.1",
        "status": 200,
        "reason": "OK",
        "request_headers": [["host", "127.0.0.1:3000"], ["accept", "application/json"]],
        "response_headers": [["content-type", "application/json"]],
        "request_content_type": None,
        "response_content_type": "application/json",
        "request_size": 0,
        "response_size": 27,
        "response_body": '{"id": 42, "name": "alice"}',
        "response_body_encoding": "text",
        "response_body_truncated": False,
        "streamed": False,
        "websocket": False,
        "auth": "none",
        "timings": {"ttfb_ms": 1.5, "total_ms": 2.0},
        "started_ms": time.time() * 1000,
    }
    data.update(overrides)
    return make_event("http", **data)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_async(coro: Any, timeout: float = 60.0) -> Any:
    """Run a coroutine to completion on a fresh thread.

    Playwright's sync API keeps an event loop running on the test's thread, where
    ``asyncio.run`` refuses to start another.
    """
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"coroutine did not finish within {timeout} s")
    if "error" in result:
        raise result["error"]
    return result.get("value")


# ---- loopback servers ---------------------------------------------------------------------------


class LoopbackServer:
    """Serve an aiohttp app on 127.0.0.1 from its own thread and event loop."""

    def __init__(self, app_factory: Callable[[], web.Application], port: int = 0) -> None:
        self._factory = app_factory
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _start(self) -> None:
        self._runner = web.AppRunner(self._factory(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            asyncio.run_coroutine_threadsafe(runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()


def _encode(body: bytes, coding: str) -> bytes:
    if coding == "gzip":
        return gzip.compress(body)
    if coding == "deflate":
        return zlib.compress(body)
    if coding == "br":
        import brotli

        return bytes(brotli.compress(body))
    if coding == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(body)
    return body


FIXTURE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p id="ok">rendered</p></body></html>"""

STRICT_CSP = (
    "default-src 'none'; script-src 'nonce-{nonce}' 'strict-dynamic'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def fixture_site() -> web.Application:
    """The upstream for proxy tests; every route documents the case it exists for."""
    app = web.Application()

    async def encoded(request: web.Request) -> web.Response:
        # /encoded/gzip, /deflate, /br, /zstd, /identity: the same page in each Content-Encoding
        coding = request.match_info["coding"]
        body = _encode(FIXTURE_PAGE.format(title=f"encoded {coding}").encode(), coding)
        headers = {"Content-Type": "text/html; charset=utf-8"}
        if coding != "identity":
            headers["Content-Encoding"] = coding
        return web.Response(body=body, headers=headers)

    async def strict_csp(_request: web.Request) -> web.Response:
        # A nonce-based strict CSP, as Google's CSP guide recommends; the inline script proves
        # the page's own nonce still works after the proxy has touched the policy.
        nonce = "pagenonce123"
        html = FIXTURE_PAGE.format(title="strict csp").replace(
            "</body>",
            f'<script nonce="{nonce}">document.getElementById("ok").textContent="inline ran";'
            "</script></body>",
        )
        return web.Response(
            text=html,
            content_type="text/html",
            headers={"Content-Security-Policy": STRICT_CSP.format(nonce=nonce)},
        )

    async def slow_events(request: web.Request) -> web.StreamResponse:
        # Server-Sent Events: the first event at once, the stream ends seconds later.
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        count = int(request.query.get("count", "3"))
        gap = float(request.query.get("gap", "1.0"))
        for n in range(count):
            await response.write(f"data: event {n}\n\n".encode())
            if n < count - 1:
                await asyncio.sleep(gap)
        await response.write_eof()
        return response

    async def echo(request: web.Request) -> web.Response:
        # Answers with what it was sent, so secrets travel in both directions.
        body = await request.read()
        return web.json_response(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": dict(request.headers),
                "body": body.decode("utf-8", "replace"),
            },
            headers={"Set-Cookie": "session=server-secret-cookie; Path=/; HttpOnly"},
        )

    async def ws_echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str(message.data)
            elif message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data)
        return ws

    async def page(request: web.Request) -> web.Response:
        return web.Response(
            text=FIXTURE_PAGE.format(title=request.match_info["name"]), content_type="text/html"
        )

    app.router.add_get("/encoded/{coding}", encoded)
    app.router.add_get("/csp/strict", strict_csp)
    app.router.add_get("/sse", slow_events)
    app.router.add_route("*", "/echo", echo)
    app.router.add_route("*", "/echo/{tail:.*}", echo)
    app.router.add_get("/ws/echo", ws_echo)
    app.router.add_get("/page/{name}", page)
    return app


# ---- a real daemon --------------------------------------------------------------------------------


def run_cli(home: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``rsproxy ARGS`` in a subprocess with ``RSPROXY_HOME=home``; output captured as text."""
    env = {**os.environ, "RSPROXY_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "rsproxy", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class DaemonProcess:
    """``rsproxy start`` in a subprocess; ``RSPROXY_HOME`` points at ``home``."""

    def __init__(
        self,
        home: Path,
        *args: str,
        project: str = "test",
        cwd: Path | None = None,
        executable: list[str] | None = None,
    ) -> None:
        self.home = home
        self.project = project
        self.args = ["start", "--project", project, *args]
        self.cwd = cwd
        self.executable = executable or [sys.executable, "-m", "rsproxy"]
        self.proc: subprocess.Popen[str] | None = None
        self.state: DaemonState | None = None
        self._log = home / f"daemon-{project}.log"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "RSPROXY_HOME": str(self.home), "PYTHONUNBUFFERED": "1"}

    @property
    def state_path(self) -> Path:
        return self.home / "projects" / self.project / "daemon.json"

    @property
    def proxy_url(self) -> str:
        assert self.state is not None, "daemon not started"
        return self.state.proxy_url

    def start(self, timeout: float = 60.0) -> DaemonProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        with self._log.open("w") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [*self.executable, *self.args],
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"rsproxy start exited with {self.proc.returncode}:\n{self.output()}"
                )
            state = DaemonState.read(self.state_path)
            if state is not None and state.pid == self.proc.pid:
                self.state = state
                return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"rsproxy start did not become ready in {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return self._log.read_text() if self._log.exists() else ""

    def api(self) -> httpx.Client:
        assert self.state is not None
        return httpx.Client(
            base_url=self.state.api_url,
            headers={"Authorization": f"Bearer {self.state.token}"},
            timeout=10,
            trust_env=False,
        )

    def events(self, kind: str = "", limit: int = 1000, **params: Any) -> list[dict[str, Any]]:
        with self.api() as api:
            response = api.get("/api/events", params={"kind": kind, "limit": limit, **params})
            response.raise_for_status()
            events: list[dict[str, Any]] = response.json()["events"]
            return events

    def wait_for_events(
        self,
        predicate: Callable[[list[dict[str, Any]]], bool],
        kind: str = "",
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """Poll ``/api/events`` until ``predicate(events)`` holds (the pipeline is asynchronous)."""
        deadline = time.monotonic() + timeout
        events = self.events(kind)
        while not predicate(events):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"events never satisfied the condition; last seen: {json.dumps(events)[:3000]}"
                )
            time.sleep(0.1)
            events = self.events(kind)
        return events

    def wait_for_report(
        self,
        name: str,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 20.0,
        **params: Any,
    ) -> dict[str, Any]:
        """Poll the report ``name`` until ``predicate(answer)`` holds (derived tables such as
        the catalog's are written when the pipeline worker is idle)."""
        deadline = time.monotonic() + timeout
        with self.api() as client:
            while True:
                response = client.post(f"/api/report/{name}", json=params)
                response.raise_for_status()
                answer: dict[str, Any] = response.json()
                if predicate(answer):
                    return answer
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"report {name} never satisfied the condition: {json.dumps(answer)[:3000]}"
                    )
                time.sleep(0.2)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def __enter__(self) -> DaemonProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---- Chromium and services ------------------------------------------------------------------------

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]


def chromium_executable() -> str | None:
    for candidate in (
        os.environ.get("RSPROXY_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def browser_required() -> bool:
    return os.environ.get("RSPROXY_REQUIRE_BROWSER") == "1"


def services_required() -> bool:
    return os.environ.get("RSPROXY_REQUIRE_SERVICES") == "1"


@contextmanager
def chromium() -> Iterator[Any]:
    """A Playwright Chromium browser from Debian's binary (never a downloaded one)."""
    from playwright.sync_api import sync_playwright

    executable = chromium_executable()
    if executable is None:
        raise RuntimeError(
            "Chromium not found: install Debian's `chromium` package (make setup does)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# ---- processes ---------------------------------------------------------------------------------


def is_listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not is_listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            state = f"exited with {proc.returncode}" if proc.poll() is not None else "timed out"
            raise AssertionError(
                f"{proc.args!r} never listened on {port} ({state}):\n{log.read_text()}"
            )
        time.sleep(0.05)


class Spawner:
    """Starts commands in their own process groups; ``close`` SIGKILLs every group it started."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[subprocess.Popen[bytes]] = []

    def __call__(
        self,
        args: list[str],
        *,
        cwd: Path,
        port: int | None = None,
        user: str | None = None,
        timeout: float = 30.0,
    ) -> subprocess.Popen[bytes]:
        if user is not None:
            # As root: the same command under another user's ids (setpriv execs it, so the pid
            # is the command's own), as a foreign process is.
            gid = pwd.getpwnam(user).pw_gid
            args = ["setpriv", f"--reuid={user}", f"--regid={gid}", "--clear-groups", *args]
        log = self.log_dir / f"spawn-{os.getpid()}-{len(self.started)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                args,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.started.append(proc)
        if port is not None:
            wait_listening(port, proc, log, timeout)
        return proc

    def close(self) -> None:
        for proc in self.started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)


def make_project_dir(parent: Path, name: str = "shop") -> Path:
    """A folder that is a git root (``.git`` is all rsproxy looks for), named like a project."""
    folder = parent / f"{name}-{os.getpid()}"
    (folder / ".git").mkdir(parents=True)
    return folder


# ---- fixtures ----------------------------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def load_fixture(path: Path) -> ModuleType:
    """Import a fixture file (fixtures/ is not a package; each file stands alone)."""
    import importlib.util

    name = "rsproxy_fixture_" + "_".join(path.with_suffix("").parts[-2:]).replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def react_app_dist() -> Path:
    """fixtures/react_app built with npm (once; later calls reuse the build). Without npm the
    calling test skips loudly, or fails under RSPROXY_REQUIRE_BROWSER=1."""
    import pytest

    if shutil.which("npm") is None:
        message = "npm is not installed (Node.js and npm are needed to build fixtures/react_app)"
        if browser_required():
            pytest.fail(f"RSPROXY_REQUIRE_BROWSER=1 but {message}")
        pytest.skip(f"REACT FIXTURE SKIPPED: {message}")
    dist: Path = load_fixture(FIXTURES / "react_app" / "build.py").build()
    return dist


def npm_install(folder: Path, what: str) -> Path:
    """``npm ci`` in a fixture folder from its committed lockfile, once per lockfile change
    (a stamp in node_modules; a file lock keeps parallel runs from installing twice). Returns
    its node_modules. Without npm, or when the install fails, the calling test skips loudly
    — or fails under RSPROXY_REQUIRE_SERVICES=1. ``what`` names the tests, for that message."""
    import fcntl

    import pytest

    def problem(message: str) -> None:
        if services_required():
            pytest.fail(f"RSPROXY_REQUIRE_SERVICES=1 but {message}")
        pytest.skip(f"{what.upper()} SKIPPED: {message}")

    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        problem("Node.js and npm are not installed")
    assert npm is not None
    modules = folder / "node_modules"
    stamp = modules / ".rsproxy-npm-ci"
    lock = folder / "package-lock.json"
    with open(folder / ".install.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
            try:
                done = subprocess.run(
                    [npm, "ci", "--include=dev", "--no-audit", "--no-fund", "--prefer-offline"],
                    cwd=folder,
                    capture_output=True,
                    text=True,
                    timeout=300,
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, "npm_config_update_notifier": "false"},
                )
            except subprocess.TimeoutExpired:
                problem(f"`npm ci` in {folder} timed out")
            if done.returncode != 0:
                problem(f"`npm ci` in {folder} failed:\n{done.stderr[-2000:]}")
            stamp.touch()
    return modules


# ---- MCP ----------------------------------------------------------------------------------------


async def mcp_calls(
    home: Path, project: str, calls: list[tuple[str, dict[str, Any]]]
) -> list[tuple[str, Any]]:
    """Spawn `rsproxy mcp --project PROJECT` and make ``calls`` in one stdio session with the
    ``mcp`` package's client. Returns ``("__tools__", tools)`` then one ``(name, answer)`` per
    call: the parsed JSON answer, or ``{"error": text}`` for a tool error."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "rsproxy", "mcp", "--project", project],
        env={"RSPROXY_HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    out: list[tuple[str, Any]] = []
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        out.append(("__tools__", (await session.list_tools()).tools))
        for name, args in calls:
            result = await session.call_tool(name, args)
            text = "".join(c.text for c in result.content if hasattr(c, "text"))
            out.append((name, {"error": text} if result.isError else json.loads(text)))
    return out
