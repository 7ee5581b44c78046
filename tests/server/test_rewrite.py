"""The rewrite: Postgres SQL in, DuckDB SQL out. Each query runs on the real Postgres and, translated, on DuckDB
with the pg_catalog emulation installed; the results must be equal."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import psycopg
import pytest
from sqlglot.errors import ParseError

from bemidb.server.catalog import pg_catalog
from bemidb.server.catalog.oids import relation_oid
from bemidb.server.errors import PgError
from bemidb.server.sql import plans, rewrite
from bemidb.server.sql.session_settings import SessionSettings
from bemidb.storage.catalog import ColumnInfo, TableInfo

TABLE_DDL = """CREATE TABLE IF NOT EXISTS t (id bigint NOT NULL, name varchar(20), price numeric(10,2),
               tags text[], seen_at timestamp(3) with time zone, flag boolean NOT NULL, doc jsonb, day date,
               code character(4), ratio double precision)"""
TABLE_INFO = TableInfo("public", "t", "loc", (
    ColumnInfo("id", "bigint", False), ColumnInfo("name", "character varying(20)", True),
    ColumnInfo("price", "numeric(10,2)", True), ColumnInfo("tags", "text[]", True),
    ColumnInfo("seen_at", "timestamp(3) with time zone", True), ColumnInfo("flag", "boolean", False),
    ColumnInfo("doc", "jsonb", True), ColumnInfo("day", "date", True), ColumnInfo("code", "character(4)", True),
    ColumnInfo("ratio", "double precision", True)), "postgres")


@pytest.fixture(scope="module")
def pg_conn(pg):
    url = pg.create_database("compat_rewrite")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(TABLE_DDL)
        yield conn


@pytest.fixture(scope="module")
def duck():
    con = duckdb.connect()
    pg_catalog.install(con, "bemidb", "postgres")
    pg_catalog.refresh(con, [TABLE_INFO])
    con.execute("CREATE SCHEMA public")
    con.execute("CREATE TABLE public.t (id BIGINT, name VARCHAR, price DECIMAL(10,2), tags VARCHAR[], "
                "seen_at TIMESTAMPTZ, flag BOOLEAN, doc JSON, day DATE, code VARCHAR, ratio DOUBLE)")
    cursor = con.cursor()
    SessionSettings(user="postgres").apply(cursor)
    return cursor


def _normal(value):
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    return value


def _both(pg_conn, duck, sql: str):
    expected = [tuple(_normal(v) for v in row) for row in pg_conn.execute(sql).fetchall()]
    translated = rewrite.translate(sql)
    assert isinstance(translated, plans.Query)
    got = [tuple(_normal(v) for v in row) for row in duck.execute(translated.sql).fetchall()]
    return got, expected


SAME_RESULT = [
    "SELECT current_schema(), current_schema",
    "SELECT current_schemas(false)",
    "SELECT quote_ident('abc'), quote_ident('Abc'), quote_ident('a b'), pg_catalog.quote_ident('x\"y')",
    "SELECT pg_size_pretty(123456789::bigint), pg_size_pretty(10240::bigint), pg_size_pretty(1023::bigint)",
    """SELECT '{"a":{"b":2}}'::jsonb -> 'a' ->> 'b', '{"a":1}'::jsonb ? 'a', '{"a":1}'::jsonb ? 'z'""",
    """SELECT '{"a":1,"b":2}'::jsonb @> '{"a":1}', '{"a":{"b":[1,2]}}'::jsonb #>> '{a,b,1}'""",
    """SELECT jsonb_typeof('{"a":1}'), jsonb_typeof('[1]'), jsonb_typeof('"s"'), jsonb_array_length('[1,2,3]')""",
    """SELECT jsonb_extract_path_text('{"a":{"b":"x"}}', 'a', 'b')""",
    """SELECT jsonb_array_length('{"a":[1,2]}'::jsonb -> 'a'), jsonb_typeof('{"b":{}}'::jsonb -> 'b')""",
    """SELECT k FROM jsonb_object_keys('{"a":1,"b":2}'::jsonb) AS k ORDER BY k""",
    """SELECT e::text FROM jsonb_array_elements('[1,2]'::jsonb) AS e ORDER BY 1""",
    "SELECT s[i] FROM generate_series(1, 2) AS i, string_to_array('x,y', ',') s ORDER BY 1",
    "SELECT 1 = ANY('{1,2}'::int[]), 3 = ANY('{1,2}'::int[]), 'a' = ANY('{a,b}'::text[])",
    "SELECT 'abc' ~ 'b', 'abc' ~* 'B', 'abc' !~ 'z', 'abc' ~ '^b'",
    "SELECT 'abc' SIMILAR TO 'a%', 'abc' SIMILAR TO '(a|b)%', 'abc' SIMILAR TO 'b%', 'abc' ILIKE 'A%'",
    "SELECT 'abc' OPERATOR(pg_catalog.~) '^(abc)$' COLLATE pg_catalog.default",
    "SELECT array_to_string(ARRAY['a','b'], ','), pg_catalog.array_upper(ARRAY[1,2,3], 1), "
    "array_length(ARRAY[1,2,3], 1)",
    "SELECT string_agg(x, ',' ORDER BY x) FROM (VALUES ('b'), ('a')) v(x)",
    "SELECT g FROM generate_series(1, 3) g ORDER BY g",
    "SELECT date_trunc('month', timestamp '2024-05-17 10:00:00')",
    "SELECT EXTRACT(year FROM date '2024-05-17'), date_part('dow', date '2024-05-17')",
    "SELECT to_char(timestamp '2024-05-17 10:11:12', 'YYYY-MM-DD HH24:MI:SS')",
    "SELECT to_char(timestamp '2024-05-07 15:01:02.345', 'Day, DD Month YYYY'), "
    "to_char(timestamp '2024-05-07 15:01:02.345', 'FMDay FMDD Mon YY HH12:MI am'), "
    "to_char(timestamp '2024-05-07 15:01:02.345', 'DY DD-MON-YYYY \"at\" HH:MI:SS.MS PM'), "
    "to_char(date '2024-05-07', 'YYYY-MM-DD')",
    "SELECT 'pg_class'::regclass::oid, 'pg_catalog.pg_type'::regclass::oid, 'int4'::regtype::oid",
    "SELECT 23::regtype::text, 'pg_class'::regclass::text",
    "SELECT format_type(1043, 24), format_type(1700, 655366), format_type(1184, 3), format_type(1009, -1), "
    "format_type(1042, 8), pg_catalog.format_type(23, NULL)",
    "SELECT has_table_privilege('pg_class', 'SELECT'), has_schema_privilege('public', 'USAGE')",
    "SELECT pg_encoding_to_char(6), pg_is_in_recovery()",
    "SELECT current_setting('DateStyle'), current_setting('nope.x', true), current_setting('search_path')",
    "SELECT typname, typlen, typarray, typelem, typcategory, typtype FROM pg_catalog.pg_type "
    "WHERE typname IN ('int4', 'text', '_int4', 'numeric', 'timestamptz', 'bool', 'jsonb') ORDER BY 1",
    "SELECT nspname FROM pg_namespace WHERE nspname IN ('pg_catalog', 'public', 'information_schema') "
    "ORDER BY 1",
    "SELECT oid FROM pg_namespace WHERE nspname IN ('pg_catalog', 'public') ORDER BY 1",
    "SELECT amname FROM pg_am WHERE oid IN (2, 403) ORDER BY 1",
    # A user table described the same way: attributes, information_schema, pg_tables.
    "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attnum, a.attlen, "
    "a.attndims FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid WHERE c.relname = 't' "
    "AND a.attnum > 0 ORDER BY a.attnum",
    "SELECT column_name, data_type, is_nullable, character_maximum_length, numeric_precision, numeric_scale, "
    "datetime_precision, udt_name, ordinal_position FROM information_schema.columns "
    "WHERE table_schema = 'public' AND table_name = 't' ORDER BY ordinal_position",
    "SELECT table_schema, table_name, table_type FROM information_schema.tables WHERE table_name = 't'",
    "SELECT schemaname, tablename FROM pg_tables WHERE tablename = 't'",
    "SELECT c.relname, c.relkind, c.relnatts FROM pg_catalog.pg_class c WHERE c.oid = 'public.t'::regclass",
    "SELECT attname FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum = 2",
    "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = 't' AND pg_catalog.pg_table_is_visible(c.oid)",
    "SELECT t.typname FROM pg_type t JOIN pg_class c ON c.reltype = t.oid WHERE c.relname = 't'",
    "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'public'",
    "SELECT CASE WHEN 1 = 1 THEN 'a' END, coalesce(NULL, 2), nullif(1, 1), greatest(1, 3), left('abc', 2)",
    "WITH pg_class AS (SELECT 1 AS relname) SELECT relname FROM pg_class",
    "SELECT x FROM (SELECT 'k'::name AS x) s",
]


