"""The ``redact`` stage: secrets are replaced before anything is stored, exported or answered.

Where secrets hide in what rsproxy sees, and what this stage does there:

* headers named in ``headers``, or whose name contains one of ``body_keys`` (``X-Auth-Token``):
  the value is replaced, keeping what is useful and harmless: the auth scheme (``Bearer
  [REDACTED]``) and cookie names and attributes (``sid=[REDACTED]; Path=/; HttpOnly``);
* query parameters named in ``query_params``, in every URL the event carries (the request URL, the
  ``Referer`` and ``Location`` headers, a page view's URL and referrer);
* JSON bodies, at any depth, under any key that contains one of ``body_keys`` or is one of the
  ``headers`` (a body that reflects request headers holds them as keys), and inside string values
  that are themselves JSON or forms; urlencoded and multipart form fields likewise. A body cut short by the capture cap is not valid JSON, so
  it is scrubbed with a pattern instead of parsed: a secret never survives by being truncated.

Names match case-insensitively and ignore ``-`` and ``_``, and a key matches when it contains a
configured name (``newPassword`` matches ``password``): redacting a harmless field is better than
storing a secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import orjson
from pydantic import Field

from rsproxy.events import Event
from rsproxy.pipeline.stage import Stage, StageConfig

DEFAULT_HEADERS = ["authorization", "cookie", "set-cookie", "x-api-key", "proxy-authorization"]
DEFAULT_BODY_KEYS = ["password", "token", "secret", "api_key", "access_token", "refresh_token"]
DEFAULT_QUERY_PARAMS = [
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "key",
    "secret",
    "password",
    "signature",
    "sig",
    "code",
    "auth",
]
_URL_HEADERS = frozenset({"referer", "location", "content-location"})
_URL_FIELDS = ("url", "referrer", "href", "source")
# An http event's two sides: (headers, body, body encoding, content type) keys.
_SIDES = (
    ("request_headers", "request_body", "request_body_encoding", "request_content_type"),
    ("response_headers", "response_body", "response_body_encoding", "response_content_type"),
)
_LOOKS_LIKE_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|/)\S*$", re.IGNORECASE)
_MAX_DEPTH = 64
# Encodes a payload for _may_hold_secret's scan. orjson keeps non-ASCII as it is (so "\u" means
# an escape, as in the payload) and is several times quicker than the json module, which only
# encodes what orjson refuses (integers past 64 bits). Its option for keys that are not strings
# halves its speed, so it is used only for a payload that has such keys.
_ORJSON_SCAN = orjson.OPT_NON_STR_KEYS
# Letters from the rarest to the commonest in text (English, code, JSON keys), digits last: each
# trigger word is looked for only when its rarest letter is present, which one character test
# (a memchr) tells much quicker than a search for the word.
_RARITY = "zqxjkvbpygfwmucldrhsnioate0123456789"
_scan_fallback = json.JSONEncoder(ensure_ascii=False, check_circular=True, default=str).encode
# Headers, query parameters and cookies repeat their names from event to event; each name's
# verdict is kept, up to this many names (a client inventing names must not grow them forever).
_MAX_VERDICTS = 50_000
# What is done to a header's value, decided once per header name (see _header_action).
_PASS, _COOKIE, _SET_COOKIE, _MASK, _MASK_AFTER_SCHEME, _URL = range(6)
_AUTH_HEADERS = ("authorization", "proxy-authorization")
# Query strings without a secret parameter, kept as they are seen again (``page=2``); only
# clean ones are kept, so the cache never holds a secret.
_MAX_CLEAN_QUERIES = 4096


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


class RedactConfig(StageConfig):
    headers: list[str] = Field(
        default_factory=lambda: list(DEFAULT_HEADERS),
        description="Header names whose values are always redacted (case-insensitive).",
    )
    body_keys: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BODY_KEYS),
        description="Secret key names: JSON keys, form fields and header names containing one of these.",
    )
    query_params: list[str] = Field(
        default_factory=lambda: list(DEFAULT_QUERY_PARAMS),
        description="Query parameter names whose values are redacted in every URL (exact, normalised).",
    )
    replacement: str = Field(
        default="[REDACTED]", min_length=1, description="What a secret value is replaced with."
    )


class Redact(Stage[RedactConfig]):
    """Replace secrets in headers, cookies, URLs, query parameters and JSON/form bodies."""

    name = "redact"
    config_model = RedactConfig
    example = """
