"""The ``normalize`` stage: gives raw events the names the analysis groups by.

For ``http`` events (and the probe's ``resource`` events, so the catalog can use both):

* ``path_template`` (``/users/{userId}``) and ``path_params`` (``{"userId": "42"}``) from the
  path templater (rsproxy/analysis/templates.py): ids by their shape, other parameters learned
  from how many values a position takes, user-pinned ``templates`` first. When the templater
  folds earlier templates into a new one, the event carries ``template_refined_from`` (the old
  templates now equal to its own; the next event of each other new template carries that
  one's), and the event that caused the fold ``template_refinements`` (``{new: [old, ...]}``
  for every template the fold changed); ``persist`` rewrites the stored rows;
* ``service``: ``app`` for the app's own origins, a platform id (``supabase``, ``stripe``, ...)
  or the host (rsproxy/analysis/services.py);
* ``graphql`` — operation, type, fields, depth and complexity of a GraphQL request (POST JSON,
  a batch, ``GET ?query=``, ``application/graphql``; rsproxy/analysis/graphql.py);
* ``sql`` and ``tables`` for PostgREST (Supabase ``/rest/v1/``) requests, as readable SQL;
* ``request_content_type`` / ``response_content_type`` sniffed from the body when missing.

``sql`` events get ``fingerprint``, ``statement_type``, ``tables`` and ``select_star``
(rsproxy/analysis/sql.py); ``graphql`` events that carry a ``query`` but no figures get them.

Every analysis is isolated: bad input in one (a body that is not JSON, SQL nobody can parse)
leaves that field out and the rest of the event normalised. A repeated path costs one cache
lookup, so the stage stays a small part of the pipeline's budget.

Learned templates live in the stage. With ``warm_start: session`` (the default) a new stage,
after a hot reload of the pipeline, first relearns from the paths already stored for the
session, so templates do not fall back to literals mid-session; ``project`` learns from every
session of the project; ``off`` starts empty.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from typing import Any, Literal
from urllib.parse import parse_qs

from pydantic import Field, field_validator

from rsproxy.analysis.graphql import graphql_stats
from rsproxy.analysis.services import (
    ServiceResolver,
    platform_for_host,
    split_host_header,
    split_origin,
)
from rsproxy.analysis.sql import POSTGREST_PREFIX, analyze, dialect_of, postgrest_sql
from rsproxy.analysis.templates import PathTemplater, parse_pinned
from rsproxy.events import Event
from rsproxy.pipeline.stage import FailureSink, Stage, StageConfig

log = logging.getLogger("rsproxy.normalize")

_WARM_START_ROWS = 50_000
_URL_CACHE = 20_000
_DIALECT_KEYS = ("dialect", "db_system", "system", "engine", "database")
_FORM = re.compile(r"[\w.%\[\]-]+=[^&\s]*(?:&[\w.%\[\]-]+=[^&\s]*)*")
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"%PDF", "application/pdf"),
    (b"\x1f\x8b", "application/gzip"),
    (b"\x00asm", "application/wasm"),
    (b"PK\x03\x04", "application/zip"),
    (b"wOF2", "font/woff2"),
    (b"wOFF", "font/woff"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
)


class NormalizeConfig(StageConfig):
    high_cardinality_threshold: int = Field(
        default=8,
        ge=2,
        le=100_000,
        description=(
            "A path position (same scope, method, segment count and preceding segments) that "
            "takes more distinct literal values than this becomes a parameter."
        ),
    )
    app_hosts: list[str] = Field(
        default_factory=list,
        description=(
            "Extra hosts counted as the app itself: 'myapp.test' (any port), 'localhost:8000', "
            "'https://staging.example.com'. The proxy's target and address are learned."
        ),
    )
    templates: list[str] = Field(
        default_factory=list,
        description=(
            "Pinned templates that always win, optionally after a method: "
            "'/api/v1/{tenant}/items', 'GET /files/{fileId}'."
        ),
    )
    cache_size: int = Field(
        default=20_000,
        ge=1_000,
        description=(
            "Templated paths kept in the LRU cache (and the bound of the templater's other "
            "caches): about 0.5 KB each when full."
        ),
    )
    max_learned_nodes: int = Field(
        default=200_000,
        ge=1_000,
        description="Cap on the learned path tree; past it, new paths are templated by shape only.",
    )
    warm_start: Literal["session", "project", "off"] = Field(
        default="session",
        description="Stored paths to relearn from before the first batch (see the docstring).",
    )
    sniff_content_types: bool = Field(
        default=True, description="Fill in missing content types from the body."
    )

    @field_validator("templates")
    @classmethod
    def _templates_parse(cls, value: list[str]) -> list[str]:
        for spec in value:
            parse_pinned(spec)  # raises ValueError with the reason, which pydantic reports
        return value


class Normalize(Stage[NormalizeConfig]):
    """Add URL templates, services, GraphQL figures, SQL fingerprints and content types."""

    name = "normalize"
    config_model = NormalizeConfig
    example = """
