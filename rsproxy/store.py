"""The project's DuckDB store: schema, batched writes, and the reads the API and CLI share.

Layout (DESIGN §6): the hot kinds have typed tables (``http``, ``console``) whose columns an
agent can query directly; every other kind goes to ``generic_events`` with its payload as JSON
text in ``data``. The view ``events`` unites the envelopes of all of them, so a timeline is one
query and every event is written once. A payload key without a column lands in the typed
table's ``extra`` JSON column, so nothing a stage adds is lost. ``sessions`` tags each
capture with its build; ``dead_letters`` keeps events a stage failed on when its ``on_error`` asks.

Writes come from one thread only (the pipeline worker). A batch of events is one transaction,
with one columnar insert per table: each column is converted to Arrow in C and DuckDB takes the
Arrow table whole, many times cheaper than ``executemany`` and about twice as fast as DuckDB's
appender (which remains the fallback for values Arrow will not convert). JSON values are
encoded with orjson. Derived rows (``endpoints``, ``issues``) are staged through an appender
and replaced with one ``INSERT OR REPLACE ... SELECT``. DuckDB folds its write-ahead log into
the file when a burst of writes has filled 64 MB of it, and the ``persist`` stage has it folded
in once writes pause. Readers use cursors of the same database instance (in the daemon) or a
read-only connection (everywhere else).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from rsproxy.errors import NoStoreError, StoreError
from rsproxy.events import Event

log = logging.getLogger("rsproxy.store")

STORE_VERSION = 5  # 2: `events` became a view over the per-kind tables; 3: http.service,
# the `endpoints` and `issues` tables; 4: http.total_ms and http.ttfb_ms; 5: `endpoint_figures`

# DuckDB folds its write-ahead log into the file when the log reaches this size. Every fold
# recompresses the partly filled last row group of each table, so with DuckDB's default (16 MB) a
# busy session had each stored row rewritten several times over, and commits cost about twice
# what they do at this size (bench/pipeline_ingest.py). A quiet store folds its log at once
# (``checkpoint_when_quiet``), so the larger log only lives through a burst of writes.
CHECKPOINT_THRESHOLD = "64MB"

_ENVELOPE = ("id", "ts", "session_id", "page_id", "source", "kind", "schema_version")
_ENVELOPE_TYPES = ("VARCHAR", "DOUBLE", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "INTEGER")
# The Arrow type _insert converts a column of each DuckDB type to (the store's tables use no
# other types; one that did would have its type inferred).
_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "DOUBLE": pa.float64(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "BOOLEAN": pa.bool_(),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a DuckDB type; JSON columns take Python values and are serialised on write
    # A copy of a number inside a JSON payload field, (field, key): a typed column queries read
    # without parsing JSON. Written from the field, never read back into the payload.
    copied_from: tuple[str, str] | None = None

    @property
    def is_json(self) -> bool:
        return self.type == "JSON"

    @property
    def sql_type(self) -> str:
        # JSON text is stored as VARCHAR: DuckDB's JSON type would re-parse every value on insert
        # (a third of the write cost), and its JSON functions and operators take VARCHAR alike.
        return "VARCHAR" if self.is_json else self.type


@dataclass(frozen=True, eq=False)
class TypedTable:
    """A table for one or more hot kinds: the envelope, the payload's columns, and ``extra``."""

    name: str
    kinds: tuple[str, ...]
    columns: tuple[Column, ...]

    @cached_property
    def column_names(self) -> frozenset[str]:
        return frozenset(c.name for c in self.columns)

    @cached_property
    def copies(self) -> tuple[tuple[int, str, str], ...]:
        """(position in a stored row, payload field, key) of each copied column."""
        return tuple(
            (len(_ENVELOPE) + i, *c.copied_from)
            for i, c in enumerate(self.columns)
            if c.copied_from is not None
        )

    @cached_property
    def writers(self) -> tuple[tuple[str, bool], ...]:
        """(payload key, stored as JSON text) per column, in column order, for the write path."""
        return tuple((c.name, c.is_json) for c in self.columns)

    @cached_property
    def keys(self) -> tuple[str, ...]:
        """The payload key of each column, in column order."""
        return tuple(c.name for c in self.columns)

    @cached_property
    def json_positions(self) -> tuple[int, ...]:
        """Where the JSON columns sit in a stored row (after the envelope)."""
        return tuple(len(_ENVELOPE) + i for i, c in enumerate(self.columns) if c.is_json)