- type: redact
  headers: [authorization, cookie, set-cookie, x-api-key, proxy-authorization]
  body_keys: [password, token, secret, api_key, access_token, refresh_token]
  query_params: [token, api_key, key, signature]
"""

    def __init__(self, config: RedactConfig, context: Any) -> None:
        super().__init__(config, context)
        self._mask = config.replacement
        self._verdicts: dict[str, bool] = {}
        self._headers = frozenset(h.lower() for h in config.headers)
        # A body that reflects headers (an echo endpoint, a logged request) holds them as keys.
        self._header_keys = frozenset(_norm(h) for h in config.headers)
        self._words = tuple(sorted({_norm(k) for k in config.body_keys if _norm(k)}))
        self._params = frozenset(_norm(p) for p in config.query_params)
        # Words whose presence in a body means it may hold a secret and must be looked at.
        self._triggers = tuple(sorted(set(self._words) | self._header_keys))
        # Searched for with ``in``, several times quicker than one regex alternation: a word
        # containing another (accesstoken, token) is found by the shorter one alone.
        self._search_words = _rarest_letter_groups(
            w for w in self._triggers if not any(o != w and o in w for o in self._triggers)
        )
        self._param_verdicts: dict[str, bool] = {}
        self._header_actions: dict[str, int] = {}  # header name -> what is done to its value
        self._clean_queries: set[str] = set()
        alternatives = "|".join(
            # each word may be written with - or _ between any of its letters (api_key, apiKey)
            "[-_]?".join(re.escape(ch) for ch in word)
            for word in self._triggers
        )
        key = rf'"(?:[^"\\]|\\.)*?(?:{alternatives})(?:[^"\\]|\\.)*"' if alternatives else r"(?!)"
        # "key": "value" / 123 / true / [...] / {...} inside JSON that could not be parsed (cut
        # short by the body limit): a string may end unclosed, even right after a backslash; an
        # array or object is masked to the end of the body, since its end cannot be trusted.
        self._json_pair = re.compile(
            rf'({key}\s*:\s*)("(?:[^"\\]|\\.)*\\?(?:"|$)|[-\w.+]+|[\[{{].*$)',
            re.IGNORECASE | re.DOTALL,
        )

    # ---- matching -------------------------------------------------------------------------------

    def _secret_key(self, key: str) -> bool:
        # Keys and header names repeat from event to event, so each is judged once.
        known = self._verdicts.get(key)
        if known is None:
            normal = _norm(key)
            known = normal in self._header_keys or any(word in normal for word in self._words)
            if len(self._verdicts) > _MAX_VERDICTS:  # a page inventing keys must not grow it
                self._verdicts.clear()
            self._verdicts[key] = known
        return known

    def _secret_header(self, name: str) -> bool:
        lower = name.lower()
        return lower in self._headers or self._secret_key(lower)

    # ---- events ---------------------------------------------------------------------------------

    def handle(self, event: Event) -> Event:
        try:
            self._redact(event)
        except Exception:
            # Fail closed: whatever the stage's on_error does next, the event it passes on
            # carries no header value, body or payload that could hold a secret.
            self._scorch(event)
            raise
        return event

    def _redact(self, event: Event) -> None:
        data = event.data
        if event.kind == "http":
            self._redact_http(data)
        elif event.kind == "ws_message":
            if isinstance(data.get("text"), str):
                data["text"] = self._redact_body(data["text"], None)
            self._redact_url_fields(data)
        elif self._may_hold_secret(data):
            event.data = self._redact_tree(data)

    def _may_hold_secret(self, data: dict[str, Any]) -> bool:
        """Whether a payload needs the walk at all. Most (console lines, renders, vitals) have
        no URL query and no key or text containing a trigger word, and encoding them once in C
        is several times cheaper than walking them in Python."""
        try:
            try:
                raw = orjson.dumps(data, default=str)
            except TypeError:  # a key that is not a string, or one of the cases below
                raw = orjson.dumps(data, default=str, option=_ORJSON_SCAN)
        except TypeError:  # orjson.JSONEncodeError: a cycle, an odd type, a huge integer
            try:
                raw = _scan_fallback(data).encode()
            except (TypeError, ValueError, RecursionError):
                return True  # not plain JSON data: walk it to be safe
        # As text: str's substring tests are much quicker than bytes' (and, outside ASCII,
        # str.lower() can map a letter to an ASCII one, the Kelvin sign to "k").
        text = raw.decode()
        if "?" in text or ("\\" in text and "\\u" in text):
            return True
        return self._has_trigger(text)

    def _has_trigger(self, text: str) -> bool:
        """Whether ``text``, lower-cased and without ``-`` and ``_``, contains a trigger word."""
        lowered = text.lower()
        # A word's letters survive the squeeze, so a word whose rarest letter is missing from
        # the text cannot be in it: most texts are ruled out without squeezing them.
        squeezed = None
        for letter, words in self._search_words:
            if letter not in lowered:
                continue
            if squeezed is None:
                squeezed = lowered
                if "_" in squeezed:
                    squeezed = squeezed.replace("_", "")
                if "-" in squeezed:
                    squeezed = squeezed.replace("-", "")
            for word in words:
                if word in squeezed:
                    return True
        return False

    def _scorch(self, event: Event) -> None:
        data = event.data
        if event.kind != "http":
            event.data = {"redaction_failed": True}
            return
        for field in ("url", "query", "request_body", "response_body"):
            if data.get(field):
                data[field] = self._mask
        for side in ("request_headers", "response_headers"):
            data[side] = [(name, self._mask) for name, _ in data.get(side) or ()]
        data["redaction_failed"] = True

    def _redact_http(self, data: dict[str, Any]) -> None:
        if "url" in data:
            data["url"] = self.redact_url(data["url"])
        if data.get("query"):
            data["query"] = self._redact_query(data["query"])
        for headers_key, body_key, encoding_key, type_key in _SIDES:
            headers = data.get(headers_key)
            if headers:
                data[headers_key] = self._redact_headers(headers)
            body = data.get(body_key)
            if body and data.get(encoding_key, "text") == "text":
                data[body_key] = self._redact_body(body, data.get(type_key))

    def _redact_url_fields(self, data: dict[str, Any]) -> None:
        for field in _URL_FIELDS:
            value = data.get(field)
            if isinstance(value, str) and "?" in value:
                data[field] = self.redact_url(value)

    def _redact_tree(self, value: Any, key: str | None = None, depth: int = 0) -> Any:
        """Payloads of other kinds: secret keys at any depth, and query strings of URLs."""
        if isinstance(value, (dict, list)) and depth >= _MAX_DEPTH:
            return self._mask  # deeper than any real payload: not worth the risk of a secret
        if isinstance(value, dict):
            return {
                k: (
                    self._mask
                    if self._secret_key(str(k)) and v is not None
                    else self._redact_tree(v, str(k), depth + 1)
                )
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._redact_tree(v, key, depth + 1) for v in value]
        if isinstance(value, str):
            if "?" in value and (key in _URL_FIELDS or _LOOKS_LIKE_URL.match(value)):
                return self.redact_url(value)
            if len(value) > 8:
                # A string may itself hold JSON or a form (a logged request body, say).
                return self._redact_body(value, None)
        return value

    # ---- headers ----------------------------------------------------------------------------------

    def _redact_headers(self, headers: Iterable[Any]) -> list[tuple[str, str]]:
        actions = self._header_actions
        out = []
        for name, value in headers:
            # What to do depends on the name alone, and the same few names come every time.
            action = actions.get(name)
            if action is None:
                action = self._header_action(name)
            if action == _PASS:
                out.append((name, value))
            else:
                out.append((name, self._redact_header(action, value)))
        return out

    def _header_action(self, name: str) -> int:
        lower = name.lower()
        if lower == "cookie":
            action = _COOKIE
        elif lower == "set-cookie":
            action = _SET_COOKIE
        elif self._secret_header(lower):
            action = _MASK_AFTER_SCHEME if lower in _AUTH_HEADERS else _MASK
        elif lower in _URL_HEADERS:
            action = _URL
        else:
            action = _PASS
        if len(self._header_actions) > _MAX_VERDICTS:
            self._header_actions.clear()
        self._header_actions[name] = action
        return action

    def _redact_header(self, action: int, value: str) -> str:
        if action == _COOKIE:
            return "; ".join(self._mask_pair(p) for p in value.split(";") if p.strip())
        if action == _SET_COOKIE:
            first, _, attributes = value.partition(";")
            return self._mask_pair(first) + (f";{attributes}" if attributes else "")
        if action == _URL:
            return self.redact_url(value)
        if action == _MASK_AFTER_SCHEME:
            scheme, sep, _ = value.strip().partition(" ")
            if sep and scheme.isalpha():
                return f"{scheme} {self._mask}"
        return self._mask

    def _mask_pair(self, pair: str) -> str:
        cookie_name, sep, _ = pair.strip().partition("=")
        return f"{cookie_name}={self._mask}" if sep else self._mask

    # ---- URLs -------------------------------------------------------------------------------------

    def redact_url(self, url: str) -> str:
        if "?" not in url:
            return url
        try:
            parts = urlsplit(url)
        except ValueError:
            return self._redact_query(url)
        fragment = parts.fragment
        if "?" in fragment:  # a hash router's own query: #/reset?token=...
            route, _, query = fragment.partition("?")
            fragment = f"{route}?{self._redact_query(query)}"
        query = self._redact_query(parts.query) if parts.query else parts.query
        return urlunsplit(parts._replace(query=query, fragment=fragment))

    def _redact_query(self, query: str) -> str:
        if query in self._clean_queries:
            return query
        out = []
        clean = True
        verdicts = self._param_verdicts
        for piece in query.split("&"):
            name, sep, _ = piece.partition("=")
            if not sep:
                out.append(piece)
                continue
            secret = verdicts.get(name)
            if secret is None:
                # Unquoting a name costs a parse_qsl; the same few names come on every request.
                secret = _norm(_unquote(name)) in self._params
                if len(verdicts) > _MAX_VERDICTS:
                    verdicts.clear()
                verdicts[name] = secret
            if secret:
                clean = False
                out.append(f"{name}={quote(self._mask)}")
            else:
                out.append(piece)
        if clean:
            if len(self._clean_queries) >= _MAX_CLEAN_QUERIES:
                self._clean_queries.clear()
            self._clean_queries.add(query)
            return query
        return "&".join(out)

    # ---- bodies -----------------------------------------------------------------------------------

    def _redact_body(self, body: str, content_type: str | None) -> str:
        if "\\u" not in body and not self._has_trigger(body):
            # The common case: nothing that could be a secret key (a \u escape could spell one).
            return body
        ctype = (content_type or "").lower()
        if "x-www-form-urlencoded" in ctype:
            return self._redact_form(body)
        if "multipart/form-data" in ctype:
            return self._redact_multipart(body)
        stripped = body.lstrip()
        if stripped[:1] in ("{", "[") or "json" in ctype:
            try:
                parsed = json.loads(body)
            except (ValueError, RecursionError):
                return self._json_pair.sub(lambda m: m.group(1) + json.dumps(self._mask), body)
            return json.dumps(self._redact_tree(parsed), ensure_ascii=False)
        # JSON inside other text (a socket.io frame `42["login",{...}]`, a log line), then
        # key=value pairs.
        if '"' in body:
            body = self._json_pair.sub(lambda m: m.group(1) + json.dumps(self._mask), body)
        if "=" in body:
            body = self._redact_form(body)
        return body

    def _redact_form(self, body: str) -> str:
        out = []
        for piece in body.split("&"):
            name, sep, _ = piece.partition("=")
            if sep and self._secret_key(_unquote(name)):
                out.append(f"{name}={quote(self._mask)}")
            else:
                out.append(piece)
        return "&".join(out)

    def _redact_multipart(self, body: str) -> str:
        # Each part: headers naming the field, a blank line, the value up to the next boundary.
        pattern = re.compile(
            r'(Content-Disposition:[^\r\n]*\bname="([^"]*)"[^\r\n]*\r?\n(?:[^\r\n]+\r?\n)*\r?\n)(.*?)(?=\r?\n--|\Z)',
            re.IGNORECASE | re.DOTALL,
        )
        return pattern.sub(
            lambda m: m.group(1) + (self._mask if self._secret_key(m.group(2)) else m.group(3)),
            body,
        )


def _rarest_letter_groups(words: Iterable[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The words grouped by their rarest character (see ``_RARITY``)."""
    groups: dict[str, list[str]] = {}
    for word in words:
        letter = min(word, key=lambda ch: _RARITY.find(ch) if ch in _RARITY else len(_RARITY))
        groups.setdefault(letter, []).append(word)
    return tuple((letter, tuple(group)) for letter, group in groups.items())


def _unquote(text: str) -> str:
    pairs: Iterable[tuple[str, str]] = parse_qsl(f"{text}=", keep_blank_values=True)
    for name, _ in pairs:
        return name
    return text