- type: normalize
  high_cardinality_threshold: 8
  app_hosts: [localhost:8000]
  templates: ["/api/v1/{tenant}/items", "GET /files/{fileId}"]
"""

    def __init__(self, config: NormalizeConfig, context: Any) -> None:
        super().__init__(config, context)
        self.templater = PathTemplater(
            threshold=config.high_cardinality_threshold,
            pinned=config.templates,
            cache_size=config.cache_size,
            max_nodes=config.max_learned_nodes,
        )
        self.services = ServiceResolver(config.app_hosts)
        self._warm = config.warm_start != "off" and context is not None
        self._urls: dict[str, tuple[str, int | None, str]] = {}
        # proxy origins and Host header values already learned from (a handful per session)
        self._proxy_seen: set[Any] = set()
        self._sniff = config.sniff_content_types

    # ---- batches ----------------------------------------------------------------------------------

    def process(self, batch: list[Event], failed: FailureSink) -> list[Event]:
        if self._warm:
            self._warm = False  # once, and in the worker thread: never on the proxy's loop
            self._warm_start()
        return super().process(batch, failed)

    def _warm_start(self) -> None:
        store = getattr(self.context, "store", None)
        session_id = getattr(self.context, "session_id", None)
        if store is None:
            return
        try:
            for row in store.query("SELECT meta FROM sessions WHERE id = ?", [session_id]):
                meta = json.loads(row["meta"]) if row.get("meta") else {}
                proxy_url = meta.get("proxy_url") if isinstance(meta, dict) else None
                if isinstance(proxy_url, str):
                    self.services.learn_app(*split_origin(proxy_url))
            where = "WHERE session_id = ?" if self.config.warm_start == "session" else ""
            params: list[Any] = [session_id] if where else []
            rows = store.query(
                f"""SELECT service, host, port, method, path FROM http {where}
                    GROUP BY ALL ORDER BY min(ts) LIMIT {_WARM_START_ROWS}""",
                params,
            )
        except Exception:
            log.exception("normalize: could not read stored paths to relearn from")
            return
        for row in rows:
            host, method, path = row["host"] or "", row["method"] or "GET", row["path"]
            if not isinstance(path, str):
                continue
            if row["service"] == "app":
                if where:  # this session's app origins (another session's target may differ)
                    self.services.learn_app(host, row["port"])
                scope = "app"
            else:
                scope = host
            self.templater.template(scope, method, path)

    # ---- events -----------------------------------------------------------------------------------

    def handle(self, event: Event) -> Event:
        kind = event.kind
        if kind == "http":
            self._http(event)
        elif kind == "resource":
            self._resource(event.data)
        elif kind == "sql":
            self._sql(event.data)
        elif kind == "graphql":
            self._graphql_event(event.data)
        return event

    def _http(self, event: Event) -> None:
        # The hot path: every proxied exchange comes through here, so lookups are few and
        # the optional analyses are gated on cheap tests of what the event holds.
        data = event.data
        get = data.get
        host = get("host")
        port = get("port")
        path = get("path")
        if not isinstance(host, str) or not isinstance(path, str):
            url = get("url")
            if isinstance(url, str):
                url_host, url_port, url_path = self._split_url(url)
                if not isinstance(host, str):
                    host, port = url_host, url_port
                if not isinstance(path, str):
                    path = url_path
            if not isinstance(path, str):
                return  # no path anywhere: nothing to template
            if not isinstance(host, str):
                host = ""
        method = get("method")
        if not isinstance(method, str):
            method = "GET"
        service = get("service")
        if not service:
            if event.source == "proxy":
                # Everything the (reverse) proxy captures is the app's; it also shows the app's
                # origins, which the probe's events for the same requests are matched against.
                self._learn_from_proxy(host, port, get("request_headers"), get("scheme"))
                service = "app"
            else:
                if event.source == "replay":  # a browser's recording: its headers tell
                    self._learn_from_browser_hints(host, port, data)
                service = self.services.service(host, port)
            data["service"] = service
        self._template(data, "app" if service == "app" else host, method, path)
        if path.startswith(POSTGREST_PREFIX):
            self._postgrest(data, method, path)
        body = get("request_body")
        if body and isinstance(body, str):
            if (
                body[:1] in ("{", "[")
                or body.lstrip()[:1] in ("{", "[")
                or get("request_content_type") == "application/graphql"
            ):
                self._graphql_http(data, method)
            if self._sniff and not get("request_content_type"):
                sniffed = _safely(sniff_content_type, body, get("request_body_encoding"))
                if sniffed:
                    data["request_content_type"] = sniffed
        elif method == "GET":
            query = get("query")
            if isinstance(query, str) and "query=" in query:
                self._graphql_http(data, method)
        if self._sniff and not get("response_content_type"):
            response = get("response_body")
            if response and isinstance(response, str):
                sniffed = _safely(sniff_content_type, response, get("response_body_encoding"))
                if sniffed:
                    data["response_content_type"] = sniffed

    def _resource(self, data: dict[str, Any]) -> None:
        url = data.get("url")
        if not isinstance(url, str):
            return  # the probe's per-page resource summary has no URL
        host, port, path = self._split_url(url)
        service = self.services.service(host, port)
        data["service"] = service
        method = data.get("method")
        self._template(
            data,
            "app" if service == "app" else host,
            method if isinstance(method, str) else "GET",
            path,
        )

    def _template(self, data: dict[str, Any], scope: str, method: str, path: str) -> None:
        templated = self.templater.template(scope, method, path)
        data["path_template"] = templated.template
        if templated.params:
            data["path_params"] = templated.params.copy()  # the templater's is shared
        if templated.refined_from:
            data["template_refined_from"] = list(templated.refined_from)
        if templated.refinements:
            data["template_refinements"] = {new: list(old) for new, old in templated.refinements}

    def _split_url(self, url: str) -> tuple[str, int | None, str]:
        found = self._urls.get(url)
        if found is None:
            host, port = split_origin(url)
            rest = url.split("://", 1)[-1]
            slash = rest.find("/")
            path = rest[slash:] if slash >= 0 else "/"
            path = path.split("?", 1)[0].split("#", 1)[0] or "/"
            found = (host, port, path)
            if len(self._urls) > _URL_CACHE:
                self._urls.clear()
            self._urls[url] = found
        return found

    # ---- services ---------------------------------------------------------------------------------

    def _learn_from_proxy(
        self, host: str, port: Any, headers: list[Any] | None, scheme: Any
    ) -> None:
        origin = (host, port)
        seen = self._proxy_seen
        if len(seen) > 1_000:  # only a confused client sends a thousand names for one proxy
            seen.clear()
        if origin not in seen:
            seen.add(origin)
            self.services.learn_app(host, port if isinstance(port, int) else None)
        if not headers:
            return
        value = None
        try:
            first = headers[0]
            if first[0] in ("host", "Host"):  # HTTP/1.1 clients send it first
                value = first[1]
            else:
                for name, header_value in headers:
                    if len(name) == 4 and name.lower() == "host":
                        value = header_value
                        break
        except (TypeError, ValueError, IndexError, KeyError, AttributeError):
            return  # headers not in the capture addon's shape: nothing to learn from them
        if isinstance(value, str) and value not in seen:
            seen.add(value)
            default = 443 if scheme == "https" else 80
            self.services.learn_app(*split_host_header(value, default))

    def _learn_from_browser_hints(self, host: str, port: Any, data: dict[str, Any]) -> None:
        """Without a proxy (a replayed HAR), the browser's own headers tell which requests came
        from the app's origin: a page document it navigated to, a same-origin request."""
        port = port if isinstance(port, int) else None
        services = self.services
        if not host or services.is_app(host, port) or platform_for_host(host):
            return
        headers = _header_map(data.get("request_headers"))
        site = headers.get("sec-fetch-site")
        document = headers.get("sec-fetch-dest") == "document" and site in (
            None,
            "none",
            "same-origin",
        )
        same_origin = site == "same-origin" or any(
            split_origin(headers[name]) == (host, port)
            for name in ("origin", "referer")
            if name in headers
        )
        status = data.get("status")
        html = (
            data.get("method") == "GET"
            and "text/html" in str(data.get("response_content_type") or "")
            and isinstance(status, int)
            and 200 <= status < 300
        )
        if document or same_origin or (html and site is None):
            services.learn_app(host, port)

    # ---- GraphQL, PostgREST, SQL ------------------------------------------------------------------

    def _graphql_http(self, data: dict[str, Any], method: str) -> None:
        operations: list[tuple[str, str | None]] = []
        body = data.get("request_body")
        ctype = str(data.get("request_content_type") or "").lower()
        if isinstance(body, str) and data.get("request_body_encoding", "text") in ("text", None):
            start = body[:1] if body[:1] in "{[" else body.lstrip()[:1]
            if start in ("{", "[") and '"query"' in body:
                try:
                    parsed = json.loads(body)
                except (ValueError, RecursionError):
                    parsed = None
                for item in parsed if isinstance(parsed, list) else [parsed]:
                    if isinstance(item, dict) and isinstance(item.get("query"), str):
                        name = item.get("operationName")
                        operations.append((item["query"], name if isinstance(name, str) else None))
            elif "graphql" in ctype:
                operations.append((body, None))
        query = data.get("query")
        if not operations and method == "GET" and isinstance(query, str) and "query=" in query:
            params = parse_qs(query)
            if params.get("query"):
                names = params.get("operationName")
                operations.append((params["query"][0], names[0] if names else None))
        if not operations:
            return
        stats = _safely(graphql_stats, *operations[0])
        if stats is None:
            return
        result = dict(stats)
        if len(operations) > 1:
            result["batch"] = len(operations)
        data["graphql"] = result

    def _postgrest(self, data: dict[str, Any], method: str, path: str) -> None:
        headers = _header_map(data.get("request_headers"))
        body = data.get("request_body")
        rendered = _safely(
            postgrest_sql,
            method,
            path,
            data.get("query") or "",
            body if isinstance(body, str) else None,
            headers,
        )
        if rendered is not None:
            data["sql"] = rendered.sql
            data["tables"] = list(rendered.tables)

    def _sql(self, data: dict[str, Any]) -> None:
        text = data.get("text")
        if not isinstance(text, str) or "fingerprint" in data:
            return
        dialect = None
        for key in _DIALECT_KEYS:  # the first field naming a system sqlglot knows
            value = data.get(key)
            if isinstance(value, str):
                dialect = dialect_of(value)
                if dialect:
                    break
        info = _safely(analyze, text, dialect)
        if info is not None:
            data.update(info.as_payload())

    def _graphql_event(self, data: dict[str, Any]) -> None:
        url = data.get("url")
        if isinstance(url, str) and "service" not in data:
            host, port, _ = self._split_url(url)
            data["service"] = self.services.service(host, port)
        query = data.get("query")
        if "field_count" in data or not isinstance(query, str):
            return  # the probe has counted already (its payload's names: field_count, ...)
        name = data.get("operation_name")
        stats = _safely(graphql_stats, query, name if isinstance(name, str) else None)
        if stats is not None:
            data.setdefault("operation_name", stats["operation_name"])
            data.setdefault("operation_type", stats["operation_type"])
            data["field_count"] = stats["fields"]
            data["depth"] = stats["depth"]
            data["complexity"] = stats["complexity"]


