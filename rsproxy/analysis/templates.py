"""URL path templates: ``/users/42/orders/9f1c…`` → ``/users/{userId}/orders/{orderId}``.

Two kinds of evidence make a path segment a parameter:

* **its shape**, judged on the segment alone: numbers, UUIDs, ULIDs, Mongo ObjectIDs, hex hashes
  (16 hex characters or more: sha1, sha256, ...), prefixed ids (``cus_NffrFeUfNV2Hib``), dates
  (``2024-01-31``, ISO timestamps), e-mail addresses, JWTs and other long opaque tokens. A word or a
  slug (``user-preferences``, ``getting-started``) never has the shape of an id;
* **high cardinality**, learned across samples: the paths of one scope (the app, or one other
  host), one method and one segment count form a prefix tree. When a node takes more than
  ``threshold`` distinct literal values, they are folded into one parameter. A small set of
  literal siblings (``/api/users``, ``/api/orders``, ``/api/products``) stays distinct, and a
  value seen followed by an id (``/api/users/42``) is a collection, so it is never counted
  toward a fold: a dozen collections under ``/api`` do not become ``/api/{apiId}``.

When a fold happens, the templates given out before for the folded paths are reported, so that
stored events can be rewritten to point at the current template: ``Templated.refined_from``
lists the old templates now equal to the result's own, once, on the result that caused the fold
and on the next result of every other new template; ``Templated.refinements`` gives the whole
fold (every new template with its old ones) on the result that caused it.

Parameter names come from the nearest literal segment before the parameter, singularised
(``users`` → ``user``), with ``api`` and version segments (``v1``) skipped:

* a lone parameter is ``{userId}``; a date is ``{date}``, an e-mail ``{email}``, a JWT ``{token}``;
* a run of learned parameters names its last one after the entity and the ones before it as its
  owners: ``/repos/{owner}/{repo}``, ``/files/{owner}/{owner2}/{file}``. A run of id-shaped
  parameters numbers them instead: ``/pairs/{pairId}/{pairId2}``;
* with no literal before it, a parameter is ``{id}``; a name used twice in one template gets a
  number (``/users/{userId}/users/{userId2}``).

Pinned templates (``/api/v1/{tenant}/items``, optionally preceded by a method) always win.

Memory is bounded (nodes, children per node, collection evidence), and results are cached per
(scope, method, path) in a bounded LRU, so a repeated path costs one dictionary lookup.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import NamedTuple
from urllib.parse import unquote

# Markers stand for parameters in token sequences; a real segment never holds a NUL byte.
ID = "\x00i"  # shape of an identifier: number, UUID, ULID, ObjectID, hash, prefixed or opaque id
PARAM = "\x00p"  # learned: a position that took many distinct values
DATE = "\x00d"
EMAIL = "\x00e"
TOKEN = "\x00t"  # a JWT or a very long opaque value
_KIND_NAMES = {DATE: "date", EMAIL: "email", TOKEN: "token"}

_UNSEEN = "\x00?"  # not yet classified (None means "classified: a literal")

MAX_SEGMENTS = 32  # deeper paths are templated by shape alone, without learning
_LONG_SEGMENT = 100  # longer than any literal route segment: an opaque value

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}")
_HEX = re.compile(r"[0-9a-fA-F]{16,}")
_DATE = re.compile(r"(\d{4})-(\d{2})(?:-(\d{2}))?")
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})?"
)
_EMAIL = re.compile(
    r"[^@\s/]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_OPAQUE = re.compile(r"[A-Za-z0-9_~-]+={0,2}")
_PREFIXED_ID = re.compile(r"([a-z]{2,12})([_-])([A-Za-z0-9]{6,})")
# A piece of a slug or a name: words (lower-case, Capitalised, ACRONYMS) and short numbers,
# as in getting, UserPreferences, parseHTMLDocument, python3. Random text of 20 characters
# reads like this about 2% of the time once a piece may hold only one number.
_WORDS = re.compile(r"(?:[A-Z]?[a-z]{2,}|[A-Z][a-z]|[A-Z]{2,}(?![a-z])|\d{1,4})+")
_DIGIT_RUN = re.compile(r"\d+")
_SEPARATORS = re.compile(r"[-_~]+")
_EXTENSION = re.compile(r"(.+)\.([A-Za-z][A-Za-z0-9]{0,7})")
_NAME_SKIP = re.compile(r"(?:api|rest|v\d+(?:\.\d+)*|\d+|)", re.IGNORECASE)
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+")
_IRREGULAR = {
    "people": "person",
    "children": "child",
    "men": "man",
    "women": "woman",
    "mice": "mouse",
    "geese": "goose",
    "statuses": "status",
    "aliases": "alias",
    "indices": "index",
    "analyses": "analysis",
}


def is_marker(token: str) -> bool:
    return token[:1] == "\x00"


# ---- shape ------------------------------------------------------------------------------------


def _char_runs(text: str) -> int:
    """Runs of one character class (lower, upper, digit, other): random text changes class
    every character or two, words and camelCase names every four or more."""
    runs = 0
    last = -1
    for ch in text:
        cls = 0 if ch.islower() else 1 if ch.isupper() else 2 if ch.isdigit() else 3
        if cls != last:
            runs += 1
            last = cls
    return runs


def _wordy(piece: str) -> bool:
    return _WORDS.fullmatch(piece) is not None and len(_DIGIT_RUN.findall(piece)) <= 1


def _looks_random(text: str) -> bool:
    """Whether an alphanumeric string reads as generated (an id, a key) rather than as words."""
    has_digit = any(ch.isdigit() for ch in text)
    if not has_digit and (text.islower() or text.isupper()):
        return False  # one-case letters only: a word, however long
    pieces = [p for p in _SEPARATORS.split(text) if p]
    if not pieces or all(_wordy(p) for p in pieces):
        # every piece is a word or a short number: a slug (getting-started-2024, UserPreferences)
        return False
    joined = "".join(pieces)
    return len(joined) / _char_runs(joined) <= 3.0


def _shape(segment: str) -> str | None:
    """The marker a segment's shape proves, or None for a (so far) literal segment."""
    n = len(segment)
    if n == 0:
        return None
    if segment.isdigit():
        return ID
    first = segment[0]
    if n == 36 and _UUID.fullmatch(segment):
        return ID
    if n >= 16 and _HEX.fullmatch(segment):
        # A hash or an ObjectID. Sixteen letters a-f with no digit would be a (strange) word.
        if n in (24, 32, 40, 64) or any(ch.isdigit() for ch in segment):
            return ID
        return None
    if n == 26 and first in "01234567" and _ULID.fullmatch(segment):
        return ID
    if first.isdigit() and n >= 7:
        date = _DATE.fullmatch(segment)
        if date is not None:
            month, day = int(date.group(2)), int(date.group(3) or 1)
            if 1 <= month <= 12 and 1 <= day <= 31:
                return DATE
        elif _DATETIME.fullmatch(segment):
            return DATE
    if "@" in segment or "%40" in segment:
        decoded = unquote(segment) if "%" in segment else segment
        if _EMAIL.fullmatch(decoded):
            return EMAIL
    if n > _LONG_SEGMENT:
        return TOKEN
    if first == "e" and _JWT.fullmatch(segment):
        return TOKEN
    if n >= 20 and _OPAQUE.fullmatch(segment) and _looks_random(segment.rstrip("=")):
        return TOKEN if n >= 40 else ID
    if n >= 9:
        prefixed = _PREFIXED_ID.fullmatch(segment)
        if prefixed:
            separator, tail = prefixed.group(2), prefixed.group(3)
            if separator == "_" and len(tail) >= 10 and not (tail.islower() or tail.isupper()):
                # type_ and a mixed-case or numbered tail: the ids of Stripe (cus_NffrFeUfNV2Hib),
                # Clerk (user_2NNEqL2nrIRdJ194ndJqAHwEfxC), OpenAI (asst_abc123...), ...
                return ID
            if any(c.isdigit() for c in tail) and (tail.isdigit() or _looks_random(tail)):
                return ID  # order-12345678, inv-8f3k2j9d1m
    return None