def _cols(spec: str) -> tuple[Column, ...]:
    return tuple(Column(name, kind) for name, kind in (item.split(":") for item in spec.split()))


HTTP_TABLE = TypedTable(
    "http",
    ("http",),
    (
        *_cols(
            "method:VARCHAR url:VARCHAR scheme:VARCHAR host:VARCHAR port:INTEGER path:VARCHAR "
            "query:VARCHAR path_template:VARCHAR http_version:VARCHAR status:INTEGER reason:VARCHAR "
            "error:VARCHAR request_headers:JSON response_headers:JSON request_content_type:VARCHAR "
            "response_content_type:VARCHAR request_size:BIGINT response_size:BIGINT "
            "request_body:VARCHAR request_body_encoding:VARCHAR request_body_truncated:BOOLEAN "
            "response_body:VARCHAR response_body_encoding:VARCHAR response_body_truncated:BOOLEAN "
            "response_body_omitted:VARCHAR streamed:BOOLEAN websocket:BOOLEAN auth:VARCHAR "
            "timings:JSON started_ms:DOUBLE service:VARCHAR"
        ),
        # Latency is in every endpoint figure; extracting it from `timings` JSON cost most of a
        # catalog query over a large session.
        Column("total_ms", "DOUBLE", ("timings", "total_ms")),
        Column("ttfb_ms", "DOUBLE", ("timings", "ttfb_ms")),
    ),
)

CONSOLE_TABLE = TypedTable(
    "console",
    ("console", "error"),
    _cols(
        "level:VARCHAR type:VARCHAR message:VARCHAR args:JSON stack:VARCHAR "
        "source:VARCHAR line:INTEGER column:INTEGER"
    ),
)

TYPED_TABLES: tuple[TypedTable, ...] = (HTTP_TABLE, CONSOLE_TABLE)
TABLE_FOR_KIND: dict[str, TypedTable] = {k: t for t in TYPED_TABLES for k in t.kinds}

# "source" is both an envelope field and an error payload field; in the console table the
# payload's is stored as "error_source" so the two never collide.
_RENAMED = {("console", "source"): "error_source", ("console", "column"): "col"}


def _column_sql_name(table: TypedTable, column: str) -> str:
    return _RENAMED.get((table.name, column), column)


def _schema_sql() -> list[str]:
    envelope = ", ".join(f"{n} {t}" for n, t in zip(_ENVELOPE, _ENVELOPE_TYPES, strict=True))
    statements = [
        "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
        """CREATE TABLE IF NOT EXISTS sessions (
            id VARCHAR PRIMARY KEY, project VARCHAR, source VARCHAR, target VARCHAR,
            started_ms DOUBLE, ended_ms DOUBLE, git_commit VARCHAR, git_branch VARCHAR,
            git_dirty BOOLEAN, pipeline VARCHAR, meta JSON)""",
        f"CREATE TABLE IF NOT EXISTS generic_events ({envelope}, data VARCHAR)",
        """CREATE TABLE IF NOT EXISTS dead_letters (
            ts DOUBLE, session_id VARCHAR, stage VARCHAR, error VARCHAR, event JSON)""",
        # Derived state the analysis stages keep up to date (one row per endpoint or per
        # finding, replaced as it changes), where events only accumulate.
        """CREATE TABLE IF NOT EXISTS endpoints (
            session_id VARCHAR, key VARCHAR, service VARCHAR, host VARCHAR, method VARCHAR,
            path_template VARCHAR, updated_ms DOUBLE, data JSON,
            PRIMARY KEY (session_id, key))""",
        # An endpoint's running figures (rsproxy/analysis/figures.py), apart from its contract
        # state because they change with every call and are written far more often.
        """CREATE TABLE IF NOT EXISTS endpoint_figures (
            session_id VARCHAR, key VARCHAR, updated_ms DOUBLE, data JSON,
            PRIMARY KEY (session_id, key))""",
        """CREATE TABLE IF NOT EXISTS issues (
            session_id VARCHAR, id VARCHAR, detector VARCHAR, severity VARCHAR, title VARCHAR,
            first_seen DOUBLE, last_seen DOUBLE, count INTEGER, data JSON,
            PRIMARY KEY (session_id, id))""",
    ]
    for table in TYPED_TABLES:
        cols = ", ".join(f'"{_column_sql_name(table, c.name)}" {c.sql_type}' for c in table.columns)
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {table.name} ({envelope}, {cols}, extra VARCHAR)"
        )
    names = ", ".join(_ENVELOPE)
    branches = [f"SELECT {names}, data FROM generic_events"]
    branches += [f"SELECT {names}, NULL::VARCHAR AS data FROM {t.name}" for t in TYPED_TABLES]
    statements.append(f"CREATE OR REPLACE VIEW events AS {' UNION ALL '.join(branches)}")
    return statements


