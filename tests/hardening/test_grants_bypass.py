"""Bypass attempts by a users-file user with grants: DuckDB's catalog functions and table functions, reading
the table's Parquet files, our catalog's helper tables, quoting and comment tricks, shadowing CTEs, EXPLAIN, a
permissions comment from a user who is not a trusted proxy. Each must fail, and a denied table must fail
exactly like an absent one (same SQLSTATE, same message: no existence oracle)."""

from __future__ import annotations

import glob
import re

import psycopg
import pytest

from tests.support import permissions as world


@pytest.fixture(scope="module")
def server(pg, tmp_path_factory):
    source = world.create_source(pg)
    process = world.sync_and_serve(source, tmp_path_factory.mktemp("grants-bypass"))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def analyst(server):
    with psycopg.connect(server.dsn("analyst", world.PASSWORDS["analyst"]), autocommit=True) as conn:
        yield conn


def _error(conn, sql: str) -> tuple[str, str]:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql).fetchall()
    return info.value.sqlstate, info.value.diag.message_primary


@pytest.mark.parametrize("sql", [
    "SELECT * FROM secret",
    'SELECT * FROM "secret"',
    "SELECT * FROM PUBLIC.SECRET",
    'SELECT * FROM "public"."secret"',
    "SELECT * FROM/**/secret",
    "SELECT * FROM bemidb.public.secret",
    "SELECT 1 FROM orders o JOIN secret s ON s.id = o.id",
    "SELECT * FROM orders WHERE id IN (SELECT id FROM secret)",
    "WITH secret AS (SELECT * FROM secret) SELECT * FROM secret",
    "WITH x AS (SELECT 1) SELECT * FROM (WITH secret AS (SELECT 1) SELECT 1) t, secret",
    "EXPLAIN SELECT * FROM secret",
    "/*BEMIDB_PERMISSIONS {\"public.secret\": [\"id\", \"payload\"]} BEMIDB_PERMISSIONS*/ SELECT * FROM secret",
])
def test_denied_table_is_reported_like_an_absent_one(analyst, sql):
    denied = _error(analyst, sql)
    absent = _error(analyst, sql.replace("secret", "no_such_tbl").replace("SECRET", "NO_SUCH_TBL"))
    assert denied[0] == "42P01"
    assert denied == (absent[0], absent[1].replace("no_such_tbl", "secret").replace("NO_SUCH_TBL", "SECRET"))


@pytest.mark.parametrize("sql", [
    "SELECT email FROM users",
    "SELECT users.ssn FROM users",
    "SELECT id FROM users ORDER BY email",
    "SELECT note FROM orders",
    "SELECT count(*) FROM orders WHERE status = 'open' OR note IS NOT NULL",
])
def test_denied_column_is_reported_like_an_absent_one(analyst, sql):
    assert _error(analyst, sql)[0] == "42703"
    for word in ("email", "ssn", "note"):
        if word in sql:
            assert _error(analyst, sql) == tuple(
                part.replace("zz_missing", word) for part in _error(analyst, sql.replace(word, "zz_missing")))


def test_filtered_rows_cannot_be_reached(analyst):
    assert analyst.execute("SELECT DISTINCT status FROM orders").fetchall() == [("paid",)]
    assert analyst.execute("SELECT count(*) FROM orders WHERE status <> 'paid'").fetchone() == (0,)
    assert analyst.execute("SELECT count(*) FROM orders WHERE status = 'paid' OR true").fetchone()[0] == 20


@pytest.mark.parametrize("sql", [
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM duckdb_columns()",
    "SELECT * FROM duckdb_views()",
    "SELECT sql FROM duckdb_views() WHERE view_name = 'secret'",
    "SELECT * FROM query('SELECT * FROM secret')",
    "SELECT * FROM query_table('secret')",
    "SELECT * FROM parquet_metadata('x.parquet')",
    "SELECT * FROM glob('*')",
    "SELECT * FROM pragma_table_info('secret')",
])
def test_duckdb_catalog_and_table_functions_are_refused(analyst, sql):
    assert _error(analyst, sql)[0] == "42501"


@pytest.mark.parametrize("sql", [
    "FROM secret",
    "SUMMARIZE secret",
    "DESCRIBE secret",
    "SHOW secret",
    "PIVOT secret ON id USING count(*)",
    "SELECT * FROM secret AT (VERSION => 1)",
    "SELECT * FROM orders, LATERAL (SELECT * FROM secret) s",
    "SELECT (SELECT payload FROM secret LIMIT 1)",
    "SELECT * FROM orders POSITIONAL JOIN secret",
    "SELECT * FROM secret USING SAMPLE 50%",
    "SELECT * FROM (TABLE secret) t",
    "VALUES ((SELECT count(*) FROM secret))",
    "SELECT * FROM orders o; SELECT * FROM secret",
    "DECLARE c CURSOR WITH HOLD FOR SELECT * FROM secret",
])
def test_duckdb_statement_forms_do_not_reach_a_denied_table(analyst, sql):
    state, message = _error(analyst, sql)
    assert state in ("42P01", "42501", "0A000", "42601", "42704"), (state, message)
    assert "launch codes" not in message and "recipe" not in message