def _plain_id(segment: str) -> bool:
    """Whether a segment is a UUID or a hash of a usual length (ObjectID, MD5, SHA-1, SHA-256):
    the commonest ids after numbers, which ``_shape`` calls ids too, told by length first."""
    n = len(segment)
    if n == 36:
        return _UUID.fullmatch(segment) is not None
    return n in (24, 32, 40, 64) and _HEX.fullmatch(segment) is not None


def segment_marker(segment: str) -> str | None:
    """A segment's marker from its shape alone; ``name.ext`` keeps its extension (``\\x00i.json``)."""
    marker = _shape(segment)
    if marker is None and "." in segment:
        match = _EXTENSION.fullmatch(segment)
        if match:
            stem = _shape(match.group(1))
            if stem is not None:
                return f"{stem}.{match.group(2)}"
    return marker


# ---- names ------------------------------------------------------------------------------------


def singular(word: str) -> str:
    """A plural English noun's singular, for the common endings; other words unchanged."""
    lower = word.lower()
    if lower in _IRREGULAR:
        return word[: len(word) - len(lower)] + _IRREGULAR[lower]
    if len(word) > 3 and lower.endswith("ies"):
        return word[:-3] + "y"
    if lower.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if lower.endswith(("ss", "us", "is")) or len(word) <= 2:
        return word
    if lower.endswith("s"):
        return word[:-1]
    return word


