"""SQL fingerprints and PostgREST rendering (rsproxy/analysis/sql.py).

The corpus is SQL as ORMs send it to PostgreSQL (Prisma, Django, SQLAlchemy) and to MariaDB,
each statement once with literal values and once with the bind parameters its driver uses. Both
forms must fingerprint the same, and to the expected text. The ``services`` tests run the whole
corpus on the machine's real PostgreSQL and MariaDB (a scratch database each, dropped
afterwards), so every statement here is one those servers accept, not SQL written to suit the
fingerprinter.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import NamedTuple

import pytest

from rsproxy.analysis.sql import (
    _LEXEME_KINDS,
    _LEXEMES,
    analyze,
    dialect_of,
    pattern_key,
    postgrest_sql,
)
from rsproxy.testing import services_required


class Case(NamedTuple):
    literal: str
    parameterized: str | None  # as the driver sends it; None when it takes no parameters
    server_parameters: bool  # the parameters are the server's ($1, ?), so it can PREPARE it
    fingerprint: str
    statement_type: str
    tables: tuple[str, ...]
    select_star: bool


POSTGRES = [
    Case(  # Prisma: findMany with `in` and skip
        'SELECT "public"."User"."id", "public"."User"."email" FROM "public"."User" WHERE "public"."User"."id" IN (1,2,3) OFFSET 0',
        'SELECT "public"."User"."id", "public"."User"."email" FROM "public"."User" WHERE "public"."User"."id" IN ($1,$2,$3) OFFSET $4',
        True,
        'SELECT "public"."User"."id", "public"."User"."email" FROM "public"."User" WHERE "public"."User"."id" IN (?) OFFSET ?',
        "select",
        ("User",),
        False,
    ),
    Case(  # Prisma: a boolean filter, ordering and paging
        'SELECT "public"."Post"."id", "public"."Post"."title" FROM "public"."Post" WHERE ("public"."Post"."published" = true AND "public"."Post"."authorId" IN (7)) ORDER BY "public"."Post"."createdAt" DESC LIMIT 10 OFFSET 20',
        'SELECT "public"."Post"."id", "public"."Post"."title" FROM "public"."Post" WHERE ("public"."Post"."published" = $1 AND "public"."Post"."authorId" IN ($2)) ORDER BY "public"."Post"."createdAt" DESC LIMIT $3 OFFSET $4',
        True,
        'SELECT "public"."Post"."id", "public"."Post"."title" FROM "public"."Post" WHERE ("public"."Post"."published" = ? AND "public"."Post"."authorId" IN (?)) ORDER BY "public"."Post"."createdAt" DESC LIMIT ? OFFSET ?',
        "select",
        ("Post",),
        False,
    ),
    Case(  # Django: filter().order_by()[:21] with psycopg's %s
        'SELECT "shop_order"."id", "shop_order"."total" FROM "shop_order" WHERE ("shop_order"."user_id" = 42 AND "shop_order"."status" = \'paid\') ORDER BY "shop_order"."created_at" DESC LIMIT 21',
        'SELECT "shop_order"."id", "shop_order"."total" FROM "shop_order" WHERE ("shop_order"."user_id" = %s AND "shop_order"."status" = %s) ORDER BY "shop_order"."created_at" DESC LIMIT 21',
        False,
        'SELECT "shop_order"."id", "shop_order"."total" FROM "shop_order" WHERE ("shop_order"."user_id" = ? AND "shop_order"."status" = ?) ORDER BY "shop_order"."created_at" DESC LIMIT ?',
        "select",
        ("shop_order",),
        False,
    ),
    Case(  # SQLAlchemy: insert().returning() with pyformat parameters
        "INSERT INTO shop_order (user_id, total, status) VALUES (42, 19.99, 'new') RETURNING shop_order.id",
        "INSERT INTO shop_order (user_id, total, status) VALUES (%(user_id)s, %(total)s, %(status)s) RETURNING shop_order.id",
        False,
        "INSERT INTO shop_order (user_id, total, status) VALUES (?, ?, ?) RETURNING shop_order.id",
        "insert",
        ("shop_order",),
        False,
    ),
    Case(  # a multi-row upsert: the rows collapse to one
        "INSERT INTO product (sku, name, stock) VALUES ('A-1', 'Pen', 10), ('A-2', 'Ink', 5) ON CONFLICT (sku) DO UPDATE SET stock = product.stock + EXCLUDED.stock",
        "INSERT INTO product (sku, name, stock) VALUES ($1, $2, $3) ON CONFLICT (sku) DO UPDATE SET stock = product.stock + EXCLUDED.stock",
        True,
        "INSERT INTO product (sku, name, stock) VALUES (?, ?, ?) ON CONFLICT(sku) DO UPDATE SET stock = product.stock + EXCLUDED.stock",
        "insert",
        ("product",),
        False,
    ),
    Case(  # jsonb, ILIKE, = ANY(array): an array literal is one value, like a bound array
        "SELECT id, name FROM product WHERE attrs->>'color' = 'red' AND name ILIKE '%pen%' AND id = ANY(ARRAY[1, 2, 3]) AND created_at > now() - interval '7 days'",
        "SELECT id, name FROM product WHERE attrs->>'color' = $1 AND name ILIKE $2 AND id = ANY($3) AND created_at > now() - interval '7 days'",
        True,
        "SELECT id, name FROM product WHERE attrs ->> 'color' = ? AND name ILIKE ? AND id = ANY(?) AND created_at > CURRENT_TIMESTAMP - INTERVAL '? DAYS'",
        "select",
        ("product",),
        False,
    ),
    Case(  # a CTE is not a table; SELECT * over it is still a SELECT *
        "WITH ranked AS (SELECT user_id, total, row_number() OVER (PARTITION BY user_id ORDER BY total DESC) AS rn FROM shop_order) SELECT * FROM ranked WHERE rn <= 3",
        None,
        False,
        "WITH ranked AS (SELECT user_id, total, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY total DESC) AS rn FROM shop_order) SELECT * FROM ranked WHERE rn <= ?",
        "select",
        ("shop_order",),
        True,
    ),
    Case(  # UPDATE ... FROM touches both tables
        "UPDATE shop_order SET status = 'shipped' FROM app_user WHERE shop_order.user_id = app_user.id AND app_user.email = 'a@b.c'",
        "UPDATE shop_order SET status = $1 FROM app_user WHERE shop_order.user_id = app_user.id AND app_user.email = $2",
        True,
        "UPDATE shop_order SET status = ? FROM app_user WHERE shop_order.user_id = app_user.id AND app_user.email = ?",
        "update",
        ("shop_order", "app_user"),
        False,
    ),
    Case(
        "DELETE FROM session WHERE expires_at < now() RETURNING id",
        None,
        False,
        "DELETE FROM session WHERE expires_at < CURRENT_TIMESTAMP RETURNING id",
        "delete",
        ("session",),
        False,
    ),
    Case(  # SELECT * next to a cast
        "SELECT *, created_at::date AS day FROM shop_order WHERE id = 5",
        "SELECT *, created_at::date AS day FROM shop_order WHERE id = $1",
        True,
        "SELECT *, CAST(created_at AS DATE) AS day FROM shop_order WHERE id = ?",
        "select",
        ("shop_order",),
        True,
    ),
    Case(  # COUNT(*) is not over-fetching
        "SELECT count(*) FROM app_user",
        None,
        False,
        "SELECT COUNT(*) FROM app_user",
        "select",
        ("app_user",),
        False,
    ),
]

POSTGRES_SCHEMA = """
CREATE TABLE "User" (id int PRIMARY KEY, email text);
CREATE TABLE "Post" (id int, title text, "authorId" int, published boolean, "createdAt" timestamptz);
CREATE TABLE shop_order (id serial PRIMARY KEY, user_id int, total numeric, status text,
                         created_at timestamptz DEFAULT now());
