"""Unit tests for rsproxy/injection.py: where the probe's tag goes, and how a page's CSP is changed.

Placement is checked by building the expected document by hand (the original bytes with the tag
spliced in at the one right place) and comparing whole documents. CSP tests parse the rewritten
policy back into directives so each assertion names exactly what must (or must not) change.
"""

from __future__ import annotations

import html
import re

import pytest

from rsproxy.injection import (
    PROBE_PATH,
    already_injected,
    inject,
    injection_point,
    probe_tag,
    rewrite_csp,
    rewrite_meta_csp,
)

TAG = probe_tag()


def spliced(doc: bytes, at: int, tag: bytes = TAG) -> bytes:
    return doc[:at] + tag + doc[at:]


def directives(policy: str) -> dict[str, list[str]]:
    """``{"script-src": ["'self'", ...], ...}`` for one serialized policy (first occurrence wins)."""
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        tokens = part.split()
        if tokens:
            out.setdefault(tokens[0].lower(), tokens[1:])
    return out


def nonces(values: list[str]) -> list[str]:
    return [v[len("'nonce-") : -1] for v in values if v.startswith("'nonce-")]


# ---- the tag ---------------------------------------------------------------------------------


def test_probe_tag_without_nonce_has_no_nonce_attribute():
    assert probe_tag() == f'<script src="{PROBE_PATH}"></script>'.encode()
    assert probe_tag(None) == probe_tag()


def test_probe_tag_renders_the_nonce_attribute():
    assert probe_tag("r4nd0m+/=") == (
        f'<script src="{PROBE_PATH}" nonce="r4nd0m+/="></script>'.encode()
    )


def test_inject_puts_the_nonce_on_the_tag():
    doc = b"<html><head></head><body></body></html>"
    out = inject(doc, nonce="abc123")
    assert out == spliced(doc, doc.index(b"</head>"), probe_tag("abc123"))


# ---- placement -------------------------------------------------------------------------------


def test_tag_goes_right_before_the_closing_head():
    doc = (
        b"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>Shop</title>"
        b"</head>\n<body><h1>Shop</h1></body></html>"
    )
    assert injection_point(doc) == doc.index(b"</head>")
    assert inject(doc) == spliced(doc, doc.index(b"</head>"))


def test_uppercase_tags_are_recognised():
    doc = b"<!DOCTYPE HTML><HTML><HEAD><TITLE>x</TITLE></HEAD ><BODY>hi</BODY></HTML>"
    assert inject(doc) == spliced(doc, doc.index(b"</HEAD >"))


def test_without_closing_head_the_tag_goes_right_after_the_head_start_tag():
    doc = b'<!doctype html><html><head lang="en"><title>x</title><body>hi</body>'
    at = doc.index(b'<head lang="en">') + len(b'<head lang="en">')
    assert inject(doc) == spliced(doc, at)


def test_without_head_the_tag_goes_right_after_the_html_start_tag():
    doc = b'<!doctype html>\n<html lang="en" data-theme="dark"><body><p>hi</p></body></html>'
    at = doc.index(b"<body>")
    assert injection_point(doc) == at
    assert inject(doc) == spliced(doc, at)


def test_without_html_or_head_the_tag_goes_right_before_body():
    doc = b'<body class="app">\n<p>hi</p>\n</body>'
    assert inject(doc) == spliced(doc, 0)
    doc = b"<p>intro</p><BODY onload='x()'><p>hi</p>"
    assert inject(doc) == spliced(doc, doc.index(b"<BODY"))


def test_with_only_a_doctype_the_tag_goes_right_after_it():
    doc = b"<!DOCTYPE html>\n<title>x</title><p>hi</p>"
    at = len(b"<!DOCTYPE html>")
    assert inject(doc) == spliced(doc, at)


def test_head_start_tag_wins_over_html_body_and_doctype():
    doc = b"<!doctype html><html><head><title>x</title><body>hi"
    at = doc.index(b"<head>") + len(b"<head>")
    assert inject(doc) == spliced(doc, at)


def test_header_element_is_not_mistaken_for_head():
    doc = b"<html><body><header>menu</header><p>hi</p></body></html>"
    assert inject(doc) == spliced(doc, len(b"<html>"))