def _camel(segment: str) -> str:
    words = [w for w in _WORD_SPLIT.split(segment) if w]
    if not words:
        return ""
    words[-1] = singular(words[-1])
    first = words[0]
    head = first.lower() if first.isupper() else first[0].lower() + first[1:]
    name = head + "".join(w[0].upper() + w[1:] for w in words[1:])
    return name if not name[0].isdigit() else f"n{name}"


def _base_name(tokens: tuple[str, ...], start: int) -> str:
    """The name parameters starting at ``start`` take from the literal just before them."""
    i = start - 1
    while i >= 0:
        token = tokens[i]
        if is_marker(token):
            return ""  # the literal before this run names the run before it, not this one
        if not _NAME_SKIP.fullmatch(token):
            return _camel(token)
        i -= 1
    return ""


def render(tokens: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The template string of a token sequence and the names of its parameters, in order."""
    parts: list[str] = []
    names: list[str] = []
    used: dict[str, int] = {}
    n = len(tokens)
    i = 0
    while i < n:
        if not is_marker(tokens[i]):
            parts.append(tokens[i])
            i += 1
            continue
        end = i
        while end < n and is_marker(tokens[end]):
            end += 1
        base = _base_name(tokens, i)
        run = tokens[i:end]
        kinds = [t[:2] for t in run]
        learned_run = sum(k == PARAM for k in kinds) >= 2 and ID not in kinds
        learned_seen = 0
        learned_total = sum(k == PARAM for k in kinds)
        for token, kind in zip(run, kinds, strict=True):
            if kind in _KIND_NAMES:
                name = _KIND_NAMES[kind]
            elif learned_run:
                learned_seen += 1
                last = learned_seen == learned_total
                name = (base or "name") if last else "owner"
            else:
                name = f"{base}Id" if base else "id"
            count = used.get(name, 0) + 1
            used[name] = count
            unique = name if count == 1 else f"{name}{count}"
            names.append(unique)
            parts.append("{" + unique + "}" + token[2:])  # token[2:]: a kept extension
        i = end
    return "/" + "/".join(parts), tuple(names)


# ---- pinned templates -------------------------------------------------------------------------

_PINNED_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PINNED = re.compile(r"(?:([A-Z]+)\s+)?(/\S*)")


def parse_pinned(spec: str) -> tuple[str | None, str]:
    """``"GET /api/{tenant}/items"`` → ("GET", "/api/{tenant}/items"); ValueError when malformed."""
    match = _PINNED.fullmatch(spec.strip())
    if not match:
        raise ValueError(
            f"{spec!r} is not a template: write a path starting with /, optionally after a "
            "method, with parameters as whole segments: '/api/v1/{tenant}/items'"
        )
    method, path = match.group(1), match.group(2)
    for segment in path.split("/")[1:]:
        if ("{" in segment or "}" in segment) and not _PINNED_PARAM.fullmatch(segment):
            raise ValueError(
                f"{spec!r}: segment {segment!r} must be a literal or one whole parameter like "
                "{tenant}"
            )
    return method, path


class _Pinned(NamedTuple):
    method: str | None
    template: str
    # per segment: the literal it must equal, or None for a parameter
    literals: tuple[str | None, ...]
    names: tuple[str, ...]


# ---- learning ---------------------------------------------------------------------------------


class Templated(NamedTuple):
    template: str
    params: dict[str, str]  # shared by every result for the same path: copy before changing it
    # the templates (same scope and method) folded into ``template`` since last reported
    refined_from: tuple[str, ...] = ()
    # on the result whose path caused a fold only: every template that fold changed,
    # as (new template, (old templates...)), this result's own included
    refinements: tuple[tuple[str, tuple[str, ...]], ...] = ()


class _Node:
    __slots__ = ("children", "folded")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.folded = False  # this position is a learned parameter: new literals go to PARAM


class PathTemplater:
    """Learns templates from the paths it is shown. One per pipeline; not thread-safe."""

    def __init__(
        self,
        *,
        threshold: int = 8,
        pinned: Iterable[str] = (),
        cache_size: int = 20_000,
        max_nodes: int = 200_000,
        max_children: int = 256,
        max_collections: int = 100_000,
    ) -> None:
        self.threshold = threshold
        self.cache_size = cache_size
        self.max_nodes = max_nodes
        self.max_children = max_children
        self.max_collections = max_collections
        self.nodes = 0
        self.folds = 0
        self._trees: dict[tuple[str, str, int], _Node] = {}
        # (scope, tokens up to a literal) for every literal seen followed by a parameter
        self._collections: set[tuple[str, tuple[str, ...]]] = set()
        self._cache: OrderedDict[tuple[str, str, str], Templated] = OrderedDict()
        # (scope, tokens) -> (template, ((segment index, parameter name, extension length), ...))
        self._shapes: dict[
            tuple[str, tuple[str, ...]], tuple[str, tuple[tuple[int, str, int], ...]]
        ] = {}
        self._markers: dict[str, str | None] = {}
        # (scope, method, new template) -> old templates still to report
        self._pending: dict[tuple[str, str, str], set[str]] = {}
        # new template -> old templates, of the fold the path being templated has just caused
        self._folded: dict[str, set[str]] = {}
        # (scope, method, segments as markers or literals) -> the shape the walk gave them
        self._walks: dict[
            tuple[str, str, tuple[str, ...]], tuple[str, tuple[tuple[int, str, int], ...]]
        ] = {}
        self._pinned: dict[int, list[_Pinned]] = {}
        for spec in pinned:
            method, path = parse_pinned(spec)
            segments = path.split("/")[1:]
            literals = tuple(None if _PINNED_PARAM.fullmatch(s) else s for s in segments)
            names = tuple(s[1:-1] for s in segments if _PINNED_PARAM.fullmatch(s))
            self._pinned.setdefault(len(segments), []).append(
                _Pinned(method, path, literals, names)
            )

    # ---- the entry point ----------------------------------------------------------------------

    def template(self, scope: str, method: str, path: str) -> Templated:
        """The template of ``path`` for requests of ``method`` within ``scope`` (the app, or a
        host), learning from it. ``refined_from`` is set on the result at most once per fold."""
        key = (scope, method, path)
        cache = self._cache
        found = cache.get(key)
        if found is None:
            found = self._template(scope, method, path)
            cache[key] = found
            if len(cache) > self.cache_size:
                cache.popitem(last=False)
            if self._folded:
                folded, self._folded = self._folded, {}
                found = found._replace(
                    refinements=tuple((new, tuple(sorted(old))) for new, old in folded.items())
                )
        else:
            cache.move_to_end(key)
        if self._pending:
            old = self._pending.pop((scope, method, found.template), None)
            if old:
                return found._replace(refined_from=tuple(sorted(old)))
        return found

    def _template(self, scope: str, method: str, path: str) -> Templated:
        if not path.startswith("/"):
            return Templated(path or "/", {})  # "*" (OPTIONS), an authority, nothing
        segments = path[1:].split("/")
        if self._pinned:
            pinned = self._match_pinned(method, segments)
            if pinned is not None:
                return pinned
        # Each segment as its marker, or itself while literal: paths of one shape with other
        # ids give the same tuple, whose walk through the tree is remembered until a fold.
        markers = self._markers
        raw: list[str] = []
        for segment in segments:
            if segment.isdigit():  # the commonest id, and each one new: not worth caching
                raw.append(ID)
                continue
            marker = markers.get(segment, _UNSEEN)
            if marker is _UNSEEN:
                marker = self._marker(segment)
            raw.append(segment if marker is None else marker)
        walk_key = (scope, method, tuple(raw))
        shape = self._walks.get(walk_key)
        if shape is None:
            shape = self._shape_of(scope, self._walk(scope, method, walk_key[2]))
            if len(self._walks) > self.cache_size:
                self._walks.clear()
            self._walks[walk_key] = shape
        template, slots = shape
        params: dict[str, str] = {}
        for index, name, extension in slots:
            value = segments[index]
            if extension:  # a kept extension (".json"): the value is the stem
                value = value[:-extension]
            params[name] = unquote(value) if "%" in value else value
        return Templated(template, params)

    def _shape_of(
        self, scope: str, tokens: tuple[str, ...]
    ) -> tuple[str, tuple[tuple[int, str, int], ...]]:
        shape = self._shapes.get((scope, tokens))
        if shape is None:
            # A token sequence seen for the first time: note what it shows about collections,
            # and render it once; later paths of the same shape only fill in their values.
            self._note_collections(scope, tokens)
            template, names = render(tokens)
            positions = (i for i, t in enumerate(tokens) if t[:1] == "\x00")
            slots = tuple(
                (i, name, len(tokens[i]) - 2) for i, name in zip(positions, names, strict=True)
            )
            shape = (template, slots)
            if len(self._shapes) > self.cache_size:
                self._shapes.clear()
            self._shapes[(scope, tokens)] = shape
        return shape

    def _match_pinned(self, method: str, segments: list[str]) -> Templated | None:
        candidates = self._pinned.get(len(segments))
        if not candidates:
            return None
        for pinned in candidates:
            if pinned.method is not None and pinned.method != method:
                continue
            if all(
                lit is None or lit == seg
                for lit, seg in zip(pinned.literals, segments, strict=True)
            ):
                values = [
                    s for s, lit in zip(segments, pinned.literals, strict=True) if lit is None
                ]
                params = {
                    name: unquote(value) if "%" in value else value
                    for name, value in zip(pinned.names, values, strict=True)
                }
                return Templated(pinned.template, params)
        return None

    def _marker(self, segment: str) -> str | None:
        if _plain_id(segment):
            return ID  # each UUID or hash is new: not worth the call below nor a cache entry
        markers = self._markers
        marker = segment_marker(segment)
        if len(markers) > self.cache_size:
            markers.clear()
        markers[segment] = marker
        return marker

    def _walk(self, scope: str, method: str, raw: tuple[str, ...]) -> tuple[str, ...]:
        """Tokens for a path (given as its segments' markers, or the segments while literal),
        learning from it on the way down its tree."""
        n = len(raw)
        node: _Node | None = None
        if n <= MAX_SEGMENTS:
            tree_key = (scope, method, n)
            node = self._trees.get(tree_key)
            if node is None and self.nodes < self.max_nodes:
                node = self._trees[tree_key] = _Node()
                self.nodes += 1
        tokens: list[str] = []
        append = tokens.append
        for token in raw:
            if node is None:
                append(token)
                continue
            child = node.children.get(token)
            if (
                child is None
                and node.folded
                and not is_marker(token)
                and not self._is_collection(scope, (*tokens, token))
            ):
                token = PARAM
                child = node.children.get(PARAM)
            if child is None:
                child = self._add(scope, method, n, node, tuple(tokens), token)
                if child is None:  # not learned (memory caps); its subtree is not either
                    append(token)
                    node = None
                    continue
                if token not in node.children:  # folded away as the node turned into a parameter
                    token = PARAM
                    child = node.children[PARAM]
            append(token)
            node = child
        return tuple(tokens)

    def _note_collections(self, scope: str, tokens: tuple[str, ...]) -> None:
        """A parameter right after a literal is evidence that the literal names a collection
        (``users`` in ``/users/42``)."""
        for i in range(1, len(tokens)):
            if tokens[i][:1] == "\x00" and tokens[i - 1][:1] != "\x00":
                key = (scope, tuple(tokens[:i]))
                if key not in self._collections and len(self._collections) < self.max_collections:
                    self._collections.add(key)

    def _is_collection(self, scope: str, prefix: tuple[str, ...]) -> bool:
        return (scope, prefix) in self._collections

    def _add(
        self,
        scope: str,
        method: str,
        n: int,
        node: _Node,
        prefix: tuple[str, ...],
        token: str,
    ) -> _Node | None:
        if self.nodes >= self.max_nodes or len(node.children) >= self.max_children:
            return None
        child = node.children[token] = _Node()
        self.nodes += 1
        if not is_marker(token) and not node.folded and self._crowded(scope, node, prefix):
            self._fold_and_report(scope, method, n, node, prefix, fresh=token)
        return child

    def _crowded(self, scope: str, node: _Node, prefix: tuple[str, ...]) -> bool:
        """More distinct literal values than the threshold, not counting collections."""
        literal = 0
        for token in node.children:
            if not is_marker(token) and not self._is_collection(scope, (*prefix, token)):
                literal += 1
        return literal > self.threshold

    # ---- folding --------------------------------------------------------------------------------

    def _fold_and_report(
        self,
        scope: str,
        method: str,
        n: int,
        node: _Node,
        prefix: tuple[str, ...],
        fresh: str,
    ) -> None:
        root = self._trees[(scope, method, n)]
        # Only whole paths were ever given out as templates: not a branch still being built,
        # nor the value just added, whose template is being decided now.
        before = [
            (*prefix, *tail)
            for tail in _leaves(node)
            if len(prefix) + len(tail) == n and tail[0] != fresh
        ]
        self._fold(scope, node, prefix)
        self.folds += 1
        self._cache.clear()  # cached results and walks under this node are stale now
        self._walks.clear()
        for old_tokens in before:
            old = render(old_tokens)[0]
            new = render(self._resolve(scope, root, old_tokens))[0]
            if old == new:
                continue
            pending = self._pending
            carried = pending.pop((scope, method, old), set())
            pending.setdefault((scope, method, new), set()).update(carried, {old})
            self._folded.setdefault(new, set()).update(carried, {old})

    def _fold(self, scope: str, node: _Node, prefix: tuple[str, ...]) -> None:
        """Turn ``node`` into a parameter: its literal children (collections aside) merge into
        its PARAM child, which may in turn prove crowded."""
        node.folded = True
        literals = [
            t
            for t in node.children
            if not is_marker(t) and not self._is_collection(scope, (*prefix, t))
        ]
        if not literals:
            return
        target = node.children.get(PARAM)
        if target is None:
            target = node.children[PARAM] = _Node()
            self.nodes += 1
        for token in literals:
            self._merge(scope, target, node.children.pop(token), (*prefix, PARAM))
        self._settle(scope, target, (*prefix, PARAM))

    def _merge(self, scope: str, dst: _Node, src: _Node, prefix: tuple[str, ...]) -> None:
        self.nodes -= 1  # src is absorbed
        for token, child in src.children.items():
            existing = dst.children.get(token)
            if existing is None:
                dst.children[token] = child
            else:
                self._merge(scope, existing, child, (*prefix, token))
                self._settle(scope, existing, (*prefix, token))
        if src.folded:
            dst.folded = True

    def _settle(self, scope: str, node: _Node, prefix: tuple[str, ...]) -> None:
        """After a merge, a node that is (or has become) a parameter position folds again."""
        if node.folded or self._crowded(scope, node, prefix):
            self._fold(scope, node, prefix)

    def _resolve(self, scope: str, root: _Node, tokens: tuple[str, ...]) -> tuple[str, ...]:
        """Where an old token sequence leads in the tree now, without learning anything."""
        node: _Node | None = root
        out: list[str] = []
        for token in tokens:
            if node is None:
                out.append(token)
                continue
            child = node.children.get(token)
            if child is None and not is_marker(token) and node.folded:
                token = PARAM
                child = node.children.get(PARAM)
            out.append(token)
            node = child
        return tuple(out)

    # ---- introspection (tests, warm start) --------------------------------------------------------

    def stats(self) -> dict[str, int]:
        return {
            "trees": len(self._trees),
            "nodes": self.nodes,
            "folds": self.folds,
            "collections": len(self._collections),
            "cached": len(self._cache),
            "pending_refinements": len(self._pending),
        }


def _leaves(node: _Node) -> Iterator[tuple[str, ...]]:
    """Token sequences from ``node`` down to each leaf of its subtree."""
    if not node.children:
        yield ()
        return
    for token, child in node.children.items():
        for tail in _leaves(child):
            yield (token, *tail)
