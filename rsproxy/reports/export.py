"""The ``export_har`` report: a session's HTTP exchanges as a HAR 1.2 document.

HAR is how captures leave rsproxy for every other tool (browser devtools, Charles, HTTP Toolkit,
``rsproxy replay``). The document is built from what the store holds, which the ``redact`` stage
scrubbed before it was persisted, so a secret the capture hid stays hidden here; and the stored
response is the server's, recorded before the probe was injected into it, so the probe's script
never appears in an export.

Pages come from the probe's ``page_view`` events. An exchange belongs to a page when its row
carries that ``page_id``, when the probe's correlation header (``x-rsproxy-request-id``,
``<page_id>-<n>``) names it, when it is the page's own document request, or else when its
``Referer`` is the page's URL and it started after the page did.

Where HAR has no place for something rsproxy knows, ``_``-prefixed vendor fields (which HAR
allows) carry it: ``_rsproxy`` on each entry (event id, service, path template, auth pattern,
truncated or omitted bodies) for a later replay, and ``_error`` on the response of an exchange
that failed (status 0 when no response came at all, as browsers export it).
"""

from __future__ import annotations

import base64
import contextlib
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field

import rsproxy
from rsproxy.reports import Params, ReportContext, report
from rsproxy.store import loads

HAR_VERSION = "1.2"
MAX_LIMIT = 100_000
_REQUEST_ID = "x-rsproxy-request-id"  # the probe's correlation header: "<page_id>-<n>"

# Envelope and payload columns an entry is built from; bodies only when asked for.
_COLUMNS = (
    "id, ts, page_id, method, url, http_version, status, reason, error, request_headers, "
    "response_headers, request_content_type, response_content_type, request_size, "
    "response_size, request_body_encoding, request_body_truncated, response_body_encoding, "
    "response_body_truncated, response_body_omitted, streamed, websocket, auth, timings, "
    "started_ms, service, path_template"
)


class ExportHarParams(Params):
    session: str = Field(
        default="current", description="current, latest, latest-N, an id, or a git commit."
    )
    since_seconds: float | None = Field(
        default=None, gt=0, description="Only exchanges of the last N seconds."
    )
    limit: int | None = Field(
        default=None,
        ge=1,
        le=MAX_LIMIT,
        description="At most this many entries, the earliest first (default: all).",
    )
    include_bodies: bool = Field(
        default=True, description="Include request and response bodies (as redacted)."
    )


@report("export_har", ExportHarParams)
def export_har(ctx: ReportContext, p: ExportHarParams) -> dict[str, Any]:
    """The session's HTTP exchanges as a HAR 1.2 document, with pages from the probe."""
    session = ctx.session(p.session)
    since = time.time() * 1000 - p.since_seconds * 1000 if p.since_seconds else None
    if session == ctx.current_session and ctx.cleared_ms is not None:
        since = max(since or 0, ctx.cleared_ms)
    where = "session_id = ?"
    params: list[Any] = [session]
    if since is not None:
        where += " AND ts >= ?"
        params.append(since)
    bodies = ", request_body, response_body" if p.include_bodies else ""
    cap = p.limit if p.limit is not None else MAX_LIMIT
    rows = ctx.store.query(
        f"SELECT {_COLUMNS}{bodies} FROM http WHERE {where} "
        "ORDER BY coalesce(started_ms, ts), id LIMIT ?",
        [*params, cap + 1],
    )
    truncated = len(rows) > cap
    del rows[cap:]
    for row in rows:
        for column in ("request_headers", "response_headers", "timings"):
            value = row.get(column)
            row[column] = loads(value) if isinstance(value, str) else value
    views = ctx.store.query(
        "SELECT id, ts, page_id, data FROM generic_events "
        f"WHERE {where} AND kind = 'page_view' "
        "ORDER BY ts, id",
        params,
    )
    pages = _pages(views, rows)
    entries = [_entry(row, _pageref(row, pages), p.include_bodies) for row in rows]
    log: dict[str, Any] = {
        "version": HAR_VERSION,
        "creator": {"name": "rsproxy", "version": rsproxy.__version__},
        "pages": [page.har() for page in pages],
        "entries": entries,
        "comment": f"rsproxy session {session}",
        "_rsproxy": {"session": session, "entries": len(entries), "truncated": truncated},
    }
    return {"log": log}


# ---- pages ------------------------------------------------------------------------------------