def _header_map(headers: Any) -> dict[str, str]:
    """Lower-cased header names to values; anything not a (name, value) pair is skipped."""
    out: dict[str, str] = {}
    if isinstance(headers, (list, tuple)):
        for header in headers:
            if isinstance(header, (list, tuple)) and len(header) == 2:
                out[str(header[0]).lower()] = str(header[1])
    return out


def _safely(function: Any, *args: Any) -> Any:
    """One analysis's result, or None if it fails: the event keeps everything else."""
    try:
        return function(*args)
    except Exception:
        log.debug("normalize: %s failed", getattr(function, "__name__", function), exc_info=True)
        return None


def sniff_content_type(body: str, encoding: str | None = "text") -> str | None:
    """A content type for a body that came without one, from its first bytes."""
    if encoding == "base64":
        try:
            head = base64.b64decode(body[:32] + "=" * (-len(body[:32]) % 4))
        except (binascii.Error, ValueError):
            return None
        for magic, ctype in _MAGIC:
            if head.startswith(magic):
                return ctype
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return "image/webp"
        return "application/octet-stream"
    text = body.lstrip()[:512]
    if not text:
        return None
    lower = text.lower()
    if text[0] in "{[":
        try:
            json.loads(body)
            return "application/json"
        except (ValueError, RecursionError):
            # cut short by the capture limit, or JSON lines: still JSON to a reader
            first_line = body.lstrip().split("\n", 1)[0]
            try:
                json.loads(first_line)
                return "application/x-ndjson" if "\n" in body.strip() else "application/json"
            except (ValueError, RecursionError):
                return "application/json" if text[0] == "{" and '":' in text else "text/plain"
    if lower.startswith(("<!doctype html", "<html")) or "<head" in lower[:200]:
        return "text/html"
    if lower.startswith("<svg") or (lower.startswith("<?xml") and "<svg" in lower):
        return "image/svg+xml"
    if lower.startswith("<?xml") or (lower.startswith("<") and lower.rstrip().endswith(">")):
        return "application/xml"
    if text.startswith("--") and "content-disposition" in lower:
        return "multipart/form-data"
    if "\n" not in body.strip() and _FORM.fullmatch(body.strip()):
        return "application/x-www-form-urlencoded"
    return "text/plain"