def _migrate_2_to_3(conn: duckdb.DuckDBPyConnection) -> None:
    """http gained ``service`` before ``extra``; appenders write by position, so the table is
    rebuilt with the new column order rather than altered (which would append the column)."""
    conn.execute("BEGIN TRANSACTION")
    conn.execute("DROP VIEW IF EXISTS events")
    conn.execute("ALTER TABLE http RENAME TO http_v2")
    for statement in _schema_sql():
        conn.execute(statement)
    conn.execute("INSERT INTO http BY NAME SELECT * FROM http_v2")
    conn.execute("DROP TABLE http_v2")
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'store_version'")
    conn.execute("COMMIT")


def _migrate_3_to_4(conn: duckdb.DuckDBPyConnection) -> None:
    """http gained ``total_ms`` and ``ttfb_ms`` before ``extra``, filled from ``timings``."""
    conn.execute("BEGIN TRANSACTION")
    conn.execute("DROP VIEW IF EXISTS events")
    conn.execute("ALTER TABLE http RENAME TO http_v3")
    for statement in _schema_sql():
        conn.execute(statement)
    copies = """TRY_CAST(json_extract(timings, '$.total_ms') AS DOUBLE) AS total_ms,
                TRY_CAST(json_extract(timings, '$.ttfb_ms') AS DOUBLE) AS ttfb_ms"""
    columns = {r[0] for r in conn.execute("DESCRIBE http_v3").fetchall()}
    # A store migrated from layout 2 just now was rebuilt with today's columns already (empty).
    select = f"* REPLACE ({copies})" if "total_ms" in columns else f"*, {copies}"
    conn.execute(f"INSERT INTO http BY NAME SELECT {select} FROM http_v3")
    conn.execute("DROP TABLE http_v3")
    conn.execute("UPDATE meta SET value = '4' WHERE key = 'store_version'")
    conn.execute("COMMIT")


def _migrate_4_to_5(conn: duckdb.DuckDBPyConnection) -> None:
    """``endpoint_figures`` is new (``_schema_sql`` creates it). Sessions stored before it have
    no figures there, and the reports compute theirs from the ``http`` table as they did."""
    conn.execute("UPDATE meta SET value = '5' WHERE key = 'store_version'")


_MIGRATIONS = {"2": _migrate_2_to_3, "3": _migrate_3_to_4, "4": _migrate_4_to_5}


# The write path serialises several JSON values per event (headers, timings, every generic
# payload); orjson does it in a fraction of the standard encoder's time. Its output is the same
# compact JSON; datetimes and dataclasses are passed to ``default`` so they read as before, and
# whatever it refuses (integers past 64 bits, say) goes through the standard encoder.
_ORJSON_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)
# One encoder for the fallback: json.dumps with any option builds a new encoder per call.
_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode


def _dumps(value: Any, _orjson: Any = orjson.dumps, _options: int = _ORJSON_OPTIONS) -> str | None:
    if value is None:
        return None
    try:
        return _orjson(value, default=str, option=_options).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _encode(value)