@pytest.mark.parametrize("sql", SAME_RESULT)
def test_same_result_as_postgres(pg_conn, duck, sql):
    got, expected = _both(pg_conn, duck, sql)
    assert got == expected


def test_version_says_bemidb_and_postgres(duck):
    version = duck.execute(rewrite.translate("SELECT version()").sql).fetchone()[0]
    assert version.startswith("PostgreSQL 16.") and "bemidb" in version


def test_regclass_of_user_table_is_its_stable_oid(duck):
    oid = duck.execute(rewrite.translate("SELECT 'public.t'::regclass::oid").sql).fetchone()[0]
    assert oid == relation_oid("public", "t")
    name = duck.execute(rewrite.translate(f"SELECT {oid}::regclass").sql).fetchone()[0]
    assert name == "t"


def test_internal_schemas_never_show(duck):
    names = {r[0] for r in duck.execute(rewrite.translate("SELECT nspname FROM pg_namespace").sql).fetchall()}
    assert names == {"pg_catalog", "public", "information_schema", "pg_toast"}
    schemata = {r[0] for r in duck.execute(rewrite.translate(
        "SELECT schema_name FROM information_schema.schemata").sql).fetchall()}
    assert not any(s.startswith("bemidb") or s in ("main", "temp", "system") for s in schemata)


