"""The ``catalog`` stage: API discovery — every endpoint the app calls, and its contract.

An endpoint is (session, service, method, path template): ``GET app /api/users/{userId}``. The
``normalize`` stage names the service and the template; without it the host and the literal path
stand in. For each endpoint the stage keeps what SQL over the ``http`` table cannot give cheaply
(docs/analysis-contract.md) and writes it to the ``endpoints`` table:

* contracts — JSON Schemas (rsproxy/analysis/schema.py) of the request body (JSON or a form),
  of the query string and path parameters, and of the response body per status code, each
  merged across samples; a body cut short by the capture limit, or kept as base64, is not a
  sample (its shape cannot be trusted);
* auth patterns seen (bearer, basic, api_key_header, api_key_query, cookie, none — the ``auth``
  field the capture classified before redaction) with the header, parameter or cookie *names*
  they travel in, never a value;
* request and response content types, the origins it was called on, the first event ids, one
  example body per status code, and one sample request (method, URL, headers and body, as
  redacted) for a cURL command.

Alongside, each endpoint's running figures (rsproxy/analysis/figures.py: calls by status and
auth, first and last seen, last success, a latency histogram, the newest error samples) go to
the ``endpoint_figures`` table, which the catalog reports read instead of grouping a session's
``http`` rows at every question. Once an endpoint is catalogued every exchange of it counts, a
page or static response included (an HTML error page from a proxy in front of the API); the
static responses of a path before its first API answer are not part of any endpoint. An
endpoint loaded from a store written before figures were kept has none, and the reports count
that session's rows themselves.

Cost: the stage sees every event of a busy session, so the common path is a few dict lookups,
and the tests on a path (dev-server internals, static files) are made once per endpoint. A body
is parsed only when it can teach something: a body identical to one already merged (same hash)
is skipped, since merging it again changes nothing; after ``full_samples`` parsed bodies only
one new body in ``sample_every`` is parsed, and fewer still while the contract stays settled
(see ``_Contract.due``). So a field that appears in only a few responses of a busy endpoint may
be missed for a while; a field once seen missing is optional from then on.

When ``normalize`` folds templates into a new one (``template_refined_from``), their endpoints
are merged into the new endpoint and their rows deleted. Rows are written by the pipeline worker
(the store's only writer): while busy, at most every ``write_interval_ms``, only the endpoints
with news a reader would miss (new endpoint, status, auth pattern, content type, origin or
contract change); endpoints whose counts alone moved are written when the worker is idle and on
close. Figures, small and what every catalog answer reads, are written for every endpoint
called since the last write, at most every ``write_interval_ms`` while busy and whenever the
worker is idle, so they trail the ``http`` rows by that interval at most. A restarted or
reloaded stage picks up the session's endpoints and figures from the store.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Hashable
from typing import Any, Literal
from urllib.parse import parse_qs

from pydantic import Field

from rsproxy.analysis.assets import is_asset_path, is_asset_type
from rsproxy.analysis.figures import Figures
from rsproxy.analysis.schema import Limits, Schema, SchemaAccumulator, infer, object_of_texts
from rsproxy.events import Event
from rsproxy.pipeline.stage import FailureSink, Stage, StageConfig, StageContext

log = logging.getLogger("rsproxy.catalog")

DATA_VERSION = 1

# Request headers that say how a request authenticates, by the pattern the capture classified.
# The capture's own lists (addons/capture.py) decide the pattern; these find the *name* it used.
_API_KEY_HEADER_HINT = re.compile(r"api[-_]?key|auth[-_]?token|access[-_]?token|^x-token$", re.I)
_API_KEY_PARAMS = frozenset({"api_key", "apikey", "key", "access_token", "token", "auth"})
_SESSION_COOKIE = re.compile(r"sess|sid\b|auth|token|jwt|login|remember", re.IGNORECASE)
# Not worth replaying in a cURL command: set by curl itself, or by the connection.
_CURL_SKIP_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "accept-encoding",
        "upgrade",
        "te",
        "proxy-connection",
        "x-rsproxy-request-id",  # the probe's correlation header, not the app's
    }
)
DEFAULT_EXCLUDE_PATHS = [
    "/__rsproxy/",
    "/@vite/",
    "/@fs/",
    "/@id/",
    "/@react-refresh",
    "/node_modules/",
    "/__webpack_hmr",
    "/_next/static/",
    "/_next/webpack-hmr",
    "/sockjs-node/",
    "/favicon.ico",
]

# What _verdict makes of a response content type.
_KEEP, _STATIC, _PAGE = 0, 1, 2

SourceName = Literal["proxy", "probe", "replay", "tap", "agent", "scanner"]

_EXAMPLE_CHARS = 2048  # a body longer than this is not kept as an example
_SAMPLE_BODY_CHARS = 4096  # a request body longer than this is left out of the cURL sample
_MAX_STATUSES = 20  # distinct status codes kept per endpoint
_MAX_NAMES = 5  # origins, content types, auth names kept per endpoint
_MAX_HASHES = 64  # body hashes remembered per contract
_MAX_BACKOFF = 64  # a settled contract parses at least one sample in sample_every * this


class CatalogConfig(StageConfig):
    sources: list[SourceName] | None = Field(
        default=None,
        description="Event sources whose http events are catalogued (default: every source).",
    )
    include_pages: bool = Field(
        default=False,
        description="Also catalogue HTML page loads (GET answered with text/html).",
    )
    include_static: bool = Field(
        default=False,
        description="Also catalogue static assets (scripts, styles, images, fonts).",
    )
    exclude_paths: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EXCLUDE_PATHS),
        description="Path prefixes never catalogued (dev-server internals, HMR).",
    )
    max_endpoints: int = Field(
        default=2000, gt=0, description="Endpoints kept per session; later ones are counted only."
    )
    full_samples: int = Field(
        default=20, ge=1, description="Bodies inferred per contract before sampling starts."
    )
    sample_every: int = Field(
        default=10, ge=1, description="After full_samples, infer one new body in this many."
    )
    max_body_bytes: int = Field(
        default=256 * 1024, gt=0, description="Longer bodies are not parsed for a contract."
    )
    max_depth: int = Field(default=12, ge=1, description="Schema nesting kept.")
    max_properties: int = Field(default=200, ge=1, description="Properties kept per object.")
    max_array_items: int = Field(default=20, ge=1, description="Array items inferred per sample.")
    sample_ids: int = Field(default=10, ge=0, description="Event ids kept per endpoint.")
    write_interval_ms: int = Field(
        default=1000, ge=0, description="While busy, write changed endpoints at most this often."
    )


_MEDIA_CACHE: dict[str, str] = {}


def _media_type(content_type: str | None) -> str:
    """``application/json`` from ``Application/JSON; charset=utf-8``; cached, since the same
    few header values repeat on every exchange."""
    if not content_type:
        return ""
    media = _MEDIA_CACHE.get(content_type)
    if media is None:
        media = content_type.split(";", 1)[0].strip().lower()
        if len(_MEDIA_CACHE) < 1000:
            _MEDIA_CACHE[content_type] = media
    return media


def _is_json_media(media: str) -> bool:
    return media.endswith("json")  # application/json, application/problem+json, ...


def _origin(data: dict[str, Any]) -> str | None:
    host = data.get("host")
    if not host:
        return None
    scheme = data.get("scheme") or "http"
    port = data.get("port")
    default = 443 if scheme == "https" else 80
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def _add_name(names: list[str], name: str) -> bool:
    if not name or name in names or len(names) >= _MAX_NAMES:
        return False
    names.append(name)
    return True


class _Contract:
    """One contract (a body's, a query string's, the path parameters'), the hashes of the
    samples already merged into it, and how often the next ones are worth parsing."""

    __slots__ = ("acc", "example", "hashes", "media_type", "stable", "step")

    def __init__(self, limits: Limits, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.acc = SchemaAccumulator.from_state(state, limits)
        self.example: Any = state.get("example")
        self.media_type: str | None = state.get("media_type")
        self.hashes: set[Hashable] = set()
        self.step = 0  # parse one sample in this many (0: sample_every)
        self.stable = 0  # samples parsed since the contract last changed

    def due(self, n: int, config: CatalogConfig) -> bool:
        """Whether the ``n``-th sample offered is worth parsing: each of the first
        ``full_samples``, then one in ``sample_every``, one in twice as many once
        ``full_samples`` parsed samples in a row changed nothing, and so on up to 64 times as
        many; a sample that changes the contract brings the rate back to one in
        ``sample_every``. A settled contract thus costs almost nothing, however long the
        session."""
        return self.acc.samples < config.full_samples or n % (self.step or config.sample_every) == 0

    def add(self, fingerprint: Hashable, schema: Schema, config: CatalogConfig) -> bool:
        if len(self.hashes) < _MAX_HASHES:
            self.hashes.add(fingerprint)
        changed = self.acc.add_schema(schema)
        every = config.sample_every
        if changed:
            self.step, self.stable = 0, 0
        elif self.acc.samples > config.full_samples:
            self.stable += 1
            if self.stable >= config.full_samples:
                self.step = min((self.step or every) * 2, every * _MAX_BACKOFF)
                self.stable = 0
        return changed

    def absorb(self, other: _Contract) -> None:
        self.acc.merge_from(other.acc)
        if self.example is None:
            self.example = other.example
        self.media_type = self.media_type or other.media_type
        self.hashes |= other.hashes

    def state(self) -> dict[str, Any]:
        out = self.acc.state()
        if self.media_type:
            out["media_type"] = self.media_type
        if self.example is not None:
            out["example"] = self.example
        return out


class _Response:
    """What one status code of an endpoint answered."""

    __slots__ = ("body", "content_types", "count", "first_id")

    def __init__(self, limits: Limits, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.count = int(state.get("count") or 0)
        self.first_id: str | None = state.get("first_id")
        self.content_types: list[str] = list(state.get("content_types") or [])
        self.body = _Contract(limits, state.get("body"))

    def absorb(self, other: _Response) -> None:
        self.count += other.count
        self.first_id = self.first_id or other.first_id
        for media in other.content_types:
            _add_name(self.content_types, media)
        self.body.absorb(other.body)

    def state(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "first_id": self.first_id,
            "content_types": self.content_types,
            "body": self.body.state(),
        }


class _Endpoint:
    """What the catalog knows of one endpoint; ``data()`` is its ``endpoints.data`` JSON."""

    def __init__(
        self,
        service: str,
        method: str,
        template: str,
        limits: Limits,
        data: dict[str, Any] | None = None,
        figures: Figures | None = None,
    ) -> None:
        data = data or {}
        self.service = service
        self.method = method
        self.template = template
        self.limits = limits
        self.host: str | None = data.get("host")
        self.seen = int(data.get("seen") or 0)
        self.origins: list[str] = list(data.get("origins") or [])
        self.auth: list[str] = list(data.get("auth") or [])
        self.auth_names: dict[str, list[str]] = {
            k: list(v) for k, v in (data.get("auth_names") or {}).items()
        }
        self.request_content_types: list[str] = list(data.get("request_content_types") or [])
        self.response_content_types: list[str] = list(data.get("response_content_types") or [])
        self.request_bodies = int(data.get("request_bodies") or 0)
        self.request = _Contract(limits, data.get("request"))
        self.query = _Contract(limits, data.get("query"))
        self.path_params = _Contract(limits, data.get("path_params"))
        self.responses: dict[int, _Response] = {
            int(code): _Response(limits, state)
            for code, state in (data.get("responses") or {}).items()
        }
        self.no_response = int(data.get("no_response") or 0)
        self.sample_ids: list[str] = list(data.get("sample_ids") or [])
        self.sample_request: dict[str, Any] | None = data.get("sample_request")
        self.merged_from: list[str] = list(data.get("merged_from") or [])
        if figures is None and not data:
            figures = Figures()  # a new endpoint
        # None for an endpoint stored before figures were kept: counting on from the middle
        # would give wrong figures, so there are none and the reports count the http rows.
        self.figures: Figures | None = figures
        # (auth, status, request and response content type) combinations already looked at:
        # an exchange that brings none of these anew skips the bookkeeping of new facts.
        self._signatures: set[tuple[Any, ...]] = set()
        # A successful exchange is the sample a cURL command should replay; once there is one,
        # later exchanges need not be looked at for it.
        self._sample_settled = self.sample_request is not None and _is_success(
            self.sample_request.get("status")
        )

    @property
    def key(self) -> str:
        return endpoint_key(self.service, self.method, self.template)

    # ---- one event ------------------------------------------------------------------------------

    def observe(self, event: Event, data: dict[str, Any], config: CatalogConfig) -> bool:
        """Fold in one http event; True when something worth writing soon changed (a new
        status, auth pattern, content type, origin or contract), False for counts only."""
        seen = self.seen = self.seen + 1
        get = data.get
        changed = False
        status = get("status")
        auth = get("auth") or "none"
        signature = (auth, status, get("request_content_type"), get("response_content_type"))
        new_facts = signature not in self._signatures
        if new_facts:
            if len(self._signatures) < 256:
                self._signatures.add(signature)
            changed = self._note_new_facts(signature)
            if auth != "none" and self._note_auth_names(auth, data):
                changed = True
        if len(self.sample_ids) < config.sample_ids:
            self.sample_ids.append(event.id)  # not worth a write of its own
        full, every = config.full_samples, config.sample_every
        # Facts that rarely change are re-checked only on the sampling ticks.
        if seen <= full or seen % every == 0:
            if self.host is None:
                self.host = get("host")
            origin = _origin(data)
            if origin is not None and _add_name(self.origins, origin):
                changed = True
            if auth != "none" and self._note_auth_names(auth, data):
                changed = True
            if self._observe_query(data, seen, config):
                changed = True
        if get("request_size") or get("request_body"):
            n = self.request_bodies = self.request_bodies + 1
            if self.request.due(n, config) and self._observe_request_body(data, config):
                changed = True
        if status is None:
            self.no_response += 1
        else:
            response = self.responses.get(status)
            if response is None and len(self.responses) < _MAX_STATUSES:
                response = self.responses[status] = _Response(self.limits)
                response.first_id = event.id
                changed = True
            if response is not None and self._observe_response(
                response, data, signature, new_facts, config
            ):
                changed = True
        if not self._sample_settled:
            sample = self.sample_request
            if sample is None or _is_success(status):
                self.sample_request = sample_request(event, data)
                self._sample_settled = _is_success(status)
                changed = True
        return changed

    def _observe_response(
        self,
        response: _Response,
        data: dict[str, Any],
        signature: tuple[Any, ...],
        new_facts: bool,
        config: CatalogConfig,
    ) -> bool:
        n = response.count = response.count + 1
        changed = False
        if new_facts:
            media = _media_type(signature[3])
            if media and _add_name(response.content_types, media):
                changed = True
        if response.body.due(n, config) and self._observe_response_body(response, data, config):
            changed = True
        return changed

    def _note_new_facts(self, signature: tuple[Any, ...]) -> bool:
        auth, _status, request_type, response_type = signature
        changed = False
        if auth not in self.auth:
            self.auth.append(auth)
            changed = True
        media = _media_type(request_type)
        if media and _add_name(self.request_content_types, media):
            changed = True
        media = _media_type(response_type)
        if media and _add_name(self.response_content_types, media):
            changed = True
        return changed

    def _note_auth_names(self, auth: str, data: dict[str, Any]) -> bool:
        """The header, query parameter, cookie or scheme an auth pattern travels in."""
        names: list[str] = []
        headers = data.get("request_headers") or ()
        if auth == "api_key_header":
            names = [n.lower() for n, _ in headers if _api_key_header(n)]
        elif auth == "api_key_query":
            names = [
                p.partition("=")[0]
                for p in (data.get("query") or "").split("&")
                if p.partition("=")[0].lower() in _API_KEY_PARAMS
            ]
        elif auth == "cookie":
            for name, value in headers:
                if name.lower() == "cookie":
                    names += [
                        c.split("=", 1)[0].strip()
                        for c in value.split(";")
                        if _SESSION_COOKIE.search(c.split("=", 1)[0])
                    ]
        elif auth not in ("bearer", "basic"):
            for name, value in headers:
                scheme, space, _ = value.strip().partition(" ")
                # Only a scheme word ("Digest", "Token"): a value without one may be the secret.
                if name.lower() == "authorization" and space and scheme.isalpha():
                    names.append(scheme[:20])
        if not names:
            return False
        known = self.auth_names.setdefault(auth, [])
        return any([_add_name(known, name) for name in names])

    def _observe_query(self, data: dict[str, Any], seen: int, config: CatalogConfig) -> bool:
        changed = False
        query = data.get("query") or ""
        contract = self.query
        if contract.due(seen, config) and query not in contract.hashes:
            fields = parse_qs(query, keep_blank_values=True) if query else {}
            changed = contract.add(query, object_of_texts(_flatten(fields)), config)
        params = data.get("path_params")
        if params and isinstance(params, dict):
            contract = self.path_params
            fingerprint = tuple(params.items())
            if contract.due(seen, config) and (fingerprint not in contract.hashes):
                texts = {str(k): str(v) for k, v in params.items()}
                changed = contract.add(fingerprint, object_of_texts(texts), config) or changed
        return changed

    def _observe_request_body(self, data: dict[str, Any], config: CatalogConfig) -> bool:
        body = data.get("request_body")
        if not body or not _usable(data, "request", body, config):
            return False
        contract = self.request
        media = _media_type(data.get("request_content_type"))
        if contract.media_type and media and media != contract.media_type:
            return False  # one contract per endpoint: the first media type that had one
        fingerprint = hash(body)
        if fingerprint in contract.hashes:
            return False  # merging a sample already merged changes nothing
        value: Any = None
        if "x-www-form-urlencoded" in media:
            schema = object_of_texts(_flatten(parse_qs(body, keep_blank_values=True)))
        elif _is_json_media(media) or (not media and body.lstrip()[:1] in ("{", "[")):
            try:
                value = json.loads(body)
            except (ValueError, RecursionError):
                return False
            schema = infer(value, self.limits)
        else:
            return False
        contract.media_type = contract.media_type or media or "application/json"
        if contract.example is None and value is not None and len(body) <= _EXAMPLE_CHARS:
            contract.example = value
        return contract.add(fingerprint, schema, config)

    def _observe_response_body(
        self, response: _Response, data: dict[str, Any], config: CatalogConfig
    ) -> bool:
        body = data.get("response_body")
        if not body or not _usable(data, "response", body, config):
            return False
        media = _media_type(data.get("response_content_type"))
        if not (_is_json_media(media) or (not media and body.lstrip()[:1] in ("{", "["))):
            return False
        contract = response.body
        fingerprint = hash(body)
        if fingerprint in contract.hashes:
            return False
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            return False
        contract.media_type = contract.media_type or media or "application/json"
        if contract.example is None and len(body) <= _EXAMPLE_CHARS:
            contract.example = value
        return contract.add(fingerprint, infer(value, self.limits), config)

    # ---- merging and storing ---------------------------------------------------------------------

    def absorb(self, other: _Endpoint, max_ids: int) -> None:
        """Fold in the endpoint of a template the templater has since folded into this one."""
        self.seen += other.seen
        self.host = self.host or other.host
        for mine, theirs in (
            (self.origins, other.origins),
            (self.auth, other.auth),
            (self.request_content_types, other.request_content_types),
            (self.response_content_types, other.response_content_types),
        ):
            for name in theirs:
                _add_name(mine, name)
        for auth, names in other.auth_names.items():
            known = self.auth_names.setdefault(auth, [])
            for name in names:
                _add_name(known, name)
        self.request_bodies += other.request_bodies
        self.request.absorb(other.request)
        self.query.absorb(other.query)
        self.path_params.absorb(other.path_params)
        for code, response in other.responses.items():
            same = self.responses.get(code)
            if same is None:
                self.responses[code] = response
            else:
                same.absorb(response)
        self.no_response += other.no_response
        self.sample_ids = (self.sample_ids + other.sample_ids)[: max(max_ids, len(self.sample_ids))]
        theirs_sample = other.sample_request
        if theirs_sample is not None and (
            self.sample_request is None
            or (
                not _is_success(self.sample_request.get("status"))
                and _is_success(theirs_sample.get("status"))
            )
        ):
            self.sample_request = theirs_sample
        self._sample_settled = self.sample_request is not None and _is_success(
            self.sample_request.get("status")
        )
        if self.figures is not None and other.figures is not None:
            self.figures.absorb(other.figures)
        else:
            self.figures = None
        for template in [other.template, *other.merged_from]:
            if template != self.template and template not in self.merged_from:
                self.merged_from.append(template)
        self._signatures.clear()  # the facts of the merged endpoint are looked at again

    def data(self) -> dict[str, Any]:
        return {
            "version": DATA_VERSION,
            "service": self.service,
            "method": self.method,
            "path_template": self.template,
            "host": self.host,
            "origins": self.origins,
            "seen": self.seen,
            "auth": self.auth,
            "auth_names": self.auth_names,
            "request_content_types": self.request_content_types,
            "response_content_types": self.response_content_types,
            "request_bodies": self.request_bodies,
            "request": self.request.state(),
            "query": self.query.state(),
            "path_params": self.path_params.state(),
            "responses": {str(code): r.state() for code, r in sorted(self.responses.items())},
            "no_response": self.no_response,
            "sample_ids": self.sample_ids,
            "sample_request": self.sample_request,
            "merged_from": self.merged_from,
        }

    def row(self, session_id: str) -> dict[str, Any]:
        return {
            "session_id": session_id,
            "key": self.key,
            "service": self.service,
            "host": self.host,
            "method": self.method,
            "path_template": self.template,
            "updated_ms": time.time() * 1000,
            "data": self.data(),
        }

    def figures_row(self, session_id: str) -> dict[str, Any] | None:
        if self.figures is None:
            return None
        return {
            "session_id": session_id,
            "key": self.key,
            "updated_ms": time.time() * 1000,
            "data": self.figures.state(),
        }


def endpoint_key(service: str, method: str, template: str) -> str:
    """The ``endpoints.key`` of an endpoint: ``app GET /api/users/{userId}``."""
    return f"{service} {method} {template}"


def sample_request(event: Event, data: dict[str, Any]) -> dict[str, Any]:
    """What a cURL command needs from a request, as redaction left it."""
    headers = [
        [name, value]
        for name, value in data.get("request_headers") or ()
        if name.lower() not in _CURL_SKIP_HEADERS and not name.startswith(":")
    ]
    body = data.get("request_body")
    omitted = None
    if body:
        if data.get("request_body_encoding") == "base64":
            body, omitted = None, "binary"
        elif data.get("request_body_truncated"):
            body, omitted = None, "truncated"
        elif len(body) > _SAMPLE_BODY_CHARS:
            body, omitted = None, "too long"
    elif data.get("request_size"):
        omitted = data.get("request_body_omitted") or "not captured"
    out = {
        "id": event.id,
        "method": data.get("method") or "GET",
        "url": data.get("url") or "",
        "headers": headers,
        "body": body or None,
        "status": data.get("status"),
    }
    if omitted:
        out["body_omitted"] = omitted
    return out


def _api_key_header(name: str) -> bool:
    lower = name.lower()
    return lower in ("apikey", "api-key", "x-api-key", "x-apikey") or bool(
        _API_KEY_HEADER_HINT.search(lower)
    )


def _is_success(status: Any) -> bool:
    return isinstance(status, int) and 200 <= status < 300


def _usable(data: dict[str, Any], side: str, body: str, config: CatalogConfig) -> bool:
    """A body is a sample only when it is whole text: a truncated body's shape is a guess."""
    return (
        data.get(f"{side}_body_encoding", "text") in ("text", None)
        and not data.get(f"{side}_body_truncated")
        and len(body) <= config.max_body_bytes
    )


def _flatten(fields: dict[str, list[str]]) -> dict[str, str | list[str]]:
    return {name: values[0] if len(values) == 1 else values for name, values in fields.items()}


class _Session:
    __slots__ = ("called", "deleted", "dirty", "endpoints", "overflow", "touched")

    def __init__(self) -> None:
        self.endpoints: dict[tuple[str, str, str], _Endpoint] = {}
        self.dirty: set[tuple[str, str, str]] = set()  # changed in a way worth writing soon
        self.touched: set[tuple[str, str, str]] = set()  # counts changed only
        self.called: set[tuple[str, str, str]] = set()  # figures changed
        self.deleted: set[str] = set()  # keys of endpoints folded into others
        self.overflow = 0


class Catalog(Stage[CatalogConfig]):
    """Catalogue API endpoints by service, method and template, with their inferred contracts."""

    name = "catalog"
    config_model = CatalogConfig
    example = """
- type: catalog
  include_pages: false
  max_endpoints: 2000
  full_samples: 20
  sample_every: 10
  write_interval_ms: 1000
"""

    def __init__(self, config: CatalogConfig, context: StageContext) -> None:
        super().__init__(config, context)
        self.limits = Limits(
            max_depth=config.max_depth,
            max_properties=config.max_properties,
            max_array_items=config.max_array_items,
        )
        self._sessions: dict[str, _Session] = {}
        # Events of a batch almost always share one session: the last one is kept at hand.
        self._last_session_id: str | None = None
        self._last_session = _Session()
        self._sources = frozenset(config.sources) if config.sources is not None else None
        self._exclude = tuple(config.exclude_paths)
        self._verdicts: dict[str | None, int] = {}
        self._interval = config.write_interval_ms / 1000
        self._next_write = time.monotonic() + self._interval

    # ---- events ----------------------------------------------------------------------------------

    def process(self, batch: list[Event], failed: FailureSink) -> list[Event]:
        for event in batch:
            if event.kind != "http":
                continue
            try:
                self._observe(event)
            except Exception as exc:
                failed(event, exc)  # the event goes on either way: catalog never drops
        if self.context.store is not None:
            now = time.monotonic()
            if now >= self._next_write:
                # While busy, only what a reader would miss (a new endpoint, status, auth or
                # contract, and the figures); endpoints whose counts alone moved wait for the
                # idle flush.
                self._write(counts_too=False)
                self._next_write = now + self._interval
        return batch

    def _observe(self, event: Event) -> None:
        sources = self._sources
        if sources is not None and event.source not in sources:
            return
        data = event.data
        get = data.get
        path = get("path")
        if not path or get("websocket"):
            return
        method = get("method") or "GET"
        key = (get("service") or get("host") or "unknown", method, get("path_template") or path)
        session_id = event.session_id or self.context.session_id
        if session_id == self._last_session_id:
            session = self._last_session
        else:
            session = self._sessions.get(session_id) or self._load(session_id)
            self._last_session_id, self._last_session = session_id, session
        endpoint = session.endpoints.get(key)
        content_type = get("response_content_type")
        verdict = self._verdicts.get(content_type)
        if verdict is None:
            verdict = self._verdict(content_type)
        if verdict == _STATIC or (verdict == _PAGE and method == "GET"):
            # Not a sample of the contract; still a call of a known endpoint (an HTML error
            # page from a proxy in front of the API, say).
            if endpoint is not None and endpoint.figures is not None:
                endpoint.figures.observe(event.id, event.ts, data)
                session.called.add(key)
            return
        refined = get("template_refined_from")
        if endpoint is None:
            # A new endpoint: the tests on the path are made once per endpoint, not per call.
            if self._excluded(data, path, method):
                return
            config = self.config
            if len(session.endpoints) >= config.max_endpoints and not refined:
                if session.overflow == 0:
                    log.warning(
                        "catalog: session %s has %d endpoints, the configured max_endpoints; "
                        "more are not catalogued",
                        session_id,
                        config.max_endpoints,
                    )
                session.overflow += 1
                return
            endpoint = session.endpoints[key] = _Endpoint(*key, self.limits)
            session.dirty.add(key)
        if refined:
            self._fold(session, endpoint, refined)
        if endpoint.figures is not None:
            endpoint.figures.observe(event.id, event.ts, data)
            session.called.add(key)
        if endpoint.observe(event, data, self.config):
            session.dirty.add(key)
        else:
            session.touched.add(key)

    def _excluded(self, data: dict[str, Any], path: str, method: str) -> bool:
        """Dev-server internals, WebSocket upgrades, CORS preflights and static files by name."""
        return bool(
            data.get("websocket")
            or path.startswith(self._exclude)
            or (method == "OPTIONS" and _is_preflight(data))
            or (not self.config.include_static and is_asset_path(path))
        )

    def _verdict(self, content_type: str | None) -> int:
        """Whether a response of this content type is catalogued, judged once per value."""
        media = _media_type(content_type)
        verdict = _KEEP
        if not self.config.include_static and is_asset_type(media):
            verdict = _STATIC
        elif not self.config.include_pages and media == "text/html":
            verdict = _PAGE
        if len(self._verdicts) < 1000:
            self._verdicts[content_type] = verdict
        return verdict

    def _fold(self, session: _Session, endpoint: _Endpoint, refined: Any) -> None:
        for old_template in refined if isinstance(refined, list) else [refined]:
            old_key = (endpoint.service, endpoint.method, str(old_template))
            if old_key == (endpoint.service, endpoint.method, endpoint.template):
                continue
            old = session.endpoints.pop(old_key, None)
            if old is None:
                continue
            endpoint.absorb(old, self.config.sample_ids)
            session.dirty.discard(old_key)
            session.touched.discard(old_key)
            session.called.discard(old_key)
            session.deleted.add(old.key)
            session.dirty.add((endpoint.service, endpoint.method, endpoint.template))
            session.called.add((endpoint.service, endpoint.method, endpoint.template))

    # ---- the store -------------------------------------------------------------------------------

    def _load(self, session_id: str) -> _Session:
        """The session's endpoints as a previous instance of this stage left them."""
        session = self._sessions[session_id] = _Session()
        store = self.context.store
        if store is None:
            return session
        try:
            rows = store.query(
                "SELECT service, method, path_template, data FROM endpoints WHERE session_id = ?",
                [session_id],
            )
            figures = {
                row["key"]: row["data"]
                for row in store.query(
                    "SELECT key, data FROM endpoint_figures WHERE session_id = ?", [session_id]
                )
            }
        except Exception:
            log.exception("catalog: could not read the endpoints of session %s", session_id)
            return session
        for row in rows:
            try:
                data = json.loads(row["data"]) if isinstance(row["data"], str) else row["data"]
                if not isinstance(data, dict) or data.get("version") != DATA_VERSION:
                    continue
                key = (row["service"], row["method"], row["path_template"])
                state = figures.get(endpoint_key(*key))
                counted = Figures(json.loads(state)) if state is not None else None
                session.endpoints[key] = _Endpoint(*key, self.limits, data, counted)
            except (ValueError, TypeError, KeyError):
                log.warning("catalog: skipped an unreadable endpoints row in %s", session_id)
        return session

    def _write(self, counts_too: bool) -> None:
        store = self.context.store
        if store is None:
            return
        for session_id, session in self._sessions.items():
            keys = session.dirty | session.touched if counts_too else set(session.dirty)
            called = set(session.called)
            if not keys and not called and not session.deleted:
                continue
            endpoints = session.endpoints
            rows = [endpoints[key].row(session_id) for key in sorted(keys) if key in endpoints]
            figures = [
                row
                for key in sorted(called)
                if key in endpoints and (row := endpoints[key].figures_row(session_id))
            ]
            try:
                if session.deleted:
                    # The store has no delete helper for derived rows; this runs in the worker
                    # thread, the store's writer, like replace_rows.
                    for table in ("endpoints", "endpoint_figures"):
                        store.query(
                            f"DELETE FROM {table} WHERE session_id = ? "
                            "AND key IN (SELECT unnest(?))",
                            [session_id, sorted(session.deleted)],
                        )
                store.replace_rows("endpoints", rows)
                store.replace_rows("endpoint_figures", figures)
            except Exception:
                # Kept dirty, so the next write tries again; an exception here must not make
                # the engine replay the batch (the events would be counted twice).
                log.exception("catalog: could not write %d endpoints", len(rows))
                continue
            session.deleted.clear()
            session.dirty -= keys
            session.touched -= keys
            session.called -= called

    def flush(self) -> None:
        self._write(counts_too=True)

    def close(self) -> None:
        self._write(counts_too=True)


def _is_preflight(data: dict[str, Any]) -> bool:
    return any(
        name.lower() == "access-control-request-method"
        for name, _ in data.get("request_headers") or ()
    )
