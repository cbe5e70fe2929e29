"""SQL fingerprints, and PostgREST (Supabase) URLs read back as the SQL they stand for.

``analyze(text, dialect)`` gives what the detectors and the query log group by:

* ``fingerprint`` — the statement with every literal and bind parameter (``$1``, ``%s``,
  ``:name``, ``?``) replaced by ``?``, IN-lists, arrays and multi-row ``VALUES`` collapsed to
  one item, keywords upper-cased and whitespace normalised by sqlglot's generator, so the same
  query with other values has the same fingerprint (``SELECT * FROM users WHERE id IN (?)``);
* ``statement_type`` (``select``, ``insert``, ``update``, ``delete``, ``create``, ...),
  ``tables`` (names without schema, common table expressions left out) and ``select_star``
  (a ``SELECT *`` or ``t.*`` in a select list; ``COUNT(*)`` is not one).

It never raises: SQL sqlglot cannot parse gets a fingerprint from patterns instead (same literal
rules, keywords upper-cased) and tables from ``FROM``/``JOIN``/``INTO``/``UPDATE``. Results are
cached by the statement with its literals blanked out, so a query repeated with other values,
the usual case (an N+1 loop), is parsed once.

``postgrest_sql(method, path, query, body)`` renders ``GET /rest/v1/users?select=id,name&age=
gte.18&order=name.asc&limit=10`` as ``SELECT id, name FROM users WHERE age >= 18 ORDER BY name
ASC LIMIT 10`` (POST → INSERT, PATCH → UPDATE, PUT → upsert, DELETE → DELETE, ``/rpc/f`` → a
function call), with PostgREST's operators, ``not.``, ``or=(...)``/``and=(...)`` and embedded
resources (rendered as subqueries).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

import sqlglot
from sqlglot import exp

# sqlglot logs a warning for every statement it parses only as an opaque command (VACUUM, a
# vendor's SET variant). rsproxy parses whatever SQL an app runs, so these are expected.
logging.getLogger("sqlglot").addFilter(
    lambda record: "Falling back to parsing as a 'Command'" not in record.getMessage()
)

MAX_PARSED = 20_000  # characters; longer statements (bulk inserts) get the pattern fingerprint
_CACHE_SIZE = 4096

DIALECTS = {
    "postgres": "postgres",
    "postgresql": "postgres",
    "pg": "postgres",
    "psql": "postgres",
    "supabase": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
    "sqlite3": "sqlite",
    "duckdb": "duckdb",
    "mssql": "tsql",
    "sqlserver": "tsql",
    "tsql": "tsql",
    "oracle": "oracle",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "clickhouse": "clickhouse",
}


class SqlInfo(NamedTuple):
    fingerprint: str
    statement_type: str
    tables: tuple[str, ...]
    select_star: bool
    parsed: bool  # False when the fingerprint came from patterns (sqlglot could not parse it)

    def as_payload(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "statement_type": self.statement_type,
            "tables": list(self.tables),
            "select_star": self.select_star,
        }


def dialect_of(name: str | None) -> str | None:
    """sqlglot's dialect for a database system's name (``postgresql://...`` works too)."""
    if not name:
        return None
    key = name.strip().lower().split("://", 1)[0].split("+", 1)[0]
    return DIALECTS.get(key)


# ---- pattern level -------------------------------------------------------------------------

# Spans that must be kept whole (identifiers, comments) or replaced whole (strings), in order.
_LEXEME_KINDS = r"""(?P<comment>--[^\n]*|/\*.*?\*/)
      | (?P<string>(?:(?<!\w)[EeNnBbXx])?'(?:[^'\\]|''|\\.)*')
      | (?P<dollar>\$(?P<tag>[A-Za-z_]\w*)?\$.*?\$(?P=tag)?\$)
      | (?P<ident>"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]\n]*\])
      | (?P<param>\$\d+|%\((?:\w+)\)s|%s|(?<![:\w]):[A-Za-z_]\w*|\?|@[A-Za-z_]\w*)
      | (?P<number>(?<![\w.$])(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)(?![\w.]))"""
# Every lexeme starts with one of these characters, or is a string with a one-letter prefix.
# Testing that first lets the engine pass over the rest of a statement (keywords, names) a
# character at a time instead of trying six alternatives at each: about 4x faster, same matches.
_LEXEMES = re.compile(
    r"""(?=[-/'$"`\[%:?@\d.]|[EeNnBbXx]')(?:""" + _LEXEME_KINDS + ")", re.VERBOSE | re.DOTALL
)
_LIST = re.compile(r"\b(IN\s*)\(\s*\?(?:\s*,\s*\?)+\s*\)", re.IGNORECASE)
_ROWS = re.compile(r"(\(\s*\?(?:\s*,\s*\?)*\s*\))(?:\s*,\s*\(\s*\?(?:\s*,\s*\?)*\s*\))+")
_ARRAY = re.compile(r"\[\s*\?(?:\s*,\s*\?)+\s*\]")
_KEYWORDS = re.compile(
    r"\b(select|from|where|and|or|not|in|is|null|insert|into|values|update|set|delete|join|"
    r"left|right|inner|outer|full|cross|on|as|group|by|order|having|limit|offset|union|all|"
    r"distinct|case|when|then|else|end|with|returning|create|table|index|drop|alter|asc|desc|"
    r"exists|between|like|ilike|any|conflict|do|nothing|duplicate|key|begin|commit|rollback)\b",
    re.IGNORECASE,
)
_TABLE_AFTER = re.compile(
    r"\b(?:from|join|into|update|table)\s+((?:[\w$]+|\"[^\"]+\"|`[^`]+`)(?:\.(?:[\w$]+|\"[^\"]+\"|`[^`]+`))*)",
    re.IGNORECASE,
)
_STAR = re.compile(
    r"\bselect\s+(?:distinct\s+)?(?:[\w\"`.]+\.)?\*|,\s*(?:[\w\"`]+\.)?\*", re.IGNORECASE
)


def _blank(text: str, *, placeholders_only: bool = False) -> str:
    """``text`` with bind parameters (and, unless ``placeholders_only``, literals) as ``?``,
    comments dropped and whitespace collapsed; identifiers and the rest kept as written.
    (Whitespace is collapsed everywhere, inside a quoted identifier too: ``"a  b"`` reads as
    ``"a b"``, a price paid for not calling back into Python at every space.)"""

    def replace(match: re.Match[str]) -> str:
        kind = match.lastgroup
        if kind == "comment":
            return " "
        if kind == "param":
            return "?"
        if kind in ("string", "dollar", "number"):
            return match.group(0) if placeholders_only else "?"
        return match.group(0)

    return " ".join(_LEXEMES.sub(replace, text).split())


def pattern_key(text: str) -> str:
    """The statement with literals and parameters blanked and lists collapsed: the cache key,
    and the fingerprint's skeleton when sqlglot cannot parse the statement."""
    blanked = _blank(text)
    blanked = _ROWS.sub(r"\1", blanked)
    blanked = _LIST.sub(r"\1(?)", blanked)
    return _ARRAY.sub("[?]", blanked).rstrip(";").strip()


def _pattern_info(key: str) -> SqlInfo:
    fingerprint = _KEYWORDS.sub(lambda m: m.group(0).upper(), key)
    words = key.split(None, 1)
    statement = words[0].lower() if words else ""
    if statement == "with":
        found = re.search(r"\)\s*(select|insert|update|delete)\b", key, re.IGNORECASE)
        statement = found.group(1).lower() if found else "select"
    tables = []
    for match in _TABLE_AFTER.finditer(key):
        name = match.group(1).split(".")[-1].strip('"`')
        if name and name.lower() not in ("select", "set") and name not in tables:
            tables.append(name)
    return SqlInfo(fingerprint, statement, tuple(tables), bool(_STAR.search(key)), parsed=False)


# ---- sqlglot level ------------------------------------------------------------------------

_TYPES: dict[type[exp.Expr], str] = {
    exp.Select: "select",
    exp.Union: "select",
    exp.Intersect: "select",
    exp.Except: "select",
    exp.Insert: "insert",
    exp.Update: "update",
    exp.Delete: "delete",
    exp.Merge: "merge",
    exp.Create: "create",
    exp.Drop: "drop",
    exp.Alter: "alter",
    exp.Commit: "commit",
    exp.Rollback: "rollback",
    exp.Transaction: "begin",
    exp.Set: "set",
    exp.Show: "show",
    exp.Describe: "describe",
    exp.Use: "use",
}


# What a bind parameter could stand for: literals (booleans too, as pg_stat_statements counts
# them) and the parameters themselves.
_VALUES = (exp.Literal, exp.Boolean, exp.Parameter, exp.Placeholder)


def _hole() -> exp.Expression:
    # A bare variable named "?" prints as ? in every dialect (a Placeholder is %s in some).
    return exp.var("?")


def _collapse(node: exp.Expression) -> exp.Expression:
    """Literals and parameters to ``?``; IN-lists, arrays and VALUES rows to one item."""
    if isinstance(node, _VALUES):
        return _hole()
    if isinstance(node, exp.Neg) and isinstance(node.this, _VALUES):
        return _hole()
    if isinstance(node, exp.Array) and all(
        isinstance(e, _VALUES) or (isinstance(e, exp.Neg) and isinstance(e.this, _VALUES))
        for e in node.expressions
    ):
        return _hole()  # ARRAY[1, 2, 3] is one value, as a bound array parameter would be
    if isinstance(node, exp.In) and len(node.expressions) > 1:
        node.set("expressions", [_hole()])
    elif isinstance(node, exp.Values) and len(node.expressions) > 1:
        node.set("expressions", node.expressions[:1])
    return node


def _statement_type(tree: exp.Expr) -> str:
    for cls, name in _TYPES.items():
        if isinstance(tree, cls):
            return name
    return type(tree).__name__.lower()


def _tables(tree: exp.Expr) -> list[str]:
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    out: list[str] = []
    for table in tree.find_all(exp.Table):
        name = table.name
        if name and name not in ctes and name not in out:
            out.append(name)
    return out


def _select_star(tree: exp.Expr) -> bool:
    for select in tree.find_all(exp.Select):
        for item in select.expressions:
            if isinstance(item, exp.Star) or (
                isinstance(item, exp.Column) and isinstance(item.this, exp.Star)
            ):
                return True
    return False


def _parsed_info(text: str, dialect: str | None) -> SqlInfo | None:
    prepared = _blank(text, placeholders_only=True)  # $1, %s, :name → ? (sqlglot reads ?)
    attempts = [dialect] if dialect else [None, "postgres", "mysql"]
    for attempt in attempts:
        try:
            statements = [s for s in sqlglot.parse(prepared, read=attempt) if s is not None]
        except (sqlglot.errors.SqlglotError, RecursionError, ValueError, TypeError):
            continue
        if not statements:
            return None
        fingerprints: list[str] = []
        tables: list[str] = []
        star = False
        for statement in statements:
            if isinstance(statement, exp.Command):
                # sqlglot gave up on the syntax (VACUUM, a vendor's variant): another dialect may
                # know it, else the pattern fingerprint keeps the statement's text, not one word
                break
            collapsed = statement.transform(_collapse, copy=True)
            fingerprints.append(collapsed.sql(dialect=attempt))
            tables.extend(t for t in _tables(statement) if t not in tables)
            star = star or _select_star(statement)
        else:
            main = next(
                (s for s in statements if not isinstance(s, (exp.Transaction, exp.Commit))),
                statements[0],
            )
            return SqlInfo(
                "; ".join(fingerprints), _statement_type(main), tuple(tables), star, True
            )
    return None


# ---- the entry point ----------------------------------------------------------------------

# Shared by the pipeline worker and report threads, hence the lock (held only for the lookups).
# Two levels: the exact text (an app runs the same statements again and again), then the text
# with its literals blanked (the same statement with other values: parsed once).
_cache: OrderedDict[tuple[str, str | None], SqlInfo] = OrderedDict()
_texts: dict[tuple[str, str | None], SqlInfo] = {}
_cache_lock = threading.Lock()


def analyze(text: str, dialect: str | None = None) -> SqlInfo:
    """Fingerprint, statement type, tables and SELECT * flag of a statement. Never raises."""
    if not isinstance(text, str):
        text = str(text)
    text_key = (text, dialect)
    found = _texts.get(text_key)
    if found is not None:
        return found
    info = _analyze(text, dialect)
    with _cache_lock:
        if len(_texts) >= _CACHE_SIZE:
            _texts.clear()  # a cheap bound; the second level still holds the parses
        _texts[text_key] = info
    return info


def _analyze(text: str, dialect: str | None) -> SqlInfo:
    try:
        key = pattern_key(text)
    except (RecursionError, ValueError):
        key = " ".join(text.split())
    cache_key = (key, dialect)
    with _cache_lock:
        found = _cache.get(cache_key)
        if found is not None:
            _cache.move_to_end(cache_key)
            return found
    info = None
    if len(text) <= MAX_PARSED:
        try:
            info = _parsed_info(text, dialect)
        except Exception:  # sqlglot on input nobody tested it with: patterns instead
            info = None
    if info is None:
        info = _pattern_info(key)
    with _cache_lock:
        _cache[cache_key] = info
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return info


# ---- PostgREST ------------------------------------------------------------------------------

POSTGREST_PREFIX = "/rest/v1/"
_RESERVED = frozenset({"select", "order", "limit", "offset", "on_conflict", "columns", "and", "or"})
_OPERATORS = {
    "eq": "=",
    "neq": "<>",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "like": "LIKE",
    "ilike": "ILIKE",
    "match": "~",
    "imatch": "~*",
    "cs": "@>",
    "cd": "<@",
    "ov": "&&",
    "sl": "<<",
    "sr": ">>",
    "nxr": "&<",
    "nxl": "&>",
    "adj": "-|-",
    "isdistinct": "IS DISTINCT FROM",
}
_FTS = {
    "fts": "to_tsquery",
    "plfts": "plainto_tsquery",
    "phfts": "phraseto_tsquery",
    "wfts": "websearch_to_tsquery",
}
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_OP = re.compile(r"(not\.)?(\w+)(?:\((any|all|[\w-]+)\))?\.(.*)", re.DOTALL)


class PostgrestSql(NamedTuple):
    sql: str
    tables: tuple[str, ...]


def _split_top(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside parentheses, braces and double quotes."""
    out: list[str] = []
    depth = 0
    quoted = False
    start = 0
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
        elif ch == sep and depth == 0:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return [p.strip() for p in out if p.strip()]


def _literal(value: str) -> str:
    if _NUMBER.fullmatch(value):
        return value
    lower = value.lower()
    if lower in ("null", "true", "false"):
        return lower.upper()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('\\"', '"')
    return "'" + value.replace("'", "''") + "'"


def _json_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return "'" + json.dumps(value, separators=(",", ":")).replace("'", "''") + "'"


def _column(name: str) -> str:
    # col->>key JSON paths and col::type casts are already SQL
    return name


def _condition(column: str, expression: str) -> str:
    """``age``, ``gte.18`` → ``age >= 18``; handles ``not.``, ``in.(...)``, ``is.null``."""
    match = _OP.fullmatch(expression)
    if not match:
        return f"{_column(column)} = {_literal(expression)}"
    negated, op, modifier, value = match.groups()
    col = _column(column)
    if op == "in":
        items = _split_top(value.strip()[1:-1]) if value.strip().startswith("(") else [value]
        text = f"{col} IN ({', '.join(_literal(i) for i in items)})"
    elif op == "is":
        text = f"{col} IS {value.upper()}"
    elif op in _FTS:
        language = f"'{modifier}', " if modifier and modifier not in ("any", "all") else ""
        text = f"{col} @@ {_FTS[op]}({language}{_literal(value)})"
    elif op in ("like", "ilike") and modifier not in ("any", "all"):
        text = f"{col} {_OPERATORS[op]} {_literal(value.replace('*', '%'))}"
    elif op in _OPERATORS:
        sql_op = _OPERATORS[op]
        if modifier in ("any", "all"):
            listed = value.strip().strip("{}")
            text = f"{col} {sql_op} {modifier.upper()}({_literal('{' + listed + '}')})"
        else:
            text = f"{col} {sql_op} {_literal(value)}"
    else:
        return f"{col} = {_literal(expression)}"
    return f"NOT {text}" if negated else text


def _logic(op: str, body: str, negated: bool = False) -> str:
    """``or``, ``(a.eq.1,b.gt.2,and(c.lt.3))`` → ``(a = 1 OR b > 2 OR (c < 3))``."""
    inner = body.strip()
    if inner.startswith("(") and inner.endswith(")"):
        inner = inner[1:-1]
    parts = []
    for item in _split_top(inner):
        nested = re.fullmatch(r"(not\.)?(and|or)(\(.*\))", item, re.DOTALL)
        if nested:
            parts.append(_logic(nested.group(2), nested.group(3), bool(nested.group(1))))
            continue
        column, _, rest = item.partition(".")
        parts.append(_condition(column, rest))
    text = "(" + f" {op.upper()} ".join(parts) + ")"
    return f"NOT {text}" if negated else text


def _select_list(select: str, tables: list[str]) -> str:
    items = []
    for item in _split_top(select):
        alias, sep, rest = item.partition(":")
        if not sep or "(" in alias or ":" in rest[:1]:
            alias, rest = "", item  # no alias (a ::cast is not an alias)
        embedded = re.fullmatch(r"([\w-]+)(?:![\w-]+)?\((.*)\)", rest, re.DOTALL)
        aggregate = re.fullmatch(r"(?:([\w>-]+)\.)?(count|sum|avg|min|max)\(\)(::\w+)?", rest)
        if aggregate:
            column, func = aggregate.group(1), aggregate.group(2)
            text = f"{func}({column or '*'})"
            alias = alias or (func if not column else "")
        elif embedded:
            table = embedded.group(1)
            tables.append(table)
            inner = _select_list(embedded.group(2) or "*", tables)
            text = f"(SELECT {inner} FROM {table})"
            alias = alias or table
        else:
            text = rest
        items.append(f"{text} AS {alias}" if alias else text)
    return ", ".join(items) or "*"


def postgrest_sql(
    method: str,
    path: str,
    query: str = "",
    body: str | None = None,
    headers: dict[str, str] | None = None,
) -> PostgrestSql | None:
    """Readable SQL for a PostgREST request, or None when ``path`` is not a PostgREST one."""
    if not path.startswith(POSTGREST_PREFIX):
        return None
    name = path[len(POSTGREST_PREFIX) :].strip("/")
    if not name:
        return None
    headers = headers or {}
    method = method.upper()
    params = parse_qsl(query, keep_blank_values=True)
    schema = headers.get("accept-profile") or headers.get("content-profile")
    if name.startswith("rpc/"):
        return _rpc(name[4:], method, params, body)
    table = f"{schema}.{name}" if schema else name
    tables = [name]
    where: list[str] = []
    select = "*"
    order: list[str] = []
    limit = offset = None
    on_conflict = None
    for key, value in params:
        if key == "select":
            select = value
        elif key == "order":
            order = [_order(item) for item in _split_top(value)]
        elif key == "limit":
            limit = value
        elif key == "offset":
            offset = value
        elif key == "on_conflict":
            on_conflict = value
        elif key in ("or", "and"):
            where.append(_logic(key, value))
        elif key in ("not.or", "not.and"):
            where.append(_logic(key[4:], value, negated=True))
        elif key == "columns":
            continue
        else:
            where.append(_condition(key, value))
    where_sql = f" WHERE {' AND '.join(where)}" if where else ""
    prefer = headers.get("prefer", "")
    returning = " RETURNING *" if "return=representation" in prefer else ""
    if method in ("GET", "HEAD"):
        columns = _select_list(select, tables)
        sql = f"SELECT {columns} FROM {table}{where_sql}"
        if order:
            sql += f" ORDER BY {', '.join(order)}"
        if limit is not None:
            sql += f" LIMIT {_literal(limit)}"
        if offset is not None:
            sql += f" OFFSET {_literal(offset)}"
    elif method in ("POST", "PUT"):
        rows = _rows(body)
        columns_list = list(dict.fromkeys(k for row in rows for k in row)) if rows else []
        values = (
            "(" + ", ".join(_json_literal(rows[0].get(c)) for c in columns_list) + ")"
            if rows
            else "DEFAULT VALUES"
        )
        more = f" /* and {len(rows) - 1} more rows */" if len(rows) > 1 else ""
        column_sql = f" ({', '.join(columns_list)})" if columns_list else ""
        sql = f"INSERT INTO {table}{column_sql} VALUES {values}{more}"
        if values == "DEFAULT VALUES":
            sql = f"INSERT INTO {table} DEFAULT VALUES"
        upsert = method == "PUT" or "resolution=merge-duplicates" in prefer
        if upsert or "resolution=ignore-duplicates" in prefer:
            target = f" ({on_conflict})" if on_conflict else ""
            if upsert and columns_list:
                sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns_list)
                sql += f" ON CONFLICT{target} DO UPDATE SET {sets}"
            else:
                sql += f" ON CONFLICT{target} DO NOTHING"
        sql += returning
    elif method == "PATCH":
        rows = _rows(body)
        row = rows[0] if rows else {}
        sets = ", ".join(f"{k} = {_json_literal(v)}" for k, v in row.items()) or "?"
        sql = f"UPDATE {table} SET {sets}{where_sql}{returning}"
    elif method == "DELETE":
        sql = f"DELETE FROM {table}{where_sql}{returning}"
    else:
        return None
    return PostgrestSql(sql, tuple(dict.fromkeys(tables)))


def _order(item: str) -> str:
    parts = item.split(".")
    column, rest = parts[0], [p.lower() for p in parts[1:]]
    words = [column]
    if "asc" in rest:
        words.append("ASC")
    elif "desc" in rest:
        words.append("DESC")
    if "nullsfirst" in rest:
        words.append("NULLS FIRST")
    elif "nullslast" in rest:
        words.append("NULLS LAST")
    return " ".join(words)


def _rows(body: str | None) -> list[dict[str, Any]]:
    if not body:
        return []
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return []
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def _rpc(
    function: str, method: str, params: list[tuple[str, str]], body: str | None
) -> PostgrestSql:
    if method in ("GET", "HEAD"):
        args = [f"{k} => {_literal(v)}" for k, v in params if k not in _RESERVED]
    else:
        rows = _rows(body)
        args = [f"{k} => {_json_literal(v)}" for k, v in (rows[0] if rows else {}).items()]
    return PostgrestSql(f"SELECT * FROM {function}({', '.join(args)})", ())
