"""Checks on the browser probe that need no browser.

injected_js/probe.js is the readable source; injected_js/probe.min.js, its esbuild output made
by injected_js/build.py and committed beside it, is what the daemon serves. These check that the
source parses, is a classic script with a single global and needs no syntax newer than ES2017;
that the served file is up to date with the source and within the size budget; and, in node
against a bare stand-in for a page, that loading either file twice adds one global and patches
nothing twice. Behaviour in a real page is covered by the Chromium tests.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

INJECTED = Path(__file__).resolve().parents[2] / "injected_js"
PROBE = INJECTED / "probe.js"
SERVED = INJECTED / "probe.min.js"
GZIP_LIMIT = 10 * 1024

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not on PATH")


def _source() -> str:
    return PROBE.read_text(encoding="utf-8")


def _code_without_comments(src: str) -> str:
    """The source with comments blanked out and strings kept.

    A small scanner rather than a regex so that '//' inside a string such as
    ``'ws:' + '//'`` is not taken for a comment. It does not understand regex literals,
    which is fine as long as none of the probe's regexes contains a quote or a slash pair.
    """
    out: list[str] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c in "'\"`":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            out.append(src[i : j + 1])
            i = j + 1
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
        else:
            out.append(c)
            i += 1
    return "".join(out)


@needs_node
def test_probe_parses_as_javascript() -> None:
    assert NODE is not None
    result = subprocess.run(
        [NODE, "--check", str(PROBE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_served_probe_is_small_when_gzipped() -> None:
    # mtime=0 makes the output, and so the measured size, the same on every run.
    size = len(gzip.compress(SERVED.read_bytes(), compresslevel=9, mtime=0))
    assert size <= GZIP_LIMIT, f"probe.min.js is {size} bytes gzipped, the budget is {GZIP_LIMIT}"


def test_daemon_serves_the_minified_probe() -> None:
    from rsproxy.api import probe_script

    assert probe_script() == SERVED.read_bytes()


def test_minified_probe_is_up_to_date(tmp_path: Path) -> None:
    """probe.min.js is byte for byte what injected_js/build.py makes from probe.js now."""
    if shutil.which("npm") is None or NODE is None:
        if os.environ.get("RSPROXY_REQUIRE_BROWSER") == "1":
            pytest.fail("node and npm are needed to rebuild probe.min.js")
        pytest.skip("node or npm is not on PATH, so probe.min.js cannot be rebuilt")
    out = tmp_path / "probe.min.js"
    result = subprocess.run(
        [sys.executable, str(INJECTED / "build.py"), "--outfile", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == SERVED.read_bytes(), (
        "injected_js/probe.min.js is stale: run `python injected_js/build.py` and commit it"
    )


def test_probe_starts_with_a_comment_and_is_one_strict_iife() -> None:
    src = _source()
    assert src.lstrip().startswith("/*"), "the file should open with a comment on its purpose"
    code = _code_without_comments(src).strip()
    assert re.match(r"^\(function\s*\(\)\s*\{\s*'use strict';", code), code[:80]
    assert code.endswith("})();"), code[-80:]


def test_probe_defines_exactly_one_global() -> None:
    code = _code_without_comments(_source())
    claims = (
        re.findall(r"\bwindow\.__rsproxy\s*=(?!=)", code)
        + re.findall(r"\bwindow\[\s*['\"]__rsproxy['\"]\s*\]\s*=(?!=)", code)
        + re.findall(r"defineProperty\(\s*window\s*,\s*['\"]__rsproxy['\"]", code)
    )
    assert len(claims) == 1, claims
    # Nothing else may be written onto the global object, except the functions the network
    # and tracking collectors wrap in place (same name, arity and behaviour).
    other_writes = [
        m.group(0)
        for m in re.finditer(r"\b(?:window|globalThis|self)\.(\w+)\s*=(?!=)", code)
        if m.group(1) not in {"__rsproxy", "fetch", "gtag"}
    ]
    assert other_writes == []
    assert len(re.findall(r"defineProperty\(\s*(?:window|globalThis|self)\b", code)) == 1


def test_probe_has_no_module_syntax() -> None:
    code = _code_without_comments(_source())
    assert not re.search(r"^\s*import[\s{*'\"]", code, re.M), "static import"
    assert not re.search(r"^\s*export\s", code, re.M), "export"
    assert not re.search(r"\bimport\s*\(", code), "dynamic import"


def test_probe_avoids_syntax_newer_than_es2017() -> None:
    # Catches the usual slips (optional chaining, nullish coalescing, optional catch binding);
    # not a full syntax check.
    code = _code_without_comments(_source())
    assert not re.search(r"\?\.(?!\d)", code), "optional chaining is ES2020"
    assert "??" not in code, "?? is ES2020"
    assert not re.search(r"\bcatch\s*\{", code), "catch without a binding is ES2019"


# Loads the probe twice into a node vm context that stands in for a bare page, then reports
# which globals appeared and whether the second copy re-patched console.log.
_NODE_HARNESS = r"""
const fs = require('fs');
const vm = require('vm');
const src = fs.readFileSync(process.argv[1], 'utf8');
const ctx = vm.createContext({});
vm.runInContext('globalThis.window = globalThis;', ctx);
const win = vm.runInContext('window', ctx);
Object.assign(win, {
  location: { protocol: 'http:', host: 'localhost:1', href: 'http://localhost:1/' },
  document: { readyState: 'loading', title: '', referrer: '', addEventListener() {} },
  navigator: {},
  addEventListener() {},
  setTimeout() { return 0; },
  clearTimeout() {},
  console: { log() {}, info() {}, warn() {}, error() {}, debug() {} },
  WebSocket: function () { this.readyState = 0; },
});
const before = new Set(Object.getOwnPropertyNames(win));
vm.runInContext(src, ctx, { filename: 'probe.js' });
const added = Object.getOwnPropertyNames(win).filter((k) => !before.has(k));
const log = win.console.log;
vm.runInContext(src, ctx, { filename: 'probe.js' });
process.stdout.write(JSON.stringify({
  added,
  enumerable: Object.keys(win).includes('__rsproxy'),
  api: Object.keys(win.__rsproxy).sort(),
  frozen: Object.isFrozen(win.__rsproxy),
  page_id: win.__rsproxy.page_id,
  repatched: win.console.log !== log,
}));
"""


@needs_node
@pytest.mark.parametrize("script", [PROBE, SERVED], ids=lambda p: p.name)
def test_probe_adds_one_global_and_ignores_a_second_copy(script: Path) -> None:
    assert NODE is not None
    result = subprocess.run(
        [NODE, "-e", _NODE_HARNESS, str(script)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["added"] == ["__rsproxy"]
    assert report["enumerable"] is False
    assert report["api"] == ["emit", "page_id", "version"]
    assert report["frozen"] is True
    assert re.fullmatch(r"[0-9a-f]{16}", report["page_id"])
    assert report["repatched"] is False