@pytest.mark.parametrize(("sql", "expected"), [
    ("SET search_path TO a, public", plans.SetSetting("search_path", "a, public")),
    ("SET search_path = 'a'", plans.SetSetting("search_path", "a")),
    ("set TimeZone to 'Europe/Paris'", plans.SetSetting("TimeZone", "Europe/Paris")),
    ("SET TIME ZONE 'UTC'", plans.SetSetting("TimeZone", "UTC")),
    ("SET SESSION statement_timeout = 5000", plans.SetSetting("statement_timeout", "5000")),
    ("SET LOCAL x.y = 1", plans.SetSetting("x.y", "1")),
    ("SET datestyle = iso, mdy", plans.SetSetting("datestyle", "iso, mdy")),
    ("SET extra_float_digits TO DEFAULT", plans.SetSetting("extra_float_digits", None)),
    ("SET NAMES 'UTF8'", plans.SetSetting("client_encoding", "UTF8")),
    ("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED", plans.NoOp("SET")),
    ("SHOW TimeZone", plans.ShowSetting("TimeZone")),
    ("show ALL", plans.ShowSetting("all")),
    ("SHOW TRANSACTION ISOLATION LEVEL", plans.ShowSetting("transaction_isolation")),
    ("RESET search_path", plans.ResetSetting("search_path")),
    ("RESET ALL", plans.ResetSetting("all")),
    ("BEGIN", plans.Transaction("BEGIN")),
    ("BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY", plans.Transaction("BEGIN")),
    ("START TRANSACTION READ ONLY", plans.Transaction("START TRANSACTION")),
    ("COMMIT", plans.Transaction("COMMIT")),
    ("END", plans.Transaction("COMMIT")),
    ("ROLLBACK", plans.Transaction("ROLLBACK")),
    ("ROLLBACK TO SAVEPOINT a", plans.Transaction("ROLLBACK", to_savepoint=True)),
    ("SAVEPOINT a", plans.Transaction("SAVEPOINT")),
    ("RELEASE SAVEPOINT a", plans.Transaction("RELEASE")),
    ("DISCARD ALL", plans.NoOp("DISCARD ALL")),
    ("DEALLOCATE ALL", plans.Deallocate(None, "DEALLOCATE ALL")),
    ("DEALLOCATE s1", plans.Deallocate("s1")),
    ("LISTEN chan", plans.NoOp("LISTEN")),
    ("UNLISTEN *", plans.NoOp("UNLISTEN")),
    ("  -- just a comment\n", plans.Empty()),
])
def test_utility_statements(sql, expected):
    assert rewrite.translate(sql) == expected