class _Page:
    """A page view and what the export ties to it: its document request and start time."""

    def __init__(self, view: dict[str, Any]) -> None:
        data = loads(view["data"]) if view.get("data") else {}
        self.id: str = view["page_id"] or view["id"]
        self.url: str = str(data.get("url") or "")
        self.title: str = str(data.get("title") or self.url)
        self.navigation = data.get("navigation")
        self.viewed_ms: float = view["ts"]
        self.started_ms: float = view["ts"]
        self.document_id: str | None = None
        self.on_content_load: float = -1

    def claim_document(self, rows: list[dict[str, Any]], claimed: set[str]) -> None:
        """The latest GET of this page's URL that started before the page was seen (a full
        load's document; a history navigation has none): the page starts with it, and the
        probe's view (sent at DOMContentLoaded) gives ``onContentLoad``."""
        if self.navigation not in ("load", "bfcache", None):
            return
        wanted = _as_requested(self.url)
        for row in reversed(rows):
            start = _started(row)
            if (
                start <= self.viewed_ms
                and row["id"] not in claimed
                and row.get("method") == "GET"
                and _browser_side(row) == wanted
            ):
                claimed.add(row["id"])
                self.document_id = row["id"]
                self.started_ms = start
                if self.navigation == "load":
                    self.on_content_load = round(self.viewed_ms - start, 3)
                return

    def har(self) -> dict[str, Any]:
        return {
            "startedDateTime": _iso(self.started_ms),
            "id": self.id,
            "title": self.title,
            "pageTimings": {"onContentLoad": self.on_content_load, "onLoad": -1},
        }


def _pages(views: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[_Page]:
    pages: list[_Page] = []
    seen: set[str] = set()
    for view in views:
        page = _Page(view)
        if page.id in seen:  # a bfcache restore re-sends the view of a page already listed
            continue
        seen.add(page.id)
        pages.append(page)
    claimed: set[str] = set()
    for page in pages:
        page.claim_document(rows, claimed)
    pages.sort(key=lambda page: page.started_ms)
    return pages


def _pageref(row: dict[str, Any], pages: list[_Page]) -> str | None:
    ids = {page.id for page in pages}
    if row.get("page_id") in ids:
        return str(row["page_id"])
    correlation = _header(row.get("request_headers"), _REQUEST_ID)
    if correlation:
        page_id = correlation.rpartition("-")[0]
        if page_id in ids:
            return page_id
    for page in pages:
        if page.document_id == row["id"]:
            return page.id
    referer = _header(row.get("request_headers"), "referer")
    if referer:
        # The latest page at that URL already started: a URL visited twice means the visit
        # the request came after.
        wanted = _without_fragment(referer)
        start = _started(row)
        matches = [p for p in pages if p.started_ms <= start and _without_fragment(p.url) == wanted]
        if matches:
            return matches[-1].id
    return None


# ---- entries ----------------------------------------------------------------------------------


def _entry(row: dict[str, Any], pageref: str | None, bodies: bool) -> dict[str, Any]:
    timings = _timings(row.get("timings") or {})
    entry: dict[str, Any] = {}
    if pageref is not None:
        entry["pageref"] = pageref
    entry.update(
        startedDateTime=_iso(_started(row)),
        time=round(sum(v for k, v in timings.items() if k != "ssl" and v > 0), 3),
        request=_request(row, bodies),
        response=_response(row, bodies),
        cache={},
        timings=timings,
    )
    vendor: dict[str, Any] = {
        "id": row["id"],
        "service": row.get("service"),
        "path_template": row.get("path_template"),
        "auth": row.get("auth"),
    }
    for flag in ("request_body_truncated", "response_body_truncated", "streamed", "websocket"):
        if row.get(flag):
            vendor[flag] = True
    if row.get("response_body_omitted"):
        vendor["response_body_omitted"] = row["response_body_omitted"]
    entry["_rsproxy"] = vendor
    return entry


def _request(row: dict[str, Any], bodies: bool) -> dict[str, Any]:
    headers = _headers(row.get("request_headers"))
    url = row.get("url") or ""
    request: dict[str, Any] = {
        "method": row.get("method") or "GET",
        "url": url,
        "httpVersion": row.get("http_version") or "",
        "cookies": _request_cookies(headers),
        "headers": headers,
        "queryString": [
            {"name": name, "value": value}
            for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True)
        ],
        "headersSize": -1,
        "bodySize": row.get("request_size") or 0,
    }
    if row.get("request_size"):
        post: dict[str, Any] = {"mimeType": row.get("request_content_type") or ""}
        text = row.get("request_body")
        if bodies and text is not None:
            post["text"] = text
            if row.get("request_body_encoding") == "base64":
                # HAR's postData has no encoding field; the vendor field says how to read it.
                post["_encoding"] = "base64"
        elif bodies:
            post["text"] = ""
            post["comment"] = "body not captured"
        request["postData"] = post
    return request


