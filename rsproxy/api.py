"""The daemon's local HTTP API and the probe's endpoints, one aiohttp app on 127.0.0.1.

Two doors, each with its own guard:

* ``/readyz`` and ``/api/*`` serve the CLI and the MCP server. The ``Host`` header must name this
  loopback listener (so a DNS-rebound page cannot reach it), a request carrying an ``Origin`` is
  refused unless it is this listener's own (so no web page can drive it cross-site), and every
  ``/api/*`` call needs the per-daemon token from the 0600 state file.
* ``/__rsproxy/*`` (probe script, probe WebSocket, beacon) is reached only through the proxy,
  which checks the page's Origin and adds the internal token; a direct request is refused.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from rsproxy.errors import ProbeMessageError, RsproxyError
from rsproxy.events import Event
from rsproxy.pages import ExecError, Pages
from rsproxy.probe_messages import MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    from rsproxy.runtime import Runtime

log = logging.getLogger("rsproxy.api")

INTERNAL_HEADER = "X-Rsproxy-Internal"
PROBE_PREFIX = "/__rsproxy/"
MAX_LIMIT = 1000


def probe_script() -> bytes:
    return resources.files("rsproxy.injected_js").joinpath("probe.min.js").read_bytes()


def _json_error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


class ApiServer:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._probe_js = probe_script()
        self._beacon_limiter = runtime.probe.connection_limiter()
        self.pages = Pages()

    # ---- lifecycle ------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_MESSAGE_BYTES)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/api/events", self._events)
        app.router.add_post("/api/shutdown", self._shutdown)
        app.router.add_get("/api/pages", self._pages)
        app.router.add_post("/api/exec", self._exec)
        app.router.add_post("/api/report/{name}", self._report)
        app.router.add_post("/api/clear", self._clear)
        app.router.add_post("/api/replay", self._replay)
        app.router.add_get(PROBE_PREFIX + "probe.js", self._serve_probe)
        app.router.add_get(PROBE_PREFIX + "ws", self._probe_socket)
        app.router.add_post(PROBE_PREFIX + "events", self._beacon)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._allowed_hosts = {
            f"127.0.0.1:{self.port}",
            f"localhost:{self.port}",
            f"[::1]:{self.port}",
        }
        return self.port

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- guards ---------------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        token = self.runtime.token
        if request.path.startswith(PROBE_PREFIX):
            if not hmac.compare_digest(request.headers.get(INTERNAL_HEADER, ""), token):
                return _json_error(403, "probe endpoints are served through the proxy port only")
            return await handler(request)
        if request.host not in self._allowed_hosts:
            return _json_error(
                403, f"foreign Host header {request.host!r}; this API answers on 127.0.0.1 only"
            )
        origin = request.headers.get("Origin")
        if origin is not None and origin.removeprefix("http://") not in self._allowed_hosts:
            return _json_error(403, f"cross-origin request from {origin!r} refused")
        if request.path != "/readyz":
            supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(supplied, token):
                return _json_error(
                    401, "missing or wrong API token; it is in the daemon's state file (mode 0600)"
                )
        try:
            return await handler(request)
        except RsproxyError as exc:
            return _json_error(400, str(exc))

    # ---- /api -----------------------------------------------------------------------------------

    async def _readyz(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _status(self, _request: web.Request) -> web.Response:
        return web.json_response(self.runtime.status())

    async def _events(self, request: web.Request) -> web.Response:
        query = request.query
        kinds = [k for k in query.get("kind", "").split(",") if k]
        try:
            limit = int(query.get("limit", "100"))
            since = float(query["since"]) if "since" in query else None
        except ValueError:
            return _json_error(400, "limit must be an integer and since an epoch-ms number")
        if not 1 <= limit <= MAX_LIMIT:
            return _json_error(400, f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        session = query.get("session", "current")
        session_id = {"current": self.runtime.session_id, "all": None}.get(session, session)
        store = self.runtime.store
        if store is None:
            return _json_error(503, "the store is not open yet")
        rows = await asyncio.to_thread(
            store.events,
            kinds=kinds,
            session_id=session_id,
            since_ms=since,
            limit=limit,
            before_id=query.get("before"),
        )
        return web.json_response({"events": rows, "count": len(rows)}, dumps=_dumps)

    async def _report(self, request: web.Request) -> web.Response:
        from rsproxy import reports

        store = self.runtime.store
        if store is None:
            return _json_error(503, "the store is not open yet")
        try:
            params = await request.json() if request.can_read_body else {}
        except ValueError:
            return _json_error(400, "the report's parameters must be a JSON object")
        if not isinstance(params, dict):
            return _json_error(400, "the report's parameters must be a JSON object")
        ctx = reports.ReportContext(
            store,
            current_session=self.runtime.session_id,
            live=self.runtime.status(),
            cleared_ms=self.runtime.cleared_ms,
        )
        # ReportError and StoreError become 400s with their message (the _guard middleware).
        result = await asyncio.to_thread(reports.run, request.match_info["name"], ctx, params)
        return web.json_response(result, dumps=_dumps)

    async def _replay(self, request: web.Request) -> web.Response:
        """Replay a local capture file into a new session: {"path": ..., "pipeline"?: ...,
        "body_limit"?: ...}. Answers when the replay is done, with its summary."""
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("path"), str):
            return _json_error(400, 'expected a JSON object such as {"path": "/tmp/session.har"}')
        path = Path(body["path"])
        pipeline = body.get("pipeline")
        limit = body.get("body_limit")
        if not path.is_absolute() or (pipeline is not None and not isinstance(pipeline, str)):
            return _json_error(400, "path (and pipeline, when given) must be absolute file paths")
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or limit < 0
        ):
            return _json_error(400, "body_limit must be a whole number of bytes")
        summary = await self.runtime.replay(path, Path(pipeline) if pipeline else None, limit)
        return web.json_response(summary, dumps=_dumps)

    async def _clear(self, _request: web.Request) -> web.Response:
        """Start the live session's default view afresh; nothing stored is deleted."""
        self.runtime.cleared_ms = time.time() * 1000
        return web.json_response({"cleared_ms": self.runtime.cleared_ms})

    async def _pages(self, _request: web.Request) -> web.Response:
        return web.json_response({"pages": self.pages.listing()})

    async def _exec(self, request: web.Request) -> web.Response:
        """Run JavaScript in a connected page: {"code": ..., "page_id"?: ..., "timeout_ms"?: ...}."""
        try:
            body = await request.json()
        except ValueError:
            return _json_error(400, 'expected a JSON body such as {"code": "document.title"}')
        if not isinstance(body, dict):
            return _json_error(400, 'expected a JSON object such as {"code": "document.title"}')
        timeout_ms = body.get("timeout_ms", 5000)
        if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool):
            return _json_error(400, "timeout_ms must be an integer number of milliseconds")
        try:
            result = await self.pages.exec(
                body.get("code"), page_id=body.get("page_id"), timeout_ms=timeout_ms
            )
        except ExecError as exc:
            return _json_error(exc.status, str(exc))
        # Running code in a page is an action worth an audit trail: it is stored as an event.
        self.runtime.submit(
            Event(
                kind="exec_result",
                source="agent",
                page_id=result["page_id"],
                data={"code": body["code"], **{k: v for k, v in result.items() if k != "page_id"}},
            )
        )
        return web.json_response(result, dumps=_dumps)

    async def _shutdown(self, _request: web.Request) -> web.Response:
        asyncio.get_running_loop().call_later(0.05, self.runtime.request_shutdown)
        return web.json_response({"stopping": True})

    # ---- /__rsproxy -----------------------------------------------------------------------------

    async def _serve_probe(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=self._probe_js,
            content_type="application/javascript",
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    async def _probe_socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_MESSAGE_BYTES)
        await ws.prepare(request)
        self._sockets.add(ws)
        self.pages.connect(ws)
        probe = self.runtime.probe
        limiter = probe.connection_limiter()
        try:
            await ws.send_json({"type": "hello", "session_id": self.runtime.session_id})
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    probe.stats.rejected["binary"] += 1
                    continue
                try:
                    message = probe.decode(frame.data)
                    self.pages.heard(ws, message.get("page_id"))
                    if message.get("type") == "exec_result":
                        self.pages.answer(message)
                    else:
                        self._submit(probe.events(message, limiter))
                except ProbeMessageError as exc:
                    log.debug("probe message rejected: %s", exc)
        finally:
            self._sockets.discard(ws)
            self.pages.disconnect(ws)
        return ws

    async def _beacon(self, request: web.Request) -> web.Response:
        body = await request.content.read(MAX_MESSAGE_BYTES + 1)
        self._ingest(body, self._beacon_limiter)
        return web.Response(status=204)

    def _ingest(self, raw: str | bytes, limiter: Any) -> None:
        try:
            self._submit(self.runtime.probe.parse(raw, limiter))
        except ProbeMessageError as exc:
            log.debug("probe message rejected: %s", exc)

    def _submit(self, events: list[Event]) -> None:
        for event in events:
            self.runtime.submit(event)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)