@pytest.mark.parametrize(("sql", "sqlstate"), [
    ("INSERT INTO t VALUES (1)", "25006"),
    ("update t set id = 2", "25006"),
    ("DELETE FROM t", "25006"),
    ("CREATE TABLE x (a int)", "25006"),
    ("DROP TABLE t", "25006"),
    ("TRUNCATE t", "25006"),
    ("PREPARE p AS SELECT 1", "0A000"),
    ("INSTALL httpfs", "42501"),
    ("LOAD httpfs", "42501"),
    ("load '/tmp/evil.so'", "42501"),
    ("FORCE INSTALL iceberg", "42501"),
])
def test_refused_statements(sql, sqlstate):
    with pytest.raises(PgError) as error:
        rewrite.translate(sql)
    assert error.value.sqlstate == sqlstate


def test_pg_sleep_takes_fractional_seconds():
    """pg_sleep(0.25) must become a valid DuckDB call (sleep_ms wants whole milliseconds)."""
    import duckdb

    assert duckdb.connect().sql(rewrite.translate("SELECT pg_sleep(0.01)").sql).fetchall() == [(None,)]


def test_syntax_error_is_parse_error():
    with pytest.raises(ParseError):
        rewrite.translate("SELECT FROM WHERE (")


def test_matview_statements():
    create = rewrite.translate("CREATE MATERIALIZED VIEW IF NOT EXISTS s.v AS SELECT 1 AS a WITH NO DATA")
    assert (type(create), create.action, create.schema, create.name) == (plans.Matview, "create", "s", "v")
    assert create.flags == {"if_not_exists", "no_data"}
    assert create.definition == "SELECT 1 AS a"
    refresh = rewrite.translate('REFRESH MATERIALIZED VIEW "My"."View"')
    assert (refresh.action, refresh.schema, refresh.name) == ("refresh", "My", "View")
    drop = rewrite.translate("DROP MATERIALIZED VIEW IF EXISTS v")
    assert (drop.action, drop.schema, drop.name, drop.flags) == ("drop", None, "v", {"if_exists"})


def test_split_keeps_text_and_respects_quotes():
    sql = "SELECT ';' AS a; SELECT $$x;y$$; -- c;\n SELECT \"a;b\" FROM t /* ; */;;"
    assert rewrite.split(sql) == ["SELECT ';' AS a", "SELECT $$x;y$$", '-- c;\n SELECT "a;b" FROM t /* ; */']
    assert rewrite.split("-- only a comment") == []


def test_array_literal_and_time_values(pg_conn, duck):
    got, expected = _both(pg_conn, duck, "SELECT '{a,\"b c\",NULL}'::text[], '{1,2}'::int[]")
    assert got == expected == [(["a", "b c", None], [1, 2])]
    got, expected = _both(pg_conn, duck, "SELECT now() > timestamp '2020-01-01', clock_timestamp() IS NOT NULL")
    assert got == expected
    assert isinstance(dt.date.today(), dt.date)


def test_huge_statement_goes_to_duckdb_as_written(duck):
    values = ", ".join(str(i) for i in range(60_000))
    sql = f"SELECT count(*) FROM range(100000) r(x) WHERE x IN ({values})"
    assert len(sql) > rewrite.PASS_THROUGH_CHARS
    translated = rewrite.translate(sql)
    assert translated.sql == sql
    assert duck.execute(translated.sql).fetchone()[0] == 60_000


def test_simple_query_split_is_cached():
    """Clients repeat the same query texts; splitting runs the pure-Python lexer, so its result is cached."""
    from bemidb.server.protocol.session import split_statements as _split

    text = "SELECT 1; SELECT 'a;b'"
    first = _split(text)
    assert first == ("SELECT 1", "SELECT 'a;b'")
    assert _split(text) is first