CREATE TABLE product (id serial PRIMARY KEY, sku text UNIQUE, name text, stock int, attrs jsonb,
                      created_at timestamptz DEFAULT now());
CREATE TABLE app_user (id int PRIMARY KEY, email text, name text, note text);
CREATE TABLE session (id int, expires_at timestamptz);
"""

MARIADB = [
    Case(  # backticks and LIMIT offset, count
        "SELECT `u`.`id`, `u`.`email` FROM `app_user` AS `u` WHERE `u`.`id` IN (1, 2, 3) LIMIT 20, 10",
        "SELECT `u`.`id`, `u`.`email` FROM `app_user` AS `u` WHERE `u`.`id` IN (?, ?, ?) LIMIT ?, ?",
        True,
        "SELECT `u`.`id`, `u`.`email` FROM `app_user` AS `u` WHERE `u`.`id` IN (?) LIMIT ? OFFSET ?",
        "select",
        ("app_user",),
        False,
    ),
    Case(
        "INSERT INTO `product` (`sku`, `name`, `stock`) VALUES ('A-1', 'Pen', 10), ('A-2', 'Ink', 5) ON DUPLICATE KEY UPDATE `stock` = `stock` + VALUES(`stock`)",
        "INSERT INTO `product` (`sku`, `name`, `stock`) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE `stock` = `stock` + VALUES(`stock`)",
        True,
        "INSERT INTO `product` (`sku`, `name`, `stock`) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE `stock` = `stock` + VALUES(`stock`)",
        "insert",
        ("product",),
        False,
    ),
    Case(
        "INSERT IGNORE INTO `tag` (`name`) VALUES ('sale')",
        "INSERT IGNORE INTO `tag` (`name`) VALUES (?)",
        True,
        "INSERT IGNORE INTO `tag` (`name`) VALUES (?)",
        "insert",
        ("tag",),
        False,
    ),
    Case(  # a multi-table UPDATE
        "UPDATE `shop_order` o JOIN `app_user` u ON u.id = o.user_id SET o.status = 'shipped' WHERE u.email = 'a@b.c'",
        "UPDATE `shop_order` o JOIN `app_user` u ON u.id = o.user_id SET o.status = ? WHERE u.email = ?",
        True,
        "UPDATE `shop_order` AS o JOIN `app_user` AS u ON u.id = o.user_id SET o.status = ? WHERE u.email = ?",
        "update",
        ("shop_order", "app_user"),
        False,
    ),
    Case(  # sqlglot does not read REPLACE: the pattern fingerprint takes over
        "REPLACE INTO `tag` (`id`, `name`) VALUES (1, 'new')",
        "REPLACE INTO `tag` (`id`, `name`) VALUES (?, ?)",
        True,
        "REPLACE INTO `tag` (`id`, `name`) VALUES (?, ?)",
        "replace",
        ("tag",),
        False,
    ),
    Case(
        "SELECT * FROM `shop_order` WHERE `created_at` >= NOW() - INTERVAL 7 DAY ORDER BY `id` DESC",
        None,
        False,
        "SELECT * FROM `shop_order` WHERE `created_at` >= NOW() - INTERVAL (?) DAY ORDER BY `id` DESC",
        "select",
        ("shop_order",),
        True,
    ),
    Case(  # double quotes are strings in MariaDB; a backslash escapes a quote
        "SELECT id FROM app_user WHERE name = \"bob\" AND note LIKE 'it\\'s%'",
        "SELECT id FROM app_user WHERE name = ? AND note LIKE ?",
        True,
        "SELECT id FROM app_user WHERE name = ? AND note LIKE ?",
        "select",
        ("app_user",),
        False,
    ),
]

MARIADB_SCHEMA = """
CREATE TABLE app_user (id INT PRIMARY KEY, email VARCHAR(100), name VARCHAR(100), note TEXT);
CREATE TABLE product (id INT AUTO_INCREMENT PRIMARY KEY, sku VARCHAR(20) UNIQUE,
                      name VARCHAR(100), stock INT);
