"""The HAR reader and entry conversion, over Chromium's recording and variants derived from it.

Other tools write HAR differently (Firefox and Safari leave out optional fields and write ``-1``
timings, Charles and Fiddler base64 bodies and non-UTF-8 text, HTTP Toolkit and mitmproxy no
pages and ``_`` vendor fields); each variant here is Chromium's recorded file transformed at test
time the way such a tool would write it, and must replay into the same catalog. The malformed
cases (not JSON, truncated, wrong version, missing parts, bad entries) are derived the same way.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rsproxy.client import StoreReader
from rsproxy.errors import HarFormatError, ReplayError
from rsproxy.project import Project
from rsproxy.replay import replay
from rsproxy.replay.har import HarReader
from rsproxy.store import Store

pytestmark = pytest.mark.browser

Har = dict[str, Any]


def _load(path: Path) -> Har:
    har: Har = json.loads(path.read_text(encoding="utf-8"))
    return har


def _write(path: Path, har: Har, indent: int | None = None) -> Path:
    path.write_text(json.dumps(har, indent=indent), encoding="utf-8")
    return path


def _api_entries(har: Har) -> list[dict[str, Any]]:
    return [e for e in har["log"]["entries"] if "/api/" in e["request"]["url"]]


def _catalog(project: Project, session: str) -> dict[str, dict[str, Any]]:
    reader = StoreReader(project)
    try:
        answer = reader.report("catalog", session=session, contracts=False)
    finally:
        reader.close()
    return {f"{e['method']} {e['path_template']}": e["status_codes"] for e in answer["endpoints"]}


def _http(project: Project, session: str) -> list[dict[str, Any]]:
    store = Store.open_readonly(project.store_path)
    try:
        return store.events(kinds=["http"], session_id=session, limit=1000)
    finally:
        store.close()


# ---- streaming --------------------------------------------------------------------------------


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("chunk", [7, 97, 4096])
def test_the_streaming_reader_gives_exactly_the_entries_json_load_gives(
    catalog_har: Path, tmp_path: Path, chunk: int, indent: int | None
) -> None:
    har = _load(catalog_har)
    # Entries cut across many chunk boundaries, compact and pretty-printed alike.
    path = _write(tmp_path / "x.har", har, indent)
    reader = HarReader(path, chunk_size=chunk)
    assert list(reader.entries()) == har["log"]["entries"]
    assert reader.version == "1.2"
    assert reader.creator is not None and "Playwright" in reader.creator
    assert len(reader.pages) == len(har["log"].get("pages", []))
    assert reader.bytes_read == path.stat().st_size


# ---- other tools' quirks ----------------------------------------------------------------------


def _firefox_like(har: Har) -> None:
    """-1 timings, optional fields absent, version last, no pages."""
    log = har["log"]
    log.pop("pages", None)
    log["version"] = log.pop("version")  # after entries
    for entry in log["entries"]:
        entry.pop("pageref", None)
        entry.pop("serverIPAddress", None)
        entry.pop("cache", None)
        entry["timings"] = {
            "blocked": -1,
            "dns": -1,
            "connect": -1,
            "ssl": -1,
            "send": 0,
            "wait": entry["timings"].get("wait", 1),
            "receive": -1,
        }
        for side in ("request", "response"):
            for key in ("cookies", "headersSize", "bodySize", "httpVersion", "comment"):
                entry[side].pop(key, None)
        entry["response"].pop("redirectURL", None)


def _charles_like(har: Har) -> None:
    """Every response body base64-encoded; duplicate headers; version 1.1."""
    har["log"]["version"] = "1.1"
    for entry in har["log"]["entries"]:
        content = entry["response"]["content"]
        text = content.get("text")
        if text and content.get("encoding") != "base64":
            content["text"] = base64.b64encode(text.encode()).decode()
            content["encoding"] = "base64"
        entry["response"]["headers"] += [
            {"name": "Via", "value": "a"},
            {"name": "Via", "value": "b"},
        ]


def _vendor_fields(har: Har) -> None:
    """HTTP Toolkit / mitmproxy style: `_` fields everywhere, empty bodies, no pages."""
    har["log"].pop("pages", None)
    har["_exporter"] = {"name": "httptoolkit"}
    har["log"]["_meta"] = [1, {"nested": [None, True]}]
    for entry in har["log"]["entries"]:
        entry.pop("pageref", None)
        entry["_resourceType"] = "fetch"
        entry["request"]["_id"] = {"a": '}]{["\\'}  # brackets inside strings must not confuse
        entry["response"]["content"]["_compression"] = 0
        if entry["response"]["status"] == 401:
            entry["response"]["content"] = {"size": 0, "mimeType": "x-unknown"}


VARIANTS: dict[str, Callable[[Har], None]] = {
    "firefox": _firefox_like,
    "charles": _charles_like,
    "vendor": _vendor_fields,
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_other_tools_hars_give_the_same_catalog(
    catalog_har: Path, tmp_path: Path, rsproxy_home: Path, variant: str
) -> None:
    project = Project("quirks")
    original = replay(catalog_har, project)
    har = _load(catalog_har)
    VARIANTS[variant](har)
    changed = replay(_write(tmp_path / f"{variant}.har", har), project)
    assert changed.skipped == 0 and changed.replayed == original.replayed
    assert _catalog(project, changed.session_id) == _catalog(project, original.session_id)


def test_base64_bodies_are_decoded_and_minus_one_timings_are_absent(
    catalog_har: Path, tmp_path: Path, rsproxy_home: Path
) -> None:
    project = Project("bodies")
    har = _load(catalog_har)
    _charles_like(har)
    _firefox_like(har)
    summary = replay(_write(tmp_path / "b.har", har), project)
    events = _http(project, summary.session_id)
    user = next(
        e["data"]
        for e in events
        if e["data"]["path"] == "/api/users/1" and e["data"]["status"] == 200
    )
    assert json.loads(user["response_body"])["name"] == "Ann"
    assert user["response_body_encoding"] == "text"
    assert user["timings"]["dns_ms"] is None and user["timings"]["receive_ms"] is None
    assert user["timings"]["ttfb_ms"] is not None
    assert summary.har_version == "1.1"


def test_non_utf8_text_and_a_byte_order_mark_are_read(
    catalog_har: Path, tmp_path: Path, rsproxy_home: Path
) -> None:
    har = _load(catalog_har)
    entry = _api_entries(har)[0]
    entry["response"]["content"]["text"] = '{"city": "Zürich café"}'
    entry["response"]["content"].pop("encoding", None)
    # A Windows tool writing Latin-1 bytes, after a UTF-8 byte-order mark (Fiddler writes one).
    raw = b"\xef\xbb\xbf" + json.dumps(har, ensure_ascii=False).encode("latin-1", "replace")
    path = tmp_path / "latin1.har"
    path.write_bytes(raw)
    project = Project("latin1")
    summary = replay(path, project)
    assert summary.skipped == 0
    bodies = [e["data"].get("response_body") or "" for e in _http(project, summary.session_id)]
    assert any("Zürich café" in b for b in bodies)


# ---- bad input ----------------------------------------------------------------------------------


def _sessions(project: Project) -> list[str]:
    store = Store.open_readonly(project.store_path)
    try:
        return [r["id"] for r in store.query("SELECT id FROM sessions ORDER BY started_ms")]
    finally:
        store.close()


def _fails(path: Path, project: Project) -> str:
    with pytest.raises(ReplayError) as caught:
        replay(path, project)
    message = str(caught.value)
    assert str(path) in message
    return message


def test_a_file_that_is_not_json_is_refused(tmp_path: Path, rsproxy_home: Path) -> None:
    text = tmp_path / "notes.har"
    text.write_text("GET /api/users HTTP/1.1\nHost: x\n")
    assert "not a HAR file (JSON) nor a mitmproxy flow file" in _fails(text, Project("bad"))
    broken = tmp_path / "broken.har"
    broken.write_text('{\n  "log": {\n    "version": "1.2",\n    "entries": [}\n  }\n}')
    message = _fails(broken, Project("bad"))
    assert "invalid JSON in entry 0 at line 4, column 17" in message
    empty = tmp_path / "empty.har"
    empty.write_text("  \n")
    assert "the file is empty" in _fails(empty, Project("bad"))
    assert not Project("bad").store_path.exists() or _sessions(Project("bad")) == []


def test_a_truncated_har_is_refused_and_the_earlier_sessions_stay(
    catalog_har: Path, tmp_path: Path, rsproxy_home: Path
) -> None:
    project = Project("truncated")
    kept = replay(catalog_har, project)
    raw = catalog_har.read_bytes()
    cut = tmp_path / "cut.har"
    cut.write_bytes(raw[: len(raw) * 2 // 3])
    message = _fails(cut, project)
    assert "truncated" in message and "entries were complete before the cut" in message
    assert "line " in message and "column " in message
    # The half-replayed session was rolled back; the earlier one is whole.
    assert _sessions(project) == [kept.session_id]
    events = _http(project, kept.session_id)
    assert len(events) == kept.replayed


def test_a_syntax_error_inside_an_entry_names_the_entry_and_line(
    catalog_har: Path, tmp_path: Path, rsproxy_home: Path
) -> None:
    har = _load(catalog_har)
    text = json.dumps(har, indent=1)
    target = json.dumps(har["log"]["entries"][3]["request"]["url"])
    line = text[: text.index(target)].count("\n") + 1
    path = tmp_path / "syntax.har"
    path.write_text(text.replace(target, target + " oops", 1))
    message = _fails(path, Project("syntax"))
    assert f"invalid JSON in entry 3 at line {line}, column" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda h: h["log"].__setitem__("version", "1.3"),
            "HAR version '1.3' is not supported; valid versions are 1.1 and 1.2",
        ),
        (lambda h: h["log"].pop("version"), "'log' has no 'version'"),
        (lambda h: h["log"].pop("entries"), "'log' has no 'entries' list"),
        (lambda h: h.__setitem__("notlog", h.pop("log")), "the top-level object has no 'log'"),
        (
            lambda h: h["log"].__setitem__("entries", {}),
            "expected a list as the value of 'log.entries'",
        ),
    ],
    ids=["version-1.3", "no-version", "no-entries", "no-log", "entries-not-a-list"],
)
def test_a_har_without_its_required_parts_is_refused(
    catalog_har: Path, tmp_path: Path, rsproxy_home: Path, change: Any, expected: str
) -> None:
    har = _load(catalog_har)
    change(har)
    path = _write(tmp_path / "x.har", har)
    project = Project("parts")
    assert expected in _fails(path, project)
    assert not project.store_path.exists() or _sessions(project) == []


def test_bad_entries_are_skipped_with_their_reasons_and_the_rest_replayed(
    catalog_har: Path, tmp_path: Path, rsproxy_home: Path
) -> None:
    har = _load(catalog_har)
    entries = har["log"]["entries"]
    del entries[1]["request"]["method"]
    entries[2]["request"]["url"] = "/relative/only"
    del entries[3]["request"]["url"]
    entries[4] = "not an entry"
    entries[5]["startedDateTime"] = "yesterday"
    del entries[6]["request"]
    project = Project("partial")
    summary = replay(_write(tmp_path / "partial.har", har), project)
    assert summary.read == len(entries)
    assert summary.skipped == 6 and summary.replayed == len(entries) - 6
    assert summary.skipped_reasons == {
        "request.method is missing": 1,
        "request.url is not an absolute http(s) URL": 1,
        "request.url is missing": 1,
        "the entry is missing or not an object": 1,
        "startedDateTime is not an ISO 8601 date": 1,
        "request is missing or not an object": 1,
    }
    assert [e["index"] for e in summary.skipped_examples] == [1, 2, 3, 4, 5, 6]
    assert len(_http(project, summary.session_id)) == summary.replayed


def test_a_syntax_error_is_reported_without_reading_the_rest_of_the_file(
    catalog_har: Path, tmp_path: Path
) -> None:
    har = _load(catalog_har)
    text = json.dumps(har, indent=1)
    target = json.dumps(har["log"]["entries"][1]["request"]["url"])
    path = tmp_path / "early.har"
    path.write_text(text.replace(target, target + " oops", 1))
    reader = HarReader(path, chunk_size=512)
    with pytest.raises(HarFormatError, match="invalid JSON in entry 1"):
        list(reader.entries())
    assert reader.bytes_read < path.stat().st_size // 2
