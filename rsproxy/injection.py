"""Where the probe's script tag goes in an HTML document, and how a page's CSP lets it run.

Pure functions on bytes and strings, used by the ``inject`` addon and tested on their own.

Placement: before the first real ``</head>``; failing that, right after ``<head ...>``, then
after ``<html ...>``, then before ``<body``, then after a doctype. Comments, ``<script>`` and
``<style>`` bodies are skipped while looking, so a ``"</head>"`` inside inline JavaScript is not
mistaken for the end of the head.

CSP: the policy stays as it was except for what the probe needs. For scripts, if the page
already uses a nonce, the probe's tag carries that same nonce and the policy is not touched; if it
uses hashes or ``'strict-dynamic'`` (where host sources are ignored), a fresh nonce is added; else
``'self'`` is added so the probe's same-origin URL is allowed (adding a nonce there would silently
disable the page's ``'unsafe-inline'``). ``connect-src`` gains ``'self'`` for the probe's socket.
When a directive is missing and ``default-src`` stands in for it, the directive is added as a
copy of ``default-src`` plus the probe's source, so every other fetch type keeps its rules.
"""

from __future__ import annotations

import html as html_lib
import re
import secrets

PROBE_PATH = "/__rsproxy/probe.js"

_SCANNER = re.compile(
    rb"<!--.*?(?:-->|\Z)|<script\b.*?(?:</script\s*>|\Z)|<style\b.*?(?:</style\s*>|\Z)"
    rb"|(?P<head_end></head\s*>)|(?P<head><head(?:\s[^>]*)?>)|(?P<html><html(?:\s[^>]*)?>)"
    rb"|(?P<body><body\b)|(?P<doctype><!doctype[^>]*>)",
    re.IGNORECASE | re.DOTALL,
)
_NONCE = re.compile(r"'nonce-([A-Za-z0-9+/=_-]+)'")


def probe_tag(nonce: str | None = None) -> bytes:
    attr = f' nonce="{nonce}"' if nonce else ""
    return f'<script src="{PROBE_PATH}"{attr}></script>'.encode()


def already_injected(html: bytes) -> bool:
    return PROBE_PATH.encode() in html


def injection_point(html: bytes) -> int | None:
    """Byte offset at which to insert the probe tag, or None when this is not a document."""
    found: dict[str, int] = {}
    for match in _SCANNER.finditer(html):
        group = match.lastgroup
        if group is None or group in found:
            continue
        if group == "head_end":
            return match.start()  # the best place: nothing to weigh it against
        found[group] = match.end() if group in ("head", "html", "doctype") else match.start()
    for group in ("head", "html", "body", "doctype"):
        if group in found:
            return found[group]
    return None


def inject(html: bytes, nonce: str | None = None) -> bytes | None:
    """The document with the probe tag added, or None (not a document, or already injected)."""
    if already_injected(html) or html.lstrip()[:1] in (b"{", b"["):
        return None  # JSON served as text/html is data, whatever HTML its strings hold
    at = injection_point(html)
    if at is None:
        return None
    return html[:at] + probe_tag(nonce) + html[at:]


# ---- Content-Security-Policy ----------------------------------------------------------------


def _parse(policy: str) -> list[tuple[str, list[str]]]:
    directives = []
    for part in policy.split(";"):
        tokens = part.split()
        if tokens:
            directives.append((tokens[0].lower(), tokens[1:]))
    return directives


def _serialize(directives: list[tuple[str, list[str]]]) -> str:
    return "; ".join(" ".join([name, *values]) for name, values in directives)


def _needs_nonce(values: list[str]) -> bool:
    lowered = [v.lower() for v in values]
    return "'strict-dynamic'" in lowered or any(v.startswith("'sha") for v in lowered)


def _allows_self(values: list[str]) -> bool:
    return any(v.lower() in ("'self'", "*") for v in values)


def rewrite_csp(header: str, nonce: str | None = None) -> tuple[str, str | None]:
    """Return the header value to send and the nonce the probe tag must carry (None: no nonce).

    A header value may hold several policies separated by commas; each is enforced on its own,
    so each is rewritten. ``nonce`` is the nonce already chosen for the tag by an earlier policy
    of the same response; later policies are made to accept it too. A policy that needs no
    change is returned exactly as it came.
    """
    policies = []
    for policy in header.split(","):
        rewritten, nonce = _rewrite_policy(policy, nonce)
        policies.append(rewritten)
    return ",".join(policies), nonce


def _rewrite_policy(policy: str, nonce: str | None) -> tuple[str, str | None]:
    directives = _parse(policy)
    names = [name for name, _ in directives]
    default = next((values for name, values in directives if name == "default-src"), None)
    chosen = nonce

    def script_values(values: list[str]) -> list[str]:
        nonlocal chosen
        existing = _NONCE.findall(" ".join(values))
        if existing and chosen is None:
            chosen = existing[0]  # reuse the page's own nonce: the policy stays as it is
            return values
        if chosen in existing:
            return values
        if existing or _needs_nonce(values):
            chosen = chosen or secrets.token_urlsafe(16)
            return [*values, f"'nonce-{chosen}'"]
        if _allows_self(values):
            return values
        return [*values, "'self'"] if values != ["'none'"] else ["'self'"]

    def connect_values(values: list[str]) -> list[str]:
        if "'self'" in values:
            return values
        return ["'self'"] if values == ["'none'"] else [*values, "'self'"]

    out: list[tuple[str, list[str]]] = []
    for name, values in directives:
        if name in ("script-src", "script-src-elem"):
            values = script_values(values)
        elif name == "connect-src":
            values = connect_values(values)
        out.append((name, values))
    if default is not None:
        if "script-src" not in names and "script-src-elem" not in names:
            out.append(("script-src", script_values(list(default))))
        if "connect-src" not in names:
            out.append(("connect-src", connect_values(list(default))))
    if out == directives:
        return policy, chosen
    return (" " if policy.startswith(" ") else "") + _serialize(out), chosen


_META_CSP = re.compile(
    rb"""<meta\b[^>]*http-equiv\s*=\s*["']?content-security-policy["']?[^>]*>""", re.IGNORECASE
)
_CONTENT_ATTR = re.compile(rb"""(\bcontent\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)


def rewrite_meta_csp(html: bytes, nonce: str | None = None) -> tuple[bytes, str | None]:
    """Apply ``rewrite_csp`` to every ``<meta http-equiv=Content-Security-Policy>`` in the page."""

    def fix_meta(meta: re.Match[bytes]) -> bytes:
        def fix_content(attr: re.Match[bytes]) -> bytes:
            nonlocal nonce

            policy = html_lib.unescape(attr.group(3).decode("utf-8", "replace"))
            new_policy, nonce = rewrite_csp(policy, nonce)
            quoted = html_lib.escape(new_policy, quote=True).encode()
            return attr.group(1) + attr.group(2) + quoted + attr.group(2)

        return _CONTENT_ATTR.sub(fix_content, meta.group(0), count=1)

    return _META_CSP.sub(fix_meta, html), nonce