@pytest.mark.parametrize(
    "before",
    [
        b'<script>document.write("</head>");</script>',
        b"<SCRIPT type='module'>const s = `</HEAD>`;</SCRIPT>",
        b"<style>/* </head> */ body { color: red }</style>",
        b"<!-- old layout: </head> -->",
    ],
    ids=["script", "uppercase-script", "style", "comment"],
)
def test_closing_head_inside_script_style_or_comment_is_skipped(before):
    doc = b"<!doctype html><html><head>" + before + b"<title>x</title></head><body></body></html>"
    real = doc.rindex(b"</head>")
    assert injection_point(doc) == real
    assert inject(doc) == spliced(doc, real)


def test_head_start_tag_inside_a_comment_is_skipped():
    doc = b"<!-- <head> --><html><body>hi</body></html>"
    assert inject(doc) == spliced(doc, doc.index(b"<html>") + len(b"<html>"))


@pytest.mark.parametrize(
    "body",
    [
        b'{"items": [1, 2, 3], "next": null}',
        b'[{"label": "<b>bold</b>", "html": "<p>x</p>"}]',
        b'<div class="row"><p>a fragment for htmx</p></div>',
        b"<tr><td>1</td><td>2</td></tr>",
        b"just some text",
        b"",
    ],
    ids=["json-object", "json-array-with-markup", "div-fragment", "table-rows", "text", "empty"],
)
def test_non_documents_get_none(body):
    assert injection_point(body) is None
    assert inject(body) is None


def test_json_text_holding_an_html_document_is_not_a_document():
    body = b'{"preview": "<html><head><title>t</title></head><body></body></html>"}'
    assert inject(body) is None


def test_already_injected_documents_get_none():
    doc = b"<html><head></head><body></body></html>"
    once = inject(doc)
    assert once is not None
    assert already_injected(once)
    assert not already_injected(doc)
    assert inject(once) is None
    assert inject(once, nonce="abc") is None
    assert once.count(PROBE_PATH.encode()) == 1


# ---- CSP: scripts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "policy",
    [
        "img-src 'self' data:; frame-ancestors 'none'",
        "upgrade-insecure-requests",
        "style-src 'self' 'unsafe-inline'; report-uri /csp",
    ],
)
def test_policy_without_script_src_or_default_src_is_unchanged(policy):
    assert rewrite_csp(policy) == (policy, None)


@pytest.mark.parametrize(
    "policy",
    [
        "script-src 'nonce-r4nd0m' 'strict-dynamic'; object-src 'none'; base-uri 'none'",
        "default-src 'self'; script-src 'self' 'nonce-abc+/=='; connect-src 'self' wss://x.test",
        "script-src 'nonce-a_b-c' 'sha256-AAAA'; img-src https://Img.Example.com/Path",
    ],
)
def test_nonce_policy_is_kept_byte_for_byte_and_its_nonce_is_returned(policy):
    new, nonce = rewrite_csp(policy)
    assert new == policy
    assert nonce == nonces(directives(policy)["script-src"])[0]


def test_nonce_policy_with_unusual_formatting_is_kept_byte_for_byte():
    policy = "Script-Src 'nonce-abc' 'strict-dynamic';object-src  'none';"
    assert rewrite_csp(policy) == (policy, "abc")


@pytest.mark.parametrize(
    "policy",
    [
        "script-src 'self' 'sha256-AbCdEf0123456789+/='",
        "script-src 'strict-dynamic' https: 'unsafe-inline'",
        "script-src 'sha384-xyz' 'sha512-uvw'; img-src *",
    ],
)
def test_hashes_or_strict_dynamic_get_a_fresh_nonce(policy):
    new, nonce = rewrite_csp(policy)
    assert nonce is not None
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,}", nonce)
    before, after = directives(policy), directives(new)
    assert after["script-src"] == [*before["script-src"], f"'nonce-{nonce}'"]
    assert {k: v for k, v in after.items() if k != "script-src"} == {
        k: v for k, v in before.items() if k != "script-src"
    }


def test_fresh_nonces_are_not_reused_across_responses():
    policy = "script-src 'sha256-abc'"
    assert rewrite_csp(policy)[1] != rewrite_csp(policy)[1]


def test_unsafe_inline_policy_gets_self_and_not_a_nonce():
    policy = "script-src 'unsafe-inline' https://cdn.example.com; object-src 'none'"
    new, nonce = rewrite_csp(policy)
    assert nonce is None  # a nonce would make browsers ignore 'unsafe-inline'
    assert "'nonce-" not in new
    assert new == ("script-src 'unsafe-inline' https://cdn.example.com 'self'; object-src 'none'")


