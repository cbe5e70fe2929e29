"""The DuckDB store (rsproxy/store.py), on real files under tmp_path.

Covers the schema (idempotent), round trips through every typed table and the generic one, the
filters and order of ``Store.events``, sessions, read-only access, and a writer that dies without
closing: the store must open cleanly afterwards with every committed batch in it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rsproxy.errors import NoStoreError, StoreError
from rsproxy.events import Event
from rsproxy.store import STORE_VERSION, SessionInfo, Store

REPO = Path(__file__).resolve().parents[1]


def _event(kind: str, data: dict[str, Any], **envelope: Any) -> Event:
    envelope.setdefault("session_id", "s1")
    envelope.setdefault("project", "test")
    return Event(kind=kind, data=data, **envelope)


def _http_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "method": "POST",
        "url": "http://127.0.0.1:3000/api/users?page=2",
        "scheme": "http",
        "host": "127.0.0.1",
        "port": 3000,
        "path": "/api/users",
        "query": "page=2",
        "http_version": "HTTP/1.1",
        "status": 201,
        "reason": "Created",
        "request_headers": [("content-type", "application/json"), ("accept", "*/*")],
        "response_headers": [("content-type", "application/json")],
        "request_content_type": "application/json",
        "response_content_type": "application/json",
        "request_size": 15,
        "response_size": 9,
        "request_body": '{"name":"bob"}',
        "request_body_encoding": "text",
        "request_body_truncated": False,
        "response_body": '{"id":42}',
        "response_body_encoding": "text",
        "response_body_truncated": False,
        "streamed": False,
        "websocket": False,
        "auth": "none",
        "timings": {"ttfb_ms": 1.5, "total_ms": 2.25, "dns_ms": None},
        "started_ms": 1_700_000_000_000.5,
    }
    data.update(overrides)
    return data


def _jsonish(value: Any) -> Any:
    """What a payload looks like after a trip through JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "project" / "store.duckdb"


@pytest.fixture
def store(store_path: Path) -> Iterator[Store]:
    s = Store.open(store_path)
    try:
        yield s
    finally:
        s.close()


# ---- schema ---------------------------------------------------------------------------------------


def test_open_creates_the_file_and_its_parent_directory(store_path: Path) -> None:
    assert not store_path.parent.exists()
    Store.open(store_path).close()
    assert store_path.exists()


def test_schema_creation_is_idempotent(store_path: Path) -> None:
    first = Store.open(store_path)
    first.write_events([_event("custom", {"n": 1})])
    first.close()
    second = Store.open(store_path)  # the schema statements run again on an existing file
    try:
        assert second.counts() == {"custom": 1}
        meta = second.query("SELECT * FROM meta")
        assert meta == [{"key": "store_version", "value": str(STORE_VERSION)}]
        tables = {r["table_name"] for r in second.query("SELECT table_name FROM duckdb_tables()")}
        assert {"meta", "sessions", "generic_events", "dead_letters", "http", "console"} <= tables
        views = {r["view_name"] for r in second.query("SELECT view_name FROM duckdb_views()")}
        assert "events" in views
    finally:
        second.close()


# ---- round trips ----------------------------------------------------------------------------------


def test_http_event_round_trip(store: Store) -> None:
    data = _http_data()
    event = _event("http", data, source="replay", page_id="page-1")
    store.write_events([event])
    [row] = store.events()
    assert row["id"] == event.id
    assert row["ts"] == event.ts
    assert row["kind"] == "http"
    assert row["source"] == "replay"
    assert row["page_id"] == "page-1"
    assert row["session_id"] == "s1"
    assert row["schema_version"] == 1
    expected = _jsonish(data)
    expected["timings"] = {"ttfb_ms": 1.5, "total_ms": 2.25, "dns_ms": None}
    assert row["data"] == expected
    # The typed columns are really columns an agent can query.
    [typed] = store.query("SELECT method, status, port, request_size, streamed FROM http")
    assert typed == {
        "method": "POST",
        "status": 201,
        "port": 3000,
        "request_size": 15,
        "streamed": False,
    }
    # A typed kind keeps its payload in its own table only.
    [envelope] = store.query("SELECT data FROM events")
    assert envelope["data"] is None