CREATE TABLE tag (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) UNIQUE);
CREATE TABLE shop_order (id INT AUTO_INCREMENT PRIMARY KEY, user_id INT, status VARCHAR(20),
                         created_at DATETIME DEFAULT NOW());
"""


def _ids(cases: list[Case]) -> list[str]:
    return [f"{c.statement_type}-{i}" for i, c in enumerate(cases)]


@pytest.mark.parametrize("case", POSTGRES, ids=_ids(POSTGRES))
def test_postgres_fingerprints(case: Case) -> None:
    _check(case, "postgres")


@pytest.mark.parametrize("case", MARIADB, ids=_ids(MARIADB))
def test_mariadb_fingerprints(case: Case) -> None:
    _check(case, dialect_of("mariadb"))


def _check(case: Case, dialect: str | None) -> None:
    info = analyze(case.literal, dialect)
    assert info.fingerprint == case.fingerprint
    assert (info.statement_type, info.tables, info.select_star) == (
        case.statement_type,
        case.tables,
        case.select_star,
    )
    if case.parameterized is not None:
        assert analyze(case.parameterized, dialect).fingerprint == case.fingerprint


def test_values_and_list_lengths_do_not_change_the_fingerprint() -> None:
    fingerprints = {
        analyze(
            f"select * from users where id in ({', '.join(map(str, range(n)))}) and name = '{n}'"
        ).fingerprint
        for n in range(1, 30)
    }
    assert fingerprints == {"SELECT * FROM users WHERE id IN (?) AND name = ?"}
    # ... but the structure does
    assert (
        analyze("SELECT * FROM users WHERE id = 1").fingerprint
        != analyze("SELECT * FROM users WHERE email = 'x'").fingerprint
    )
    assert analyze("SELECT a FROM t").fingerprint != analyze('SELECT "a" FROM "t"').fingerprint


def test_unparsable_sql_never_raises() -> None:
    for text in [
        "this is not sql ) at all",
        "SELECT * FROM",
        "SELECT 'unterminated",
        "",
        "   ",
        "((((((((((((((((((((((((((((((((((((((((((((((((((((((((",
        "SELECT " + "(" * 5000 + "1" + ")" * 5000,
        "\x00\x01 drop",
    ]:
        info = analyze(text)
        assert isinstance(info.fingerprint, str) and isinstance(info.tables, tuple)
    broken = analyze("SELECT id FROM orders WHERE total > 100 AND AND status = 'x'")
    assert broken.fingerprint == "SELECT id FROM orders WHERE total > ? AND AND status = ?"
    assert (broken.statement_type, broken.tables) == ("select", ("orders",))


def test_long_bulk_inserts_use_the_pattern_fingerprint() -> None:
    rows = ", ".join(f"({i}, 'name {i}', {i * 1.5})" for i in range(5_000))
    info = analyze(f"INSERT INTO items (id, name, price) VALUES {rows}")
    assert info.fingerprint == "INSERT INTO items (id, name, price) VALUES (?, ?, ?)"
    assert (info.statement_type, info.tables, info.parsed) == ("insert", ("items",), False)


def test_commands_and_transactions() -> None:
    assert analyze("BEGIN").statement_type == "begin"
    assert analyze("COMMIT").statement_type == "commit"
    vacuum = analyze("VACUUM ANALYZE users", "postgres")
    assert (vacuum.fingerprint, vacuum.statement_type) == ("VACUUM ANALYZE users", "vacuum")
    create = analyze("CREATE INDEX idx_orders_user ON orders (user_id)", "postgres")
    assert (create.statement_type, create.tables) == ("create", ("orders",))


def test_the_lexer_shortcut_finds_the_same_spans() -> None:
    # _LEXEMES tests a lexeme's first character before trying its alternatives: on any text it
    # must find the same spans, of the same kinds, as the alternatives alone.
    slow = re.compile(_LEXEME_KINDS, re.VERBOSE | re.DOTALL)
    pieces = [*"abEeNnBbXx_ 019.$-/*'\"`[]%():?@,\n\\s", "--", "/*", "*/", "$$", "$a$", "''"]
    pieces += ["%(x)s", "%s", "1e5", "1.5", ".5", ":name", "::int", "E'", "x'", "N'", "IN (?, ?)"]
    rng = random.Random(11)
    texts = [case.literal for case in POSTGRES] + [
        "".join(rng.choice(pieces) for _ in range(rng.randrange(40))) for _ in range(20_000)
    ]
    for text in texts:
        fast_spans = [(m.span(), m.lastgroup) for m in _LEXEMES.finditer(text)]
        assert fast_spans == [(m.span(), m.lastgroup) for m in slow.finditer(text)], text


def test_pattern_key_keeps_identifiers_and_drops_comments() -> None:
    key = pattern_key("""SELECT "col 1", t1.x -- why
        FROM t1 /* hint */ WHERE a IN (1, 2,3) AND b = 'it''s' AND c = $1 AND d::text = :name""")
    assert key == 'SELECT "col 1", t1.x FROM t1 WHERE a IN (?) AND b = ? AND c = ? AND d::text = ?'


def test_dialect_names() -> None:
    assert dialect_of("postgresql://localhost/app") == "postgres"
    assert dialect_of("PostgreSQL") == "postgres"
    assert dialect_of("mariadb") == "mysql"
    assert dialect_of("mysql+pymysql") == "mysql"
    assert dialect_of("shop") is None and dialect_of(None) is None


# ---- PostgREST ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "sql", "tables"),
    [
        (
            "GET",
            "/rest/v1/users",
            "select=id,name&age=gte.18&order=name.asc&limit=10",
            None,
            "SELECT id, name FROM users WHERE age >= 18 ORDER BY name ASC LIMIT 10",
            ("users",),
        ),
        (
            "GET",
            "/rest/v1/users",
            "select=*&name=eq.Alice%20Smith&role=neq.admin&score=lt.5&level=lte.3&rank=gt.1",
            None,
            "SELECT * FROM users WHERE name = 'Alice Smith' AND role <> 'admin' AND score < 5 "
            "AND level <= 3 AND rank > 1",
            ("users",),
        ),
        (
            "GET",
            "/rest/v1/users",
            "email=like.*%40example.com&name=ilike.al*&deleted_at=is.null&id=in.(1,2,3)"
            "&status=not.eq.banned&tags=cs.{a,b}&roles=cd.{x}",
            None,
            "SELECT * FROM users WHERE email LIKE '%@example.com' AND name ILIKE 'al%' "
            "AND deleted_at IS NULL AND id IN (1, 2, 3) AND NOT status = 'banned' "
            "AND tags @> '{a,b}' AND roles <@ '{x}'",
            ("users",),
        ),
        (
            "GET",
            "/rest/v1/people",
            "select=name&or=(age.lt.18,and(city.eq.Paris,active.is.true))&order=age.desc.nullslast,name",
            None,
            "SELECT name FROM people WHERE (age < 18 OR (city = 'Paris' AND active IS TRUE)) "
            "ORDER BY age DESC NULLS LAST, name",
            ("people",),
        ),
        (
            "GET",
            "/rest/v1/users",
            "select=id,full_name:name,orders(id,total),posts!author_id(count())&limit=5&offset=10",
            None,
            "SELECT id, name AS full_name, (SELECT id, total FROM orders) AS orders, "
            "(SELECT count(*) AS count FROM posts) AS posts FROM users LIMIT 5 OFFSET 10",
            ("users", "orders", "posts"),
        ),
        (
            "POST",
            "/rest/v1/todos",
            "",
            '{"task": "buy milk", "done": false, "meta": {"p": 1}}',
            "INSERT INTO todos (task, done, meta) VALUES ('buy milk', FALSE, '{\"p\":1}')",
            ("todos",),
        ),
        (
            "PATCH",
            "/rest/v1/todos",
            "id=eq.5",
            '{"done": true}',
            "UPDATE todos SET done = TRUE WHERE id = 5",
            ("todos",),
        ),
        (
            "DELETE",
            "/rest/v1/todos",
            "id=eq.5&owner=eq.o'brien",
            None,
            "DELETE FROM todos WHERE id = 5 AND owner = 'o''brien'",
            ("todos",),
        ),
        (
            "POST",
            "/rest/v1/rpc/add_them",
            "",
            '{"a": 1, "b": 2}',
            "SELECT * FROM add_them(a => 1, b => 2)",
            (),
        ),
    ],
)
def test_postgrest_to_sql(
    method: str, path: str, query: str, body: str | None, sql: str, tables: tuple[str, ...]
) -> None:
    rendered = postgrest_sql(method, path, query, body)
    assert rendered is not None
    assert rendered.sql == sql
    assert rendered.tables == tables


def test_postgrest_upserts_and_preferences() -> None:
    rendered = postgrest_sql(
        "POST",
        "/rest/v1/items",
        "on_conflict=sku",
        '[{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]',
        {"prefer": "resolution=merge-duplicates,return=representation"},
    )
    assert rendered is not None
    assert rendered.sql == (
        "INSERT INTO items (sku, qty) VALUES ('a', 1) /* and 1 more rows */ "
        "ON CONFLICT (sku) DO UPDATE SET sku = EXCLUDED.sku, qty = EXCLUDED.qty RETURNING *"
    )
    profiled = postgrest_sql("GET", "/rest/v1/items", "", None, {"accept-profile": "shop"})
    assert profiled is not None and profiled.sql == "SELECT * FROM shop.items"


def test_not_postgrest() -> None:
    assert postgrest_sql("GET", "/api/users", "select=id") is None
    assert postgrest_sql("GET", "/rest/v1/", "") is None
    assert postgrest_sql("OPTIONS", "/rest/v1/users", "") is None


# ---- the real servers -------------------------------------------------------------------------


def _service_or_skip(ok: bool, what: str) -> None:
    if not ok:
        if services_required():
            pytest.fail(f"RSPROXY_REQUIRE_SERVICES=1 but {what}")
        pytest.skip(f"SERVICE TESTS SKIPPED: {what}")


def _run(args: list[str], script: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, input=script, capture_output=True, text=True, timeout=60)


@pytest.fixture
def postgres_db() -> Iterator[str]:
    reachable = shutil.which("psql") is not None and (
        _run(["psql", "-d", "postgres", "-Atc", "select 1"]).returncode == 0
    )
    _service_or_skip(reachable, "PostgreSQL is not reachable with psql (PGHOST, PGUSER, ...)")
    name = f"rsproxy_sql_{uuid.uuid4().hex[:12]}"
    created = _run(["psql", "-d", "postgres", "-c", f"CREATE DATABASE {name}"])
    assert created.returncode == 0, created.stderr
    try:
        yield name
    finally:
        _run(["psql", "-d", "postgres", "-c", f"DROP DATABASE IF EXISTS {name}"])


@pytest.fixture
def mariadb_db() -> Iterator[str]:
    client = shutil.which("mariadb") or shutil.which("mysql")
    reachable = client is not None and _run([client, "-e", "SELECT 1"]).returncode == 0
    _service_or_skip(reachable, "MariaDB is not reachable with the mariadb/mysql client")
    assert client is not None
    name = f"rsproxy_sql_{uuid.uuid4().hex[:12]}"
    created = _run([client, "-e", f"CREATE DATABASE {name}"])
    assert created.returncode == 0, created.stderr
    try:
        yield name
    finally:
        _run([client, "-e", f"DROP DATABASE IF EXISTS {name}"])


@pytest.mark.services
def test_postgres_corpus_runs_on_postgresql(postgres_db: str) -> None:
    lines = [POSTGRES_SCHEMA]
    for i, case in enumerate(POSTGRES):
        lines.append(case.literal + ";")
        if case.parameterized and case.server_parameters:
            lines.append(f"PREPARE corpus_{i} AS {case.parameterized};")
    result = _run(
        ["psql", "-d", postgres_db, "-v", "ON_ERROR_STOP=1", "-q", "-f", "-"], "\n".join(lines)
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.services
def test_mariadb_corpus_runs_on_mariadb(mariadb_db: str) -> None:
    client = shutil.which("mariadb") or shutil.which("mysql")
    assert client is not None
    lines = [MARIADB_SCHEMA]
    for i, case in enumerate(MARIADB):
        lines.append(case.literal + ";")
        if case.parameterized and case.server_parameters:
            quoted = case.parameterized.replace("\\", "\\\\").replace("'", "\\'")
            lines.append(f"PREPARE corpus_{i} FROM '{quoted}';")
    result = _run([client, mariadb_db], "\n".join(lines))
    assert result.returncode == 0, result.stderr
