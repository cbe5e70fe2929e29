"""Read HAR files entry by entry, and turn each entry into the ``http`` event live capture makes.

A HAR file can be hundreds of megabytes (bodies are embedded), so it is never loaded whole:
``HarReader`` walks the top-level object and ``log`` with a small hand-written tokenizer and hands
each element of ``log.entries`` to ``json.JSONDecoder.raw_decode`` on its own, over a text buffer
that only ever holds the entry being parsed plus one read chunk. Memory stays proportional to the
largest entry, not to the file.

The reader is tolerant of what real tools write (Chromium, Firefox, Safari, Charles, Fiddler,
HTTP Toolkit, mitmproxy): a UTF-8 byte-order mark, bytes that are not UTF-8 (read as Latin-1, the
usual culprit), ``version`` before or after ``entries``, pages or none, vendor ``_fields``.
``entry_event`` is tolerant of absent optional fields, ``-1`` timings, base64 and empty bodies,
duplicate headers and HTTP/2 pseudo-headers; an entry it cannot use raises ``BadEntry`` with the
reason, and the replay skips it. Problems with the file itself raise ``HarFormatError`` naming
the file, the position and what would be valid.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from rsproxy.addons.capture import _TEXTUAL, _charset, _looks_textual, auth_pattern
from rsproxy.errors import HarFormatError
from rsproxy.events import Event

VERSIONS = ("1.1", "1.2")
CHUNK = 1 << 20
_WS = " \t\r\n"


def _latin1_fallback(exc: UnicodeError) -> tuple[str, int]:
    # A HAR must be UTF-8, but some Windows tools write their text as Latin-1/cp1252: keep those
    # bytes as the Latin-1 characters they most likely are rather than failing or losing them.
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return exc.object[exc.start : exc.end].decode("latin-1"), exc.end


codecs.register_error("rsproxy-latin1", _latin1_fallback)


class BadEntry(ValueError):
    """An entry the replay skips; the message is the reason, counted per kind of problem."""


class HarReader:
    """Streams ``log.entries`` of a HAR file; ``version``, ``creator`` and ``pages`` as they come.

    ``entries()`` yields each entry as parsed JSON (whatever its type: ``entry_event`` judges it).
    It raises ``HarFormatError`` for a file that is not a HAR: not JSON, truncated, a version
    other than 1.1/1.2, no ``log`` or no ``log.entries``. ``bytes_read`` is for progress bars.
    """

    def __init__(self, path: Path, chunk_size: int = CHUNK) -> None:
        self.path = path
        self.chunk_size = chunk_size
        self.version: str | None = None
        self.creator: str | None = None
        self.pages: list[dict[str, Any]] = []
        self.entries_seen = 0
        self.bytes_read = 0
        self._decoder = json.JSONDecoder()
        self._text = codecs.getincrementaldecoder("utf-8-sig")(errors="rsproxy-latin1")
        self._file: IO[bytes] | None = None
        self._buf = ""
        self._pos = 0
        self._eof = False
        # Where the buffer starts in the file's text: for line and column in error messages.
        self._base_offset = 0
        self._base_line = 1
        self._base_line_start = 0

    # ---- the public walk -------------------------------------------------------------------------

    def entries(self) -> Iterator[Any]:
        with self.path.open("rb") as self._file:
            self._expect("{", "a JSON object (a HAR file starts with {)")
            saw_log = False
            for key in self._members("the top-level object"):
                if key == "log":
                    saw_log = True
                    yield from self._log()
                else:
                    self._value()
            self._skip_ws()
            if self._pos < len(self._buf):
                self._fail("unexpected data after the top-level object")
        if not saw_log:
            raise HarFormatError(
                f"{self.path}: not a HAR file: the top-level object has no 'log' "
                '(a HAR file is {"log": {"version": "1.2", "entries": [...]}})'
            )

    def _log(self) -> Iterator[Any]:
        self._expect("{", "an object as the value of 'log'")
        saw_entries = False
        for key in self._members("'log'"):
            if key == "entries":
                saw_entries = True
                yield from self._entries()
            elif key == "version":
                self.version = self._value()
                self._check_version()
            elif key == "creator":
                creator = self._value()
                if isinstance(creator, dict):
                    name, version = creator.get("name"), creator.get("version")
                    self.creator = " ".join(str(p) for p in (name, version) if p) or None
            elif key == "pages":
                pages = self._value()
                if isinstance(pages, list):
                    self.pages = [p for p in pages if isinstance(p, dict)]
            else:
                self._value()
        if self.version is None:
            raise HarFormatError(
                f"{self.path}: 'log' has no 'version'; valid versions are {', '.join(VERSIONS)}"
            )
        if not saw_entries:
            raise HarFormatError(
                f"{self.path}: 'log' has no 'entries' list; a HAR lists its requests in log.entries"
            )

    def _check_version(self) -> None:
        if self.version not in VERSIONS:
            raise HarFormatError(
                f"{self.path}: HAR version {self.version!r} is not supported; valid versions are "
                f"{' and '.join(VERSIONS)} (log.version)"
            )

    def _entries(self) -> Iterator[Any]:
        self._expect("[", "a list as the value of 'log.entries'")
        self._skip_ws()
        if self._peek() == "]":
            self._pos += 1
            return
        while True:
            yield self._value(f"entry {self.entries_seen}")
            self.entries_seen += 1
            self._skip_ws()
            char = self._peek()
            if char == ",":
                self._pos += 1
            elif char == "]":
                self._pos += 1
                return
            else:
                self._fail(
                    f"expected ',' or ']' after entry {self.entries_seen - 1} in log.entries"
                )

    # ---- tokenizer -------------------------------------------------------------------------------

    def _members(self, where: str) -> Iterator[str]:
        """The keys of the object just opened; the caller consumes each key's value."""
        self._skip_ws()
        if self._peek() == "}":
            self._pos += 1
            return
        while True:
            self._skip_ws()
            if self._peek() != '"':
                self._fail(f"expected a quoted key in {where}")
            key = self._value(f"a key of {where}")
            self._expect(":", f"':' after the key {key!r} in {where}")
            yield key
            self._skip_ws()
            char = self._peek()
            if char == ",":
                self._pos += 1
            elif char == "}":
                self._pos += 1
                return
            else:
                self._fail(f"expected ',' or '}}' after the value of {key!r} in {where}")

    def _value(self, what: str = "a value") -> Any:
        """One whole JSON value at the cursor, reading more of the file until it is complete."""
        self._skip_ws()
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                # An error well before the buffer's end is in the file, not a value cut by the
                # chunk; don't read (and hold) the rest of a big file before saying so.
                cut = exc.msg.startswith("Unterminated string") or exc.pos >= len(self._buf) - 64
                if self._eof or not cut:
                    self._syntax_error(exc, what)
                self._read_more()
                continue
            # A number that ends at the buffer's end may go on in the next chunk.
            if end >= len(self._buf) and not self._eof:
                self._read_more()
                continue
            self._pos = end
            return value

    def _expect(self, char: str, what: str) -> None:
        self._skip_ws()
        if self._peek() != char:
            self._fail(f"expected {what}")
        self._pos += 1

    def _peek(self) -> str:
        if self._pos >= len(self._buf) and not self._eof:
            self._read_more()
        return self._buf[self._pos] if self._pos < len(self._buf) else ""

    def _skip_ws(self) -> None:
        while True:
            while self._pos < len(self._buf) and self._buf[self._pos] in _WS:
                self._pos += 1
            if self._pos < len(self._buf) or self._eof:
                return
            self._read_more()

    def _read_more(self) -> None:
        assert self._file is not None
        # Drop what has been consumed, remembering where the buffer now starts in the file.
        if self._pos:
            consumed = self._buf[: self._pos]
            newlines = consumed.count("\n")
            if newlines:
                self._base_line += newlines
                self._base_line_start = self._base_offset + consumed.rindex("\n") + 1
            self._base_offset += self._pos
            self._buf = self._buf[self._pos :]
            self._pos = 0
        # Grow the read for an entry bigger than a chunk, so a huge entry costs few re-parses.
        size = max(self.chunk_size, len(self._buf))
        raw = self._file.read(size)
        self.bytes_read += len(raw)
        if not raw:
            self._eof = True
            self._buf += self._text.decode(b"", final=True)
            return
        self._buf += self._text.decode(raw)

    # ---- errors ----------------------------------------------------------------------------------

    def _where(self, pos: int) -> str:
        offset = self._base_offset + pos
        before = self._buf[:pos]
        newlines = before.count("\n")
        line = self._base_line + newlines
        start = self._base_offset + before.rindex("\n") + 1 if newlines else self._base_line_start
        return f"line {line}, column {offset - start + 1} (character {offset})"

    def _fail(self, message: str) -> None:
        if self._pos >= len(self._buf) and self._eof:
            raise HarFormatError(
                f"{self.path}: the file ends too early ({self._where(self._pos)}): {message}. "
                f"It is truncated or not a complete HAR; {self.entries_seen} entries were "
                "complete before the cut"
            )
        found = self._buf[self._pos : self._pos + 20]
        raise HarFormatError(
            f"{self.path}: {self._where(self._pos)}: {message}, found {found!r}"
            + self._not_json_hint()
        )

    def _syntax_error(self, exc: json.JSONDecodeError, what: str) -> None:
        at_end = exc.pos >= len(exc.doc.rstrip()) or exc.msg.startswith("Unterminated string")
        if at_end:
            raise HarFormatError(
                f"{self.path}: the file ends inside {what} ({self._where(exc.pos)}): it is "
                f"truncated; {self.entries_seen} entries were complete before the cut"
            ) from None
        raise HarFormatError(
            f"{self.path}: invalid JSON in {what} at {self._where(exc.pos)}: {exc.msg}"
            + self._not_json_hint()
        ) from None

    def _not_json_hint(self) -> str:
        if self._base_offset == 0 and self.entries_seen == 0 and self.version is None:
            return " (is this a HAR file? it should be JSON exported from a browser or a proxy)"
        return ""


