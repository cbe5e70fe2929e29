"""The pages connected to the daemon through their probe sockets, and commands sent to them.

Each open probe WebSocket is a ``ConnectedPage``: the page view it currently shows (the probe
sends its ``page_id`` with every message) and when it was last heard from. ``exec`` sends code to
one page, by page id or the most recently active one, and waits for its ``exec_result`` message
with the same request id. Only pages served through this proxy can hold such a socket: the proxy
refuses the probe endpoints to any other origin.

Wire format, server → page: ``{"type": "exec", "id": "...", "code": "...", "timeout_ms": 5000}``;
page → server: ``{"type": "exec_result", "id": "...", "page_id": "...", "ok": true, "value": ...}``
or ``{..., "ok": false, "error": {"name": ..., "message": ..., "stack": ...}}``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from rsproxy.errors import RsproxyError

MAX_EXEC_TIMEOUT_MS = 60_000
MAX_CODE_CHARS = 100_000


class ExecError(RsproxyError):
    """An exec request that cannot be delivered or answered."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ConnectedPage:
    socket: web.WebSocketResponse
    connected: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)
    page_id: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"page_id": self.page_id, "connected": self.connected, "last_seen": self.last_seen}


class Pages:
    def __init__(self) -> None:
        self._pages: dict[web.WebSocketResponse, ConnectedPage] = {}
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)

    def connect(self, socket: web.WebSocketResponse) -> ConnectedPage:
        page = self._pages[socket] = ConnectedPage(socket)
        return page

    def disconnect(self, socket: web.WebSocketResponse) -> None:
        self._pages.pop(socket, None)

    def heard(self, socket: web.WebSocketResponse, page_id: Any) -> None:
        page = self._pages.get(socket)
        if page is not None:
            page.last_seen = time.time()
            if isinstance(page_id, str) and 0 < len(page_id) <= 64:
                page.page_id = page_id

    def listing(self) -> list[dict[str, Any]]:
        return [p.describe() for p in sorted(self._pages.values(), key=lambda p: -p.last_seen)]

    def answer(self, message: dict[str, Any]) -> None:
        """An ``exec_result`` from a page: completes the request it answers, if still waiting."""
        future = self._pending.get(str(message.get("id")))
        if future is not None and not future.done():
            future.set_result(message)

    def _choose(self, page_id: str | None) -> ConnectedPage:
        if not self._pages:
            raise ExecError(
                "no page is connected: open the app through the proxy URL in a browser first",
                409,
            )
        if page_id is None:
            return max(self._pages.values(), key=lambda p: p.last_seen)
        for page in self._pages.values():
            if page.page_id == page_id:
                return page
        known = ", ".join(str(p.page_id) for p in self._pages.values())
        raise ExecError(f"no connected page has page_id {page_id!r}; connected: {known}", 404)

    async def exec(self, code: Any, *, page_id: str | None, timeout_ms: int) -> dict[str, Any]:
        if not isinstance(code, str) or not code.strip():
            raise ExecError(
                '`code` must be a non-empty string, e.g. {"code": "document.title"}', 400
            )
        if len(code) > MAX_CODE_CHARS:
            raise ExecError(f"`code` is {len(code)} characters; at most {MAX_CODE_CHARS}", 400)
        if not 1 <= timeout_ms <= MAX_EXEC_TIMEOUT_MS:
            raise ExecError(f"timeout_ms must be between 1 and {MAX_EXEC_TIMEOUT_MS}", 400)
        page = self._choose(page_id)
        request_id = f"x{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        started = time.perf_counter()
        try:
            await page.socket.send_json(
                {"type": "exec", "id": request_id, "code": code, "timeout_ms": timeout_ms}
            )
            # The page enforces the timeout itself; the margin covers the round trip.
            answer = await asyncio.wait_for(future, timeout_ms / 1000 + 1.0)
        except TimeoutError:
            raise ExecError(
                f"page {page.page_id} did not answer within {timeout_ms} ms (is it frozen, "
                "or navigating away?)",
                504,
            ) from None
        except ConnectionError as exc:
            raise ExecError(
                f"page {page.page_id} went away before the code was sent: {exc}", 410
            ) from None
        finally:
            self._pending.pop(request_id, None)
        result = {
            "page_id": answer.get("page_id") or page.page_id,
            "ok": bool(answer.get("ok")),
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        }
        if result["ok"]:
            result["value"] = answer.get("value")
        else:
            error = answer.get("error")
            result["error"] = error if isinstance(error, dict) else {"message": str(error)}
        return result