def test_http_event_without_response_round_trip(store: Store) -> None:
    data = _http_data(status=None, reason=None, error="connection refused", response_headers=[])
    for key in ("response_body", "response_body_encoding", "response_body_truncated"):
        del data[key]
    store.write_events([_event("http", data)])
    [row] = store.events(kinds=["http"])
    assert row["data"]["error"] == "connection refused"
    assert "status" not in row["data"]  # NULL columns are left out of the payload
    assert row["data"]["response_headers"] == []


def test_console_and_error_round_trip_through_the_console_table(store: Store) -> None:
    console = _event(
        "console",
        {"level": "warn", "message": "careful", "args": ["careful", {"n": 1}], "stack": None},
        source="probe",
    )
    error = _event(
        "error",
        {
            "type": "error",
            "message": "x is undefined",
            "source": "http://app/main.js",
            "line": 12,
            "column": 7,
            "stack": "at main.js:12:7",
        },
        source="probe",
    )
    store.write_events([console, error])
    by_id = {r["id"]: r for r in store.events()}
    assert by_id[console.id]["data"] == {
        "level": "warn",
        "message": "careful",
        "args": ["careful", {"n": 1}],
    }
    assert by_id[error.id]["data"] == error.data
    # The payload's `source` must not overwrite the envelope's.
    assert by_id[error.id]["source"] == "probe"
    [typed] = store.query("SELECT error_source, line, col, type FROM console WHERE kind = 'error'")
    assert typed == {"error_source": "http://app/main.js", "line": 12, "col": 7, "type": "error"}


def test_generic_kind_round_trip_keeps_nested_payload(store: Store) -> None:
    data = {
        "name": "checkout",
        "detail": {"items": [1, 2, {"sku": "A-1"}], "total": 9.5},
        "ok": True,
        "none": None,
        "text": "naïve ✓",
    }
    event = _event("custom", data, source="agent")
    store.write_events([event])
    [row] = store.events(kinds=["custom"])
    assert row["data"] == data
    assert row["source"] == "agent"


def test_mixed_batch_counts_every_kind(store: Store) -> None:
    batch = [
        _event("http", _http_data()),
        _event("console", {"level": "log", "message": "a"}),
        _event("error", {"type": "error", "message": "b"}),
        _event("vital", {"name": "LCP", "value": 1200}),
        _event("vital", {"name": "CLS", "value": 0.01}),
    ]
    store.write_events(batch)
    assert store.counts() == {"http": 1, "console": 1, "error": 1, "vital": 2}
    assert store.counts(session_id="other") == {}


def test_empty_batch_is_a_no_op(store: Store) -> None:
    store.write_events([])
    assert store.counts() == {}


def test_a_failing_batch_writes_nothing(store: Store) -> None:
    good = _event("console", {"level": "log", "message": "fine"})
    bad = _event("console", {"level": "log", "message": "bad", "line": "not a number"})
    with pytest.raises(Exception):  # noqa: B017 - DuckDB's conversion error, whatever its class
        store.write_events([good, bad])
    assert store.counts() == {}
    store.write_events([good])  # the connection is usable after the rollback
    assert store.counts() == {"console": 1}


def test_dead_letters_keep_the_whole_event(store: Store) -> None:
    event = _event("custom", {"n": 1})
    store.write_dead_letters([(123.0, "s1", "enrich", "ValueError: boom", event)])
    [row] = store.query("SELECT * FROM dead_letters")
    assert row["stage"] == "enrich"
    assert row["error"] == "ValueError: boom"
    assert row["session_id"] == "s1"
    assert json.loads(row["event"]) == event.to_dict()


# ---- reading --------------------------------------------------------------------------------------


def test_events_are_newest_first_by_timestamp(store: Store) -> None:
    # Made in this order, so ids ascend while timestamps do not.
    late = _event("custom", {"n": "late"}, ts=3_000.0)
    early = _event("custom", {"n": "early"}, ts=1_000.0)
    middle = _event("console", {"level": "log", "message": "middle"}, ts=2_000.0)
    store.write_events([late, early, middle])
    assert [r["id"] for r in store.events()] == [late.id, middle.id, early.id]