# ---- entries to events ---------------------------------------------------------------------------


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadEntry(f"{where} is missing or not an object")
    return value


def _started_ms(entry: dict[str, Any]) -> float:
    raw = entry.get("startedDateTime")
    if not isinstance(raw, str) or not raw:
        raise BadEntry("startedDateTime is missing")
    try:
        when = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise BadEntry("startedDateTime is not an ISO 8601 date") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # no zone given: UTC is what HAR writers mean
    return when.timestamp() * 1000


def _headers(message: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for header in message.get("headers") or ():
        if not isinstance(header, dict):
            continue
        name, value = header.get("name"), header.get("value")
        # HTTP/2 pseudo-headers (:authority, :path) are not headers in live capture either.
        if not isinstance(name, str) or not name or name.startswith(":"):
            continue
        out.append((name, "" if value is None else str(value)))
    return out


def _ms(value: Any) -> float | None:
    """A HAR timing in ms; ``-1`` (and anything not a number) means the phase did not apply."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return round(float(value), 3)


def _timings(entry: dict[str, Any]) -> dict[str, float | None]:
    t = entry.get("timings") if isinstance(entry.get("timings"), dict) else {}
    assert isinstance(t, dict)
    connect, ssl = _ms(t.get("connect")), _ms(t.get("ssl"))
    if connect is not None and ssl is not None:
        connect = round(max(connect - ssl, 0.0), 3)  # HAR counts TLS inside connect
    total = _ms(entry.get("time"))
    if total is None:
        parts = [_ms(t.get(k)) for k in ("blocked", "dns", "connect", "send", "wait", "receive")]
        known = [p for p in parts if p is not None]
        total = round(sum(known), 3) if known else None
    return {
        "dns_ms": _ms(t.get("dns")),
        "connect_ms": connect,
        "tls_ms": ssl,
        "send_ms": _ms(t.get("send")),
        "ttfb_ms": _ms(t.get("wait")),
        "receive_ms": _ms(t.get("receive")),
        "total_ms": total,
    }


def _size(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _body(
    data: dict[str, Any], side: str, text: Any, encoding: Any, ctype: str, limit: int
) -> None:
    """Fill ``{side}_body*`` as capture does: text kept up to ``limit`` bytes, small binary
    bodies as base64, larger binary ones described as omitted."""
    if not isinstance(text, str) or not text:
        return
    if isinstance(encoding, str) and encoding.lower() == "base64":
        try:
            raw = base64.b64decode(text, validate=False)
        except (binascii.Error, ValueError):
            data[f"{side}_body_omitted"] = "undecodable-base64"
            return
        if not raw:
            return
        data.setdefault(f"{side}_size", len(raw))
        if _TEXTUAL.match(ctype) or (not ctype and _looks_textual(raw)):
            charset = _charset(ctype) or "utf-8"
            head = raw[:limit]
            data[f"{side}_body"] = head.decode(charset, "replace")
            data[f"{side}_body_encoding"] = "text"
            data[f"{side}_body_truncated"] = len(raw) > limit
        elif len(raw) <= 4096:
            data[f"{side}_body"] = base64.b64encode(raw).decode()
            data[f"{side}_body_encoding"] = "base64"
            data[f"{side}_body_truncated"] = False
        else:
            data[f"{side}_body_omitted"] = "binary"
        return
    # Plain text: the limit is in bytes like live capture's, so cut the UTF-8 form.
    raw_text = text.encode("utf-8", "surrogatepass")
    data.setdefault(f"{side}_size", len(raw_text))
    if len(raw_text) > limit:
        text = raw_text[:limit].decode("utf-8", "ignore")
    data[f"{side}_body"] = text
    data[f"{side}_body_encoding"] = "text"
    data[f"{side}_body_truncated"] = len(raw_text) > limit


def entry_event(entry: Any, body_limit: int) -> Event:
    """The ``http`` event for one HAR entry, ``source="replay"``; ``BadEntry`` if it is unusable.

    Required: ``request`` with ``method`` and an absolute http(s) ``url``, ``startedDateTime``.
    Everything else is optional; a ``response`` with status 0 or none (a blocked or failed
    request, as Chromium writes it) becomes an exchange without a response, like live capture.
    """
    entry = _object(entry, "the entry")
    request = _object(entry.get("request"), "request")
    method = request.get("method")
    if not isinstance(method, str) or not method.strip():
        raise BadEntry("request.method is missing")
    url = request.get("url")
    if not isinstance(url, str) or not url:
        raise BadEntry("request.url is missing")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise BadEntry("request.url is not an absolute http(s) URL")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise BadEntry("request.url has an invalid port") from None
    started = _started_ms(entry)
    request_headers = _headers(request)
    lookup = {name.lower(): value for name, value in request_headers}
    query = parts.query
    data: dict[str, Any] = {
        "method": method.strip().upper(),
        "url": url,
        "scheme": parts.scheme.lower(),
        "host": parts.hostname,
        "port": port,
        "path": parts.path or "/",
        "query": query,
        "http_version": str(request.get("httpVersion") or ""),
        "request_headers": request_headers,
        "request_content_type": lookup.get("content-type"),
        # Classified here, before the redact stage removes what it is read from.
        "auth": auth_pattern(lookup, query),
        "websocket": lookup.get("upgrade", "").lower() == "websocket"
        or isinstance(entry.get("_webSocketMessages"), list),
        "started_ms": started,
        "timings": _timings(entry),
        "streamed": False,
    }
    post = request.get("postData")
    data["request_size"] = _size(request.get("bodySize")) or 0
    if isinstance(post, dict):
        ctype = str(post.get("mimeType") or lookup.get("content-type") or "")
        data["request_content_type"] = data["request_content_type"] or ctype or None
        encoding = post.get("encoding") or ("base64" if post.get("_base64") else None)
        _body(data, "request", post.get("text"), encoding, ctype, body_limit)
        if data["request_size"] == 0 and isinstance(post.get("text"), str):
            data["request_size"] = len(post["text"].encode("utf-8", "surrogatepass"))
    response = entry.get("response")
    status = response.get("status") if isinstance(response, dict) else None
    if not isinstance(response, dict) or not isinstance(status, int) or status <= 0:
        reason = response.get("_error") if isinstance(response, dict) else None
        data.update(
            status=None,
            response_headers=[],
            response_size=0,
            error=str(reason or entry.get("_error") or "no response was recorded"),
        )
        return Event(kind="http", data=data, source="replay", ts=started, page_id=_page(entry))
    response_headers = _headers(response)
    response_lookup = {name.lower(): value for name, value in response_headers}
    content = response.get("content") if isinstance(response.get("content"), dict) else {}
    assert isinstance(content, dict)
    ctype = response_lookup.get("content-type") or str(content.get("mimeType") or "")
    data.update(
        status=status,
        reason=str(response.get("statusText") or "") or None,
        response_headers=response_headers,
        response_content_type=ctype or None,
    )
    # bodySize is what came over the wire (-1 or 0 when unknown or cached); content.size is the
    # decoded size. Prefer the wire size, like live capture, and fall back to the decoded one.
    size = _size(response.get("bodySize")) or _size(response.get("_transferSize"))
    if size is None or size == 0:
        size = _size(content.get("size"))
    if size is not None:
        data["response_size"] = size
    _body(data, "response", content.get("text"), content.get("encoding"), ctype, body_limit)
    data.setdefault("response_size", 0)
    return Event(kind="http", data=data, source="replay", ts=started, page_id=_page(entry))


def _page(entry: dict[str, Any]) -> str | None:
    ref = entry.get("pageref")
    return ref if isinstance(ref, str) and ref else None


def page_event(page: dict[str, Any]) -> Event | None:
    """A ``page_view`` event for a HAR page, or None when it lacks what one needs."""
    page_id, title = page.get("id"), page.get("title")
    try:
        started = _started_ms(page)
    except BadEntry:
        return None
    if not isinstance(page_id, str) or not page_id:
        return None
    # Chromium titles a page with its URL; other tools with the document's title.
    url = title if isinstance(title, str) and "://" in title else ""
    data = {"url": url, "title": str(title or ""), "navigation": "load"}
    return Event(kind="page_view", data=data, source="replay", ts=started, page_id=page_id)