@pytest.mark.parametrize(
    "policy",
    ["script-src 'self' 'unsafe-inline'", "script-src 'SELF'", "script-src * 'unsafe-eval'"],
)
def test_script_src_that_already_allows_same_origin_is_unchanged(policy):
    assert rewrite_csp(policy) == (policy, None)


def test_script_src_elem_is_rewritten_like_script_src():
    new, nonce = rewrite_csp("script-src-elem 'sha256-abc'; script-src 'self'")
    assert nonce is not None
    assert directives(new)["script-src-elem"] == ["'sha256-abc'", f"'nonce-{nonce}'"]
    assert directives(new)["script-src"] == ["'self'"]


def test_default_src_only_gets_explicit_script_src_and_connect_src_copies():
    policy = "default-src https://app.example; img-src data:"
    new, nonce = rewrite_csp(policy)
    assert nonce is None
    assert new == (
        "default-src https://app.example; img-src data:; "
        "script-src https://app.example 'self'; connect-src https://app.example 'self'"
    )
    assert directives(new)["default-src"] == ["https://app.example"]


def test_default_src_with_hashes_copies_the_hashes_and_adds_a_nonce_to_script_src_only():
    policy = "default-src 'self' 'sha256-abc'"
    new, nonce = rewrite_csp(policy)
    assert nonce is not None
    parsed = directives(new)
    assert parsed["default-src"] == ["'self'", "'sha256-abc'"]
    assert parsed["script-src"] == ["'self'", "'sha256-abc'", f"'nonce-{nonce}'"]
    assert parsed["connect-src"] == ["'self'", "'sha256-abc'"]


def test_default_src_is_not_copied_over_an_existing_script_src_or_connect_src():
    policy = "default-src 'none'; script-src 'self'; connect-src 'self'"
    assert rewrite_csp(policy) == (policy, None)


def test_connect_src_gains_self():
    policy = "script-src 'self'; connect-src https://api.example.com wss://hmr.example"
    new, nonce = rewrite_csp(policy)
    assert nonce is None
    assert directives(new)["connect-src"] == [
        "https://api.example.com",
        "wss://hmr.example",
        "'self'",
    ]
    assert rewrite_csp("connect-src 'self' https://x.test") == (
        "connect-src 'self' https://x.test",
        None,
    )


def test_none_is_replaced_not_extended():
    assert rewrite_csp("script-src 'none'; connect-src 'none'") == (
        "script-src 'self'; connect-src 'self'",
        None,
    )
    assert rewrite_csp("default-src 'none'") == (
        "default-src 'none'; script-src 'self'; connect-src 'self'",
        None,
    )


def test_every_other_directive_is_preserved_exactly():
    others = [
        "default-src 'self'",
        "img-src 'self' data: https://Images.Example.com/Path",
        "style-src 'self' 'unsafe-inline' 'nonce-stylenonce'",
        "font-src https://fonts.gstatic.com",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
        "object-src 'none'",
        "sandbox allow-scripts allow-same-origin",
        "upgrade-insecure-requests",
        "report-uri https://Report.Example.com/csp?Token=AbC",
        "report-to csp-endpoint",
    ]
    policy = "; ".join([*others, "script-src 'strict-dynamic' 'sha256-abc'", "connect-src 'self'"])
    new, nonce = rewrite_csp(policy)
    assert nonce is not None
    parts = new.split("; ")
    for directive in others:
        assert directive in parts
    # the style nonce is not a script nonce
    assert nonce != "stylenonce"


# ---- CSP: several policies ---------------------------------------------------------------------


def test_several_policies_share_one_fresh_nonce():
    first, nonce = rewrite_csp("script-src 'sha256-abc'")
    second, same = rewrite_csp("script-src 'strict-dynamic' 'nonce-pagenonce'", nonce)
    assert nonce is not None and same == nonce
    assert directives(first)["script-src"] == ["'sha256-abc'", f"'nonce-{nonce}'"]
    assert directives(second)["script-src"] == [
        "'strict-dynamic'",
        "'nonce-pagenonce'",
        f"'nonce-{nonce}'",
    ]