def loads(text: str | bytes) -> Any:
    """Parse stored JSON text: orjson, several times quicker on the large catalog and issue
    records; the standard parser for what orjson refuses (``NaN``, written by older versions)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _log_left(path: Path) -> bool:
    """Whether the store's write-ahead log holds writes not yet folded into the file."""
    try:
        return path.with_name(path.name + ".wal").stat().st_size > 0
    except OSError:
        return False


@dataclass
class SessionInfo:
    id: str
    project: str
    source: str
    target: str | None
    started_ms: float
    git_commit: str | None = None
    git_branch: str | None = None
    git_dirty: bool | None = None
    pipeline: str | None = None
    meta: dict[str, Any] | None = None
    ended_ms: float | None = None


class Store:
    """One DuckDB file. ``Store.open`` for the writer; ``Store.open_readonly`` for everyone else."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, path: Path, *, readonly: bool) -> None:
        self._conn = conn
        self.path = path
        self.readonly = readonly
        self._local = threading.local()
        self._appenders: dict[str, Any] = {}
        self._staging: dict[str, tuple[str, list[str]]] = {}
        self._arrow_types: dict[str, list[pa.DataType | None]] = {}
        self._unsaved = False  # written since the last checkpoint
        self._last_write = 0.0  # time.monotonic() of the last write

    # ---- opening -----------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, wait_s: float = 0.0) -> Store:
        """The writer's connection. ``wait_s``: how long to wait for the file's lock when
        another process holds it — a reader (``rsproxy mcp`` keeps the store open for a moment
        between calls) lets go soon; a daemon does not, and is named in the error."""
        path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                conn = duckdb.connect(str(path))
                break
            except duckdb.IOException as exc:
                if "lock" in str(exc).lower() and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise StoreError(
                    f"cannot open the store {path}: {exc}. Another rsproxy process holds it: "
                    "a running daemon (stop it with `rsproxy stop`, or query through it) or a "
                    "reader such as `rsproxy mcp` (it lets go a second after its last call)."
                ) from exc
            except duckdb.Error as exc:
                raise StoreError(f"cannot open the store {path}: {exc}") from exc
        # One DuckDB worker thread: the writer's small batches gain nothing from parallelism, and
        # a second busy thread would compete with the proxy for this machine's cores.
        conn.execute("SET threads = 1")
        conn.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        found = conn.execute("SELECT value FROM meta WHERE key = 'store_version'").fetchone()
        while found is not None and found[0] in _MIGRATIONS:
            _MIGRATIONS[found[0]](conn)
            found = (str(int(found[0]) + 1),)
        if found is not None and found[0] != str(STORE_VERSION):
            conn.close()
            raise StoreError(
                f"the store {path} has layout version {found[0]}, and this rsproxy writes version "
                f"{STORE_VERSION}; move the file away (or use another --project) to start afresh"
            )
        for statement in _schema_sql():
            conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('store_version', ?)", [str(STORE_VERSION)])
        return cls(conn, path, readonly=False)

    @classmethod
    def open_readonly(cls, path: Path) -> Store:
        if not path.exists():
            raise NoStoreError(
                f"no store at {path}: nothing has been captured for this project yet. "
                "Run `rsproxy start` (or `rsproxy replay FILE.har`) first."
            )
        if _log_left(path):
            # A writer was killed and left its write-ahead log, which every read-only open would
            # replay in memory again. A reader can only open the file when no writer holds it,
            # so fold the log in once now; should a writer have just started, it does so itself.
            with contextlib.suppress(StoreError, duckdb.Error):
                writer = cls.open(path)
                try:
                    writer.checkpoint()
                finally:
                    writer.close()
        try:
            conn = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            raise StoreError(f"cannot open the store {path} read-only: {exc}") from exc
        try:
            found = conn.execute("SELECT value FROM meta WHERE key = 'store_version'").fetchone()
        except duckdb.Error:
            found = None
        if found is not None and found[0] in _MIGRATIONS:
            # An older layout: upgrade it once, which needs the writer's lock. Nobody holds it
            # when no daemon runs, which is when readers open the file themselves.
            conn.close()
            try:
                cls.open(path).close()
            except StoreError as exc:
                raise StoreError(
                    f"the store {path} has the older layout {found[0]} and could not be upgraded "
                    f"to {STORE_VERSION} now ({exc}); start rsproxy for the project once to "
                    "upgrade it"
                ) from exc
            return cls.open_readonly(path)
        return cls(conn, path, readonly=True)

    def close(self) -> None:
        self._conn.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection for the calling thread (DuckDB connections are not shared across threads)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self._conn.cursor()
        return cur

    # ---- writing (pipeline worker thread only) ------------------------------------------------

    def _wrote(self) -> None:
        self._unsaved = True
        self._last_write = time.monotonic()

    def write_events(self, events: Sequence[Event]) -> None:
        """Insert a batch in one transaction, each event into its kind's table."""
        if not events:
            return
        rows: dict[str, list[list[Any]]] = {}
        table_for_kind = TABLE_FOR_KIND.get
        dumps = _dumps
        # The loop runs once per stored event, so it is written for speed: payload values come
        # out in column order through a C-level ``map``, and only the JSON columns and the
        # ``extra`` keys are handled value by value.
        for event in events:
            kind = event.kind
            data = event.data
            row = [
                event.id,
                event.ts,
                event.session_id,
                event.page_id,
                event.source,
                kind,
                event.schema_version,
            ]
            table = table_for_kind(kind)
            if table is None:
                row.append(dumps(data))
                name = "generic_events"
            else:
                row += map(data.get, table.keys)
                for position in table.json_positions:
                    value = row[position]
                    if value is not None:
                        row[position] = dumps(value)
                for position, field, key in table.copies:
                    source = data.get(field)
                    if source.__class__ is dict:
                        number = source.get(key)
                        if number.__class__ in (int, float):
                            row[position] = number
                # Keys without a column go to ``extra``, in payload order; an http event after
                # normalize has one (``path_params``), picked without a loop in Python.
                rest = data.keys() - table.column_names
                if not rest:
                    row.append(None)
                elif len(rest) == 1:
                    (key,) = rest
                    row.append(dumps({key: data[key]}))
                else:
                    row.append(dumps({k: v for k, v in data.items() if k in rest}))
                name = table.name
            table_rows = rows.get(name)
            if table_rows is None:
                rows[name] = [row]
            else:
                table_rows.append(row)
        conn = self._conn
        self._wrote()
        conn.execute("BEGIN TRANSACTION")
        try:
            for name, table_rows in rows.items():
                self._insert(name, table_rows)
            conn.execute("COMMIT")
        except BaseException:
            for appender in self._appenders.values():
                appender.clear()
            conn.execute("ROLLBACK")
            raise

    def _insert(self, table: str, rows: list[list[Any]]) -> None:
        """Insert rows (values in column order) as one Arrow table: pyarrow converts a column of
        Python values in C, and DuckDB takes the columns as they are, which measured about twice
        as fast as the appender, which converts value by value through the Python API."""
        types = self._arrow_types.get(table)
        if types is None:
            described = self._conn.execute(f"DESCRIBE {table}").fetchall()
            types = self._arrow_types[table] = [_ARROW_TYPES.get(row[1]) for row in described]
        try:
            columns = [
                pa.array(values, type=arrow_type)
                for values, arrow_type in zip(zip(*rows, strict=True), types, strict=True)
            ]
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            # A value Arrow will not take as its column's type (an int in a text column, say):
            # the appender casts it as DuckDB casts, as this store always has.
            self._append(table, rows)
            return
        names = [f"c{i}" for i in range(len(columns))]
        self._conn.from_arrow(pa.Table.from_arrays(columns, names=names)).insert_into(table)

    def _append(self, table: str, rows: list[list[Any]]) -> None:
        # DuckDB's appender converts rows without parsing and planning an INSERT per batch.
        appender = self._appenders.get(table)
        if appender is None:
            appender = self._appenders[table] = self._conn.appender(table)
        appender.append_rows(rows)
        appender.flush()

    def write_dead_letters(self, rows: Iterable[tuple[float, str, str, str, Event]]) -> None:
        rows = list(rows)
        if rows:
            self._wrote()
            self._conn.executemany(
                "INSERT INTO dead_letters VALUES (?, ?, ?, ?, ?)",
                [(ts, sid, stage, err, _dumps(ev.to_dict())) for ts, sid, stage, err, ev in rows],
            )

    def start_session(self, info: SessionInfo) -> None:
        self._wrote()
        self._conn.execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                info.id,
                info.project,
                info.source,
                info.target,
                info.started_ms,
                None,
                info.git_commit,
                info.git_branch,
                info.git_dirty,
                info.pipeline,
                _dumps(info.meta or {}),
            ],
        )

    def replace_rows(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        """Insert or replace rows of a derived table (``endpoints``, ``issues``) by primary key.
        JSON columns take Python values; a column no row names is left NULL."""
        if not rows:
            return
        columns = list(rows[0])
        # The rows go through an appender into a temporary twin of the table, then one INSERT OR
        # REPLACE ... SELECT moves them: DuckDB binds a parametrised multi-row INSERT value by
        # value, which cost a few hundred microseconds a row, five to ten times this.
        staging, order = self._staging_table(table)
        unknown = set(columns) - set(order)
        if unknown:
            raise StoreError(f"the table {table} has no column {sorted(unknown)[0]!r}")
        values = [
            [_dumps(v) if isinstance(v := r.get(c), (dict, list)) else v for c in order]
            for r in rows
        ]
        names = ", ".join(columns)
        conn = self._conn
        self._wrote()
        conn.execute("BEGIN TRANSACTION")
        try:
            self._append(staging, values)
            conn.execute(f"INSERT OR REPLACE INTO {table} ({names}) SELECT {names} FROM {staging}")
            conn.execute(f"DELETE FROM {staging}")
            conn.execute("COMMIT")
        except BaseException:
            appender = self._appenders.get(staging)
            if appender is not None:
                appender.clear()
            conn.execute("ROLLBACK")
            raise

    def _staging_table(self, table: str) -> tuple[str, list[str]]:
        """The temporary table replace_rows stages ``table``'s rows in, and its columns."""
        found = self._staging.get(table)
        if found is None:
            staging = f"staged_{table}"
            self._conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {staging} AS SELECT * FROM {table} LIMIT 0"
            )
            described = self._conn.execute(f"SELECT * FROM {staging} LIMIT 0").description
            found = self._staging[table] = (staging, [d[0] for d in described or ()])
        return found

    def rewrite_path_templates(
        self,
        session_id: str,
        method: str,
        old: Sequence[str],
        new: str,
        *,
        service: str | None = None,
        host: str | None = None,
    ) -> int:
        """Point a session's stored ``http`` rows at a refined template: the normalize stage has
        folded the ``old`` templates into ``new``. Scoped like the templater's learning: the
        app's rows (``service``) or one other host's (``host``). Returns the rows changed."""
        if not old:
            return 0
        scope, value = ("service", service) if service is not None else ("host", host)
        marks = ", ".join("?" for _ in old)
        self._wrote()
        found = self._conn.execute(
            f"""UPDATE http SET path_template = ?
                WHERE session_id = ? AND method = ? AND {scope} = ? AND path_template IN ({marks})""",
            [new, session_id, method, value, *old],
        ).fetchone()
        return int(found[0]) if found else 0

    def end_session(self, session_id: str, ended_ms: float) -> None:
        self._wrote()
        self._conn.execute("UPDATE sessions SET ended_ms = ? WHERE id = ?", [ended_ms, session_id])

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the file: every committed write compressed in place."""
        self._conn.execute("CHECKPOINT")
        self._unsaved = False

    def checkpoint_when_quiet(self, quiet_s: float) -> bool:
        """Checkpoint once nothing has been written for ``quiet_s`` seconds, so that a store
        between bursts opens without replaying a log and holds no uncompressed writes in memory.
        True when it checkpointed."""
        if not self._unsaved or time.monotonic() - self._last_write < quiet_s:
            return False
        try:
            self.checkpoint()
        except duckdb.Error as exc:
            # The log stays, and so do the writes: try again after another quiet spell.
            self._last_write = time.monotonic()
            log.warning("could not checkpoint the store %s: %s", self.path, exc)
            return False
        return True

    # ---- reading (any thread) -----------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            cur = self.cursor().execute(sql, list(params))
            names = [d[0] for d in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        except duckdb.Error as exc:
            raise StoreError(f"store query failed: {exc}") from exc

    def query_limited(self, sql: str, timeout_s: float) -> list[dict[str, Any]]:
        """``query`` stopped after ``timeout_s`` seconds (DuckDB's interrupt, from a timer)."""
        cur = self.cursor()
        timer = threading.Timer(timeout_s, cur.interrupt)
        timer.start()
        try:
            return self.query(sql)
        except StoreError as exc:
            if "interrupt" in str(exc).lower():
                raise StoreError(
                    f"the query was stopped after {timeout_s:g} s; narrow it (a WHERE on "
                    "session_id or ts, a LIMIT) and try again"
                ) from None
            raise
        finally:
            timer.cancel()

    def sessions(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.query(
            """SELECT s.*, (SELECT count(*) FROM events e WHERE e.session_id = s.id) AS events
               FROM sessions s ORDER BY started_ms DESC LIMIT ?""",
            [limit],
        )
        for row in rows:
            row["meta"] = json.loads(row["meta"]) if row.get("meta") else {}
        return rows

    def latest_session_id(self) -> str | None:
        rows = self.query("SELECT id FROM sessions ORDER BY started_ms DESC LIMIT 1")
        return rows[0]["id"] if rows else None

    def events(
        self,
        *,
        kinds: Sequence[str] = (),
        session_id: str | None = None,
        since_ms: float | None = None,
        limit: int = 100,
        before_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Events newest first, each as a full envelope with its payload under ``data``."""
        where: list[str] = []
        params: list[Any] = []
        if kinds:
            where.append(f"kind IN ({', '.join('?' for _ in kinds)})")
            params.extend(kinds)
        if session_id:
            where.append("session_id = ?")
            params.append(session_id)
        if since_ms is not None:
            where.append("ts >= ?")
            params.append(since_ms)
        if before_id:
            where.append("id < ?")
            params.append(before_id)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        envelopes = self.query(
            f"SELECT * FROM events {clause} ORDER BY ts DESC, id DESC LIMIT ?", [*params, limit]
        )
        self._attach_payloads(envelopes)
        return envelopes

    def _attach_payloads(self, envelopes: list[dict[str, Any]]) -> None:
        wanted: dict[str, list[str]] = {}
        for env in envelopes:
            table = TABLE_FOR_KIND.get(env["kind"])
            if table is None:
                raw = env.pop("data")
                env["data"] = json.loads(raw) if raw else {}
            else:
                env.pop("data", None)
                wanted.setdefault(table.name, []).append(env["id"])
        payloads: dict[str, dict[str, Any]] = {}
        for table in TYPED_TABLES:
            ids = wanted.get(table.name)
            if ids:
                for row in self.query(
                    f"SELECT * FROM {table.name} WHERE id IN (SELECT unnest(?))", [ids]
                ):
                    payloads[row["id"]] = self.payload_from_row(table, row)
        for env in envelopes:
            if env["id"] in payloads:
                env["data"] = payloads[env["id"]]

    @staticmethod
    def payload_from_row(table: TypedTable, row: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for column in table.columns:
            if column.copied_from is not None:
                continue  # a copy of what the payload already holds
            value = row.get(_column_sql_name(table, column.name))
            if column.is_json and isinstance(value, str):
                value = json.loads(value)
            if value is not None:
                data[column.name] = value
        if row.get("extra"):
            data.update(json.loads(row["extra"]))
        return data

    def counts(self, session_id: str | None = None) -> dict[str, int]:
        clause, params = ("WHERE session_id = ?", [session_id]) if session_id else ("", [])
        rows = self.query(f"SELECT kind, count(*) AS n FROM events {clause} GROUP BY kind", params)
        return {r["kind"]: r["n"] for r in rows}