def test_events_filters(store: Store) -> None:
    rows = [
        _event("custom", {"n": 1}, ts=1_000.0, session_id="a"),
        _event("console", {"level": "log", "message": "2"}, ts=2_000.0, session_id="a"),
        _event("vital", {"n": 3}, ts=3_000.0, session_id="b"),
        _event("custom", {"n": 4}, ts=4_000.0, session_id="b"),
        _event("error", {"message": "5"}, ts=5_000.0, session_id="a"),
    ]
    store.write_events(rows)
    ids = [e.id for e in rows]

    def got(**kwargs: Any) -> list[str]:
        return [r["id"] for r in store.events(**kwargs)]

    assert got() == ids[::-1]
    assert got(kinds=["custom"]) == [ids[3], ids[0]]
    assert got(kinds=["console", "error"]) == [ids[4], ids[1]]
    assert got(session_id="b") == [ids[3], ids[2]]
    assert got(since_ms=3_000.0) == [ids[4], ids[3], ids[2]]
    assert got(limit=2) == [ids[4], ids[3]]
    assert got(kinds=["custom", "console"], session_id="a", since_ms=1_500.0) == [ids[1]]
    assert got(before_id=ids[2]) == [ids[1], ids[0]]
    assert got(kinds=["sql"]) == []


def test_sessions_and_latest_session(store: Store) -> None:
    assert store.latest_session_id() is None
    assert store.sessions() == []
    store.start_session(
        SessionInfo(
            id="old",
            project="p",
            source="proxy",
            target=":3000",
            started_ms=1_000.0,
            git_commit="abc",
            git_branch="main",
            git_dirty=True,
            pipeline="default.yaml",
            meta={"pid": 1},
        )
    )
    store.start_session(
        SessionInfo(id="new", project="p", source="replay", target=None, started_ms=2_000.0)
    )
    store.write_events([_event("custom", {}, session_id="old") for _ in range(3)])
    store.end_session("old", 1_500.0)
    assert store.latest_session_id() == "new"
    sessions = store.sessions()
    assert [s["id"] for s in sessions] == ["new", "old"]
    old = sessions[1]
    assert old["events"] == 3
    assert old["ended_ms"] == 1_500.0
    assert old["git_commit"] == "abc" and old["git_branch"] == "main" and old["git_dirty"] is True
    assert old["meta"] == {"pid": 1}
    assert sessions[0]["events"] == 0
    assert sessions[0]["meta"] == {}
    assert sessions[0]["ended_ms"] is None
    assert [s["id"] for s in store.sessions(limit=1)] == ["new"]


def test_a_bad_query_raises_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match="no_such_table"):
        store.query("SELECT * FROM no_such_table")


# ---- read-only access -----------------------------------------------------------------------------


def test_open_readonly_on_a_missing_file_explains_what_to_do(tmp_path: Path) -> None:
    missing = tmp_path / "nothing" / "store.duckdb"
    with pytest.raises(NoStoreError) as info:
        Store.open_readonly(missing)
    message = str(info.value)
    assert str(missing) in message
    assert "rsproxy start" in message
    assert not missing.exists()  # looking must not create anything
    assert isinstance(info.value, StoreError)


def test_readonly_store_reads_but_cannot_write(store_path: Path) -> None:
    writer = Store.open(store_path)
    event = _event("console", {"level": "log", "message": "kept"})
    writer.write_events([event])
    writer.close()

    reader = Store.open_readonly(store_path)
    try:
        assert reader.readonly
        assert [r["id"] for r in reader.events()] == [event.id]
        with pytest.raises(StoreError, match="read-only"):
            reader.query("INSERT INTO meta VALUES ('x', 'y')")
        with pytest.raises(Exception, match="read-only"):
            reader.write_events([_event("custom", {"n": 1})])
        assert reader.counts() == {"console": 1}
    finally:
        reader.close()