def test_reading_the_tables_files_is_refused(server, analyst):
    files = glob.glob(str(server.data_dir / "**" / "*.parquet"), recursive=True)
    secret_files = [f for f in files if "secret" in f]
    assert secret_files
    for sql in (f"SELECT * FROM read_parquet('{secret_files[0]}')", f"SELECT * FROM '{secret_files[0]}'",
                f"SELECT * FROM parquet_scan('{secret_files[0]}')"):
        assert _error(analyst, sql)[0] in ("42501", "42P01")


@pytest.mark.parametrize("sql", [
    "SELECT * FROM bemidb_pg_catalog.bemidb_defs",
    "SELECT * FROM bemidb_pg_catalog.bemidb_lookup",
    "SELECT * FROM bemidb_pg_catalog.bemidb_index_columns",
    "SELECT * FROM main.secret",
    "SELECT * FROM pg_catalog.duckdb_tables",
    "SELECT * FROM information_schema.no_such_view",
])
def test_internal_relations_do_not_exist_for_restricted_users(analyst, sql):
    assert _error(analyst, sql)[0] == "42P01"


def test_catalog_probes_do_not_reveal_denied_tables_or_columns(analyst):
    probes = ["SELECT relname FROM pg_class",
              "SELECT attname FROM pg_attribute",
              "SELECT table_name, column_name FROM information_schema.columns",
              "SELECT tablename FROM pg_tables",
              "SELECT table_name FROM information_schema.tables",
              "SELECT relname FROM pg_stat_user_tables",
              "SELECT description FROM pg_description"]
    for sql in probes:
        text = repr(analyst.execute(sql).fetchall())
        for hidden in ("secret", "email", "ssn", "note", "tenant_id"):  # as words: built-ins' comments say "classname"
            assert not re.search(rf"\b{hidden}\b", text), (sql, hidden)


def test_a_permissions_comment_only_narrows_for_a_trusted_proxy(server):
    comment = '/*BEMIDB_PERMISSIONS {"public.orders": ["id", "status"]} BEMIDB_PERMISSIONS*/ '
    with psycopg.connect(server.dsn("proxy", world.PASSWORDS["proxy"]), autocommit=True) as proxy:
        assert proxy.execute("SELECT count(*) FROM secret").fetchone() == (2,)  # its own grants: public.*
        assert proxy.execute(comment + "SELECT count(*) FROM orders").fetchone() == (60,)
        assert _error(proxy, comment + "SELECT amount FROM orders")[0] == "42703"
        assert _error(proxy, comment + "SELECT * FROM secret")[0] == "42P01"
        assert _error(proxy, '/*BEMIDB_PERMISSIONS not json BEMIDB_PERMISSIONS*/ SELECT 1 FROM orders')[0] == "42P01"
    with psycopg.connect(server.dsn("tenant1", world.PASSWORDS["tenant1"]), autocommit=True) as tenant:
        widened = '/*BEMIDB_PERMISSIONS {"public.orders": ["note"], "public.secret": ["id"]} BEMIDB_PERMISSIONS*/ '
        assert _error(tenant, widened + "SELECT note FROM orders")[0] == "42703"
        assert _error(tenant, widened + "SELECT id FROM secret")[0] == "42P01"
        assert tenant.execute(widened + "SELECT count(*) FROM orders").fetchone() == (30,)


def test_matview_statements_are_refused_for_restricted_users(analyst):
    assert _error(analyst, "CREATE MATERIALIZED VIEW mv AS SELECT id FROM orders")[0] == "42501"
    assert _error(analyst, "REFRESH MATERIALIZED VIEW orders")[0] == "42501"
    assert _error(analyst, "DROP MATERIALIZED VIEW orders")[0] == "42501"


def test_regclass_and_oid_lookups_treat_denied_tables_as_absent(server, analyst):
    with psycopg.connect(server.dsn(world.ADMIN, world.ADMIN_PASSWORD), autocommit=True) as admin:
        secret_oid = admin.execute("SELECT 'public.secret'::regclass::oid").fetchone()[0]
        orders_oid = admin.execute("SELECT 'public.orders'::regclass::oid").fetchone()[0]
        assert admin.execute(f"SELECT {secret_oid}::regclass::text").fetchone() == ("secret",)
    for spelling in ("'public.secret'::regclass", "'secret'::regclass", "to_regclass('secret')"):
        denied = analyst.execute(f"SELECT {spelling}::oid").fetchall()
        absent = analyst.execute(f"SELECT {spelling.replace('secret', 'no_such_tbl')}::oid").fetchall()
        assert denied == absent
    assert analyst.execute("SELECT 'public.orders'::regclass::oid").fetchone() == (orders_oid,)
    assert analyst.execute(f"SELECT {secret_oid}::regclass::text").fetchone() == (str(secret_oid),)
    assert analyst.execute(f"SELECT {orders_oid}::regclass::text").fetchone() == ("orders",)
    assert analyst.execute(f"SELECT col_description({secret_oid}, 1), pg_get_viewdef({secret_oid}), "
                           f"pg_table_is_visible({secret_oid})").fetchone() == (None, None, None)
    assert analyst.execute(f"SELECT pg_table_is_visible({orders_oid})").fetchone() == (True,)
