"""The read-only check on `query_events` SQL (rsproxy/reports/sql_guard.py)."""

from __future__ import annotations

import pytest

from rsproxy.errors import ReportError
from rsproxy.reports.sql_guard import check_select


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT kind, count(*) FROM events GROUP BY kind",
        "WITH slow AS (SELECT * FROM http WHERE status >= 500) SELECT count(*) FROM slow",
        "SELECT id FROM http UNION ALL SELECT id FROM console",
        "SELECT json_extract_string(data, '$.component') FROM generic_events;",
        "select * from (select * from issues) as i where i.count > 1",
    ],
)
def test_selects_over_the_stores_tables_pass(sql: str) -> None:
    assert check_select(sql).upper().startswith(("SELECT", "WITH"))


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("", "empty"),
        ("DELETE FROM events", "DELETE is not a SELECT"),
        ("UPDATE http SET status = 1", "UPDATE is not a SELECT"),
        ("COPY events TO 'out.csv'", "COPY is not a SELECT"),
        ("ATTACH 'other.duckdb'", "ATTACH is not a SELECT"),
        ("INSTALL httpfs", "INSTALL is not a SELECT"),
        ("PRAGMA database_list", "PRAGMA is not a SELECT"),
        ("SET threads = 8", "SET is not a SELECT"),
        ("SELECT 1; DROP TABLE http", "2 statements"),
        ("SELECT * FROM read_csv('/etc/passwd')", "read_csv() reads outside"),
        ("SELECT * FROM '/etc/passwd'", "is not one of the store's tables"),
        ("SELECT * FROM 'https://example.com/data.parquet'", "is not one of the store's tables"),
        ("SELECT getenv('HOME')", "getenv() reads outside"),
        ("SELECT * FROM glob('/root/*')", "glob() reads outside"),
        ("SELECT * FROM other_db.main.events", "another database"),
        ("SELECT * FROM duckdb_settings()", "duckdb_settings() reads outside"),
        ("SELECT * FROM secrets", "'secrets' is not one of the store's tables"),
        ("SELEC * FROM events", "does not parse"),
    ],
)
def test_anything_else_is_refused_with_the_reason_and_an_example(sql: str, why: str) -> None:
    with pytest.raises(ReportError) as caught:
        check_select(sql)
    message = str(caught.value)
    assert why in message
    if "does not parse" not in message:
        assert "SELECT kind, count(*) FROM events GROUP BY kind" in message