# ---- checkpoints ----------------------------------------------------------------------------------


def _wal(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".wal")


def _wal_bytes(store_path: Path) -> int:
    wal = _wal(store_path)
    return wal.stat().st_size if wal.exists() else 0


def test_a_quiet_store_folds_its_log_into_the_file(store: Store, store_path: Path) -> None:
    store.write_events([_event("custom", {"n": i}) for i in range(100)])
    assert _wal_bytes(store_path) > 0
    assert store.checkpoint_when_quiet(60.0) is False  # written a moment ago: not quiet yet
    assert _wal_bytes(store_path) > 0
    time.sleep(0.15)
    assert store.checkpoint_when_quiet(0.1) is True
    assert _wal_bytes(store_path) == 0
    assert store.checkpoint_when_quiet(0.1) is False  # nothing new to fold
    assert store.counts() == {"custom": 100}


def test_every_kind_of_write_makes_the_store_due_a_checkpoint(store: Store) -> None:
    info = SessionInfo(id="s1", project="p", source="proxy", target=None, started_ms=1.0)
    writes = [
        lambda: store.start_session(info),
        lambda: store.write_events([_event("custom", {"n": 1})]),
        lambda: store.replace_rows("issues", [{"session_id": "s1", "id": "i1", "count": 1}]),
        lambda: store.rewrite_path_templates("s1", "GET", ["/a/1"], "/a/{id}", host="h"),
        lambda: store.write_dead_letters([(1.0, "s1", "detect", "boom", _event("custom", {}))]),
        lambda: store.end_session("s1", 2.0),
    ]
    for write in writes:
        store.checkpoint()
        write()
        time.sleep(0.02)
        assert store.checkpoint_when_quiet(0.01) is True


def test_a_burst_larger_than_duckdbs_default_log_stays_in_the_log(
    store: Store, store_path: Path
) -> None:
    # DuckDB folds its log at 16 MiB by default; each fold recompresses the last, partly filled
    # row group of every table, so the store lets a burst grow the log further.
    padding = "x" * 2_000
    for _ in range(6):
        store.write_events([_event("custom", {"n": i, "pad": padding}) for i in range(2_000)])
    assert _wal_bytes(store_path) > 20 * 2**20
    store.checkpoint()
    assert _wal_bytes(store_path) == 0
    assert store.counts() == {"custom": 12_000}


# ---- a writer that dies ---------------------------------------------------------------------------

_WRITER = """
import os, sys, time
from pathlib import Path
from rsproxy.events import Event
from rsproxy.store import Store

store = Store.open(Path(sys.argv[1]))
store.write_events([Event(kind="custom", data={{"n": i}}, session_id="dead") for i in range(500)])
store.write_events([Event(kind="console", data={{"level": "log", "message": "m"}},
                          session_id="dead")])
print("written", flush=True)
{ending}
"""