def _response(row: dict[str, Any], bodies: bool) -> dict[str, Any]:
    status = row.get("status")
    if status is None:
        # No response at all (refused, reset, timed out): exported as browsers do, status 0.
        return {
            "status": 0,
            "statusText": "",
            "httpVersion": "",
            "cookies": [],
            "headers": [],
            "content": {"size": 0, "mimeType": "x-unknown"},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
            "_error": row.get("error") or "no response",
        }
    headers = _headers(row.get("response_headers"))
    size = row.get("response_size") or 0
    content: dict[str, Any] = {"size": size, "mimeType": row.get("response_content_type") or ""}
    text = row.get("response_body") if bodies else None
    if text is not None:
        content["text"] = text
        if row.get("response_body_encoding") == "base64":
            content["encoding"] = "base64"
        if not row.get("response_body_truncated"):
            # The stored body is decoded (no Content-Encoding), which is what HAR's size means.
            content["size"] = _decoded_size(text, row.get("response_body_encoding"))
    elif row.get("response_body_omitted"):
        content["comment"] = f"body not kept by the capture ({row['response_body_omitted']})"
    response: dict[str, Any] = {
        "status": status,
        "statusText": row.get("reason") or "",
        "httpVersion": row.get("http_version") or "",
        "cookies": _response_cookies(headers),
        "headers": headers,
        "content": content,
        "redirectURL": _header(row.get("response_headers"), "location") or "",
        "headersSize": -1,
        "bodySize": size,
    }
    if row.get("error"):
        response["_error"] = row["error"]  # a response cut short (a stream the client closed)
    return response


def _timings(t: dict[str, Any]) -> dict[str, float]:
    """HAR's phases from the capture's, in ms; -1 where unknown (HAR allows it for all but
    send, wait and receive, which are 0 when unknown)."""

    def ms(key: str) -> float | None:
        value = t.get(key)
        return float(value) if isinstance(value, (int, float)) and value >= 0 else None

    connect, tls = ms("connect_ms"), ms("tls_ms")
    # HAR's connect includes the TLS handshake, and the proxy opens the upstream connection
    # after reading the request, so the connection is inside the capture's time to first byte.
    opened = (connect or 0) + (tls or 0)
    ttfb, total, send = ms("ttfb_ms"), ms("total_ms"), ms("send_ms") or 0.0
    if ttfb is not None:
        wait = max(ttfb - opened, 0.0)
    elif total is not None:  # failed before a response: the rest of the time was spent waiting
        wait = max(total - send - opened, 0.0)
    else:
        wait = 0.0
    return {
        "blocked": -1,
        "dns": -1,
        "connect": round(opened, 3) if connect is not None else -1,
        "ssl": round(tls, 3) if tls is not None else -1,
        "send": round(send, 3),
        "wait": round(wait, 3),
        "receive": round(ms("receive_ms") or 0.0, 3),
    }


# ---- headers and cookies ----------------------------------------------------------------------


def _headers(pairs: Any) -> list[dict[str, str]]:
    """HAR headers from the stored ``[[name, value], ...]``, in order, duplicates kept."""
    return [{"name": str(name), "value": str(value)} for name, value in pairs or ()]


def _header(pairs: Any, name: str) -> str | None:
    for key, value in pairs or ():
        if str(key).lower() == name:
            return str(value)
    return None


def _request_cookies(headers: list[dict[str, str]]) -> list[dict[str, Any]]:
    cookies = []
    for header in headers:
        if header["name"].lower() != "cookie":
            continue
        for part in header["value"].split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name:
                cookies.append({"name": name, "value": value})
    return cookies


def _response_cookies(headers: list[dict[str, str]]) -> list[dict[str, Any]]:
    cookies = []
    for header in headers:
        if header["name"].lower() != "set-cookie":
            continue
        first, *attributes = header["value"].split(";")
        name, sep, value = first.strip().partition("=")
        if not sep or not name:
            continue
        cookie: dict[str, Any] = {"name": name, "value": value}
        for attribute in attributes:
            key, _, val = attribute.strip().partition("=")
            key = key.lower()
            if key in ("path", "domain"):
                cookie[key] = val
            elif key == "expires":
                # An unparseable date is left out rather than exported wrong.
                with contextlib.suppress(TypeError, ValueError):
                    cookie["expires"] = parsedate_to_datetime(val).isoformat()
            elif key == "httponly":
                cookie["httpOnly"] = True
            elif key == "secure":
                cookie["secure"] = True
        cookies.append(cookie)
    return cookies


# ---- small helpers ----------------------------------------------------------------------------


def _started(row: dict[str, Any]) -> float:
    started = row.get("started_ms")
    return float(started if started is not None else row["ts"])


def _iso(ms: float) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _without_fragment(url: str) -> str:
    return url.partition("#")[0]


def _as_requested(url: str) -> tuple[str, str]:
    """(host, path and query) of a URL the browser used."""
    parts = urlsplit(url)
    return parts.netloc.lower(), parts.path + (f"?{parts.query}" if parts.query else "")


def _browser_side(row: dict[str, Any]) -> tuple[str, str]:
    """(host, path and query) the browser asked for: the stored URL is the one the proxy sent
    upstream (the target's address), while the ``Host`` header keeps the name the browser
    used (the proxy's), as a page view's URL does."""
    host, target = _as_requested(row.get("url") or "")
    return (_header(row.get("request_headers"), "host") or host).lower(), target


def _decoded_size(text: str, encoding: str | None) -> int:
    if encoding == "base64":
        return len(base64.b64decode(text))
    # Text was decoded with the response's charset; its UTF-8 length is the nearest measure.
    return len(text.encode("utf-8"))