def test_the_pages_nonce_from_a_first_policy_is_added_to_a_second_hash_policy():
    first, nonce = rewrite_csp("script-src 'nonce-pg'")
    assert (first, nonce) == ("script-src 'nonce-pg'", "pg")
    second, same = rewrite_csp("script-src 'sha256-abc'", nonce)
    assert same == "pg"
    assert second == "script-src 'sha256-abc' 'nonce-pg'"


def test_a_second_unsafe_inline_policy_gets_self_even_when_a_nonce_is_chosen():
    second, nonce = rewrite_csp("script-src 'unsafe-inline'", "pg")
    assert (second, nonce) == ("script-src 'unsafe-inline' 'self'", "pg")


def test_a_policy_already_carrying_the_chosen_nonce_is_unchanged():
    policy = "script-src 'nonce-pg' 'sha256-abc'"
    assert rewrite_csp(policy, "pg") == (policy, "pg")


def test_comma_separated_policies_in_one_header_value_are_each_rewritten():
    new, nonce = rewrite_csp("script-src 'sha256-abc', connect-src 'none'")
    assert nonce is not None
    first, second = (directives(p) for p in new.split(","))
    assert first["script-src"] == ["'sha256-abc'", f"'nonce-{nonce}'"]
    assert second["connect-src"] == ["'self'"]


# ---- CSP in <meta> -----------------------------------------------------------------------------


def _meta_content(page: bytes) -> tuple[str, str]:
    """(quote character, unescaped policy) of the page's CSP meta tag."""
    match = re.search(rb"""\bcontent\s*=\s*(["'])(.*?)\1""", page, re.DOTALL)
    assert match is not None
    return match.group(1).decode(), html.unescape(match.group(2).decode())


def test_meta_csp_is_rewritten_and_its_nonce_returned():
    page = (
        b'<html><head><meta http-equiv="Content-Security-Policy" '
        b"content=\"script-src 'self' 'sha256-abc'; img-src *\"></head><body></body></html>"
    )
    new, nonce = rewrite_meta_csp(page)
    assert nonce is not None
    quote, policy = _meta_content(new)
    assert quote == '"'
    assert policy == f"script-src 'self' 'sha256-abc' 'nonce-{nonce}'; img-src *"
    # the rest of the page is untouched
    assert new.startswith(b'<html><head><meta http-equiv="Content-Security-Policy" content="')
    assert new.endswith(b'"></head><body></body></html>')


def test_meta_csp_with_single_quotes_and_escaped_content_keeps_its_nonce():
    page = (
        b"<meta http-equiv='content-security-policy' "
        b"content='script-src &#39;nonce-pg&#39; &#39;strict-dynamic&#39;; object-src &#39;none&#39;'>"
    )
    new, nonce = rewrite_meta_csp(page)
    assert nonce == "pg"
    quote, policy = _meta_content(new)
    assert quote == "'"
    assert policy == "script-src 'nonce-pg' 'strict-dynamic'; object-src 'none'"
    # the policy's own single quotes stay escaped inside a single-quoted attribute
    assert re.fullmatch(rb"<meta [^>]*content='[^']*'>", new)


def test_meta_csp_escapes_ampersands_it_unescaped():
    page = (
        b"<meta content=\"default-src 'self'; report-uri /csp?a=1&amp;b=2\" "
        b"http-equiv=Content-Security-Policy>"
    )
    new, nonce = rewrite_meta_csp(page)
    assert nonce is None
    _, policy = _meta_content(new)
    assert directives(policy)["report-uri"] == ["/csp?a=1&b=2"]
    assert directives(policy)["script-src"] == ["'self'"]
    assert b"/csp?a=1&amp;b=2" in new
    assert b"http-equiv=Content-Security-Policy>" in new


def test_meta_csp_uses_a_nonce_chosen_by_the_headers():
    page = b'<meta http-equiv="content-security-policy" content="script-src \'sha256-x\'">'
    new, nonce = rewrite_meta_csp(page, "fromheader")
    assert nonce == "fromheader"
    assert _meta_content(new)[1] == "script-src 'sha256-x' 'nonce-fromheader'"


def test_other_meta_tags_are_untouched():
    page = (
        b'<meta name="description" content="script-src \'none\'">'
        b'<meta http-equiv="refresh" content="5">'
    )
    assert rewrite_meta_csp(page) == (page, None)
