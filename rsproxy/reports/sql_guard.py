"""The check on `query_events` SQL: one read-only SELECT over the store's own tables.

The store is opened read-only or read through the daemon, so a write would fail anyway; this
check is about what a read could reach: DuckDB can read files (`read_csv('/etc/passwd')`,
`FROM 'x.parquet'`), URLs (httpfs), other databases (ATTACH) and settings. So the statement is
parsed with sqlglot and must be exactly one SELECT (a WITH, UNION and subqueries included)
whose tables are the store's own or its CTEs, calling no function that reads outside the store.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from rsproxy.errors import ReportError

TABLES = frozenset(
    {
        "events",
        "http",
        "console",
        "generic_events",
        "sessions",
        "endpoints",
        "issues",
        "dead_letters",
        "meta",
    }
)

_EXAMPLE = "SELECT kind, count(*) FROM events GROUP BY kind"

# Functions that read files, URLs, other databases or the environment, or run SQL text.
_FORBIDDEN_FUNCTIONS = (
    "read_",
    "_scan",
    "scan_",
    "glob",
    "getenv",
    "query",
    "sniff_csv",
    "current_setting",
    "duckdb_",
    "pragma_",
    "which_secret",
    "load",
    "install",
    "attach",
    "copy",
    "export",
    "import",
    "parquet_",
    "json_execute_serialized_sql",
)

_FORBIDDEN_NODES = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.Command,
    exp.Copy,
    exp.Pragma,
    exp.Set,
    exp.Merge,
    exp.TruncateTable,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Use,
    exp.LoadData,
)


def _refuse(why: str) -> ReportError:
    return ReportError(
        f"query refused: {why}. Only one read-only SELECT over the store's tables "
        f"({', '.join(sorted(TABLES))}) is allowed, e.g. {_EXAMPLE!r}"
    )


def check_select(sql: str) -> str:
    """The statement, normalised, if it is allowed; else a ReportError saying why."""
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise _refuse("the query is empty")
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise ReportError(
            f"query does not parse: {str(exc).splitlines()[0]}; e.g. {_EXAMPLE!r}"
        ) from None
    if len(statements) != 1:
        raise _refuse(f"{len(statements)} statements were given")
    tree = statements[0]
    if not isinstance(tree, (exp.Select, exp.Union, exp.Except, exp.Intersect)):
        raise _refuse(f"{tree.key.upper()} is not a SELECT")
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            raise _refuse(f"{node.key.upper()} is not allowed")
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if any(bad in name for bad in _FORBIDDEN_FUNCTIONS):
                raise _refuse(f"the function {name}() reads outside the store")
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise _refuse(f"{table.sql(dialect='duckdb')} is not one of the store's tables")
        name = table.name.lower()
        if table.args.get("db") or table.args.get("catalog"):
            raise _refuse(f"{table.sql(dialect='duckdb')} names another database or schema")
        if name not in TABLES and name not in ctes:
            raise _refuse(f"{table.name!r} is not one of the store's tables")
    return tree.sql(dialect="duckdb")