def _run_writer(path: Path, ending: str) -> subprocess.Popen[str]:
    code = textwrap.dedent(_WRITER).format(ending=ending)
    return subprocess.Popen(
        [sys.executable, "-c", code, str(path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_a_writer(path: Path) -> None:
    """A writer that has written, killed before it could close the store."""
    proc = _run_writer(path, "time.sleep(600)")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "written"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL


def _assert_recovered(path: Path) -> None:
    reader = Store.open_readonly(path)
    try:
        assert reader.counts(session_id="dead") == {"custom": 500, "console": 1}
    finally:
        reader.close()
    writer = Store.open(path)  # and a new writer can carry on
    try:
        writer.write_events([_event("custom", {"n": "after"}, session_id="later")])
        assert writer.counts() == {"custom": 501, "console": 1}
    finally:
        writer.close()


def test_store_opens_cleanly_after_its_writer_exits_without_closing(store_path: Path) -> None:
    proc = _run_writer(store_path, "os._exit(0)")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip() == "written"
    _assert_recovered(store_path)


def test_store_opens_cleanly_after_its_writer_is_killed(store_path: Path) -> None:
    _kill_a_writer(store_path)
    _assert_recovered(store_path)


def test_a_reader_folds_in_the_log_a_killed_writer_left(store_path: Path) -> None:
    _kill_a_writer(store_path)
    assert _wal_bytes(store_path) > 0  # the writes live in the log alone
    reader = Store.open_readonly(store_path)
    try:
        assert _wal_bytes(store_path) == 0  # folded in once, not replayed by every reader
        assert reader.counts(session_id="dead") == {"custom": 500, "console": 1}
    finally:
        reader.close()


def test_a_store_held_by_another_process_is_a_store_error(store_path: Path) -> None:
    proc = _run_writer(store_path, "time.sleep(600)")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "written"
        with pytest.raises(StoreError, match="rsproxy stop"):
            Store.open(store_path)
    finally:
        proc.kill()
        proc.wait(30)
        proc.communicate()


def test_opening_a_store_this_process_reads_is_a_store_error(store_path: Path) -> None:
    Store.open(store_path).close()
    reader = Store.open_readonly(store_path)
    try:
        with pytest.raises(StoreError):
            Store.open(store_path)
    finally:
        reader.close()


def test_a_version_2_store_is_migrated_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    store = Store.open(path)
    store.write_events([_event("http", {"method": "GET", "path": "/a", "status": 200})])
    # Make it look like a store written by layout 2: no http.service, version 2 in meta.
    conn = store._conn
    conn.execute("DROP VIEW events")
    conn.execute("ALTER TABLE http DROP COLUMN service")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'store_version'")
    store.close()

    store = Store.open(path)
    try:
        # Through layout 3 to today's.
        assert store.query("SELECT value FROM meta WHERE key = 'store_version'")[0]["value"] == str(
            STORE_VERSION
        )
        [row] = store.events(kinds=["http"])
        assert row["data"]["path"] == "/a" and "service" not in row["data"]
        store.write_events([_event("http", {"method": "GET", "path": "/b", "service": "app"})])
        services = {r["path"]: r["service"] for r in store.query("SELECT path, service FROM http")}
        assert services == {"/a": None, "/b": "app"}
    finally:
        store.close()


def test_a_version_3_store_gets_latency_columns_filled_from_its_timings(tmp_path: Path) -> None:
    path = tmp_path / "v3.duckdb"
    store = Store.open(path)
    timings = {"ttfb_ms": 4.5, "total_ms": 12.25}
    store.write_events([_event("http", {"method": "GET", "path": "/a", "timings": timings})])
    # Layout 3 had no http.total_ms / ttfb_ms.
    conn = store._conn
    conn.execute("DROP VIEW events")
    conn.execute("ALTER TABLE http DROP COLUMN total_ms")
    conn.execute("ALTER TABLE http DROP COLUMN ttfb_ms")
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'store_version'")
    store.close()

    # A reader with no daemon running upgrades it on the way in.
    reader = Store.open_readonly(path)
    try:
        assert reader.query("SELECT value FROM meta WHERE key = 'store_version'")[0][
            "value"
        ] == str(STORE_VERSION)
        [row] = reader.query("SELECT total_ms, ttfb_ms FROM http")
        assert row == {"total_ms": 12.25, "ttfb_ms": 4.5}
        [event] = reader.events(kinds=["http"])
        assert event["data"]["timings"] == timings and "total_ms" not in event["data"]
    finally:
        reader.close()


def test_latency_columns_copy_numbers_only(store: Store) -> None:
    store.write_events(
        [
            _event("http", {"path": "/n", "timings": {"total_ms": 7, "ttfb_ms": None}}),
            _event("http", {"path": "/s", "timings": {"total_ms": "slow", "ttfb_ms": True}}),
            _event("http", {"path": "/x", "timings": "not an object"}),
        ]
    )
    rows = {r["path"]: r for r in store.query("SELECT path, total_ms, ttfb_ms FROM http")}
    assert rows["/n"]["total_ms"] == 7.0 and rows["/n"]["ttfb_ms"] is None
    assert rows["/s"]["total_ms"] is None and rows["/s"]["ttfb_ms"] is None
    assert rows["/x"]["total_ms"] is None
