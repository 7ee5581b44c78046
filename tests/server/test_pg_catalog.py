"""The pg_catalog emulation through a real server: live tables (a table written by another process appears on
the next query, a dropped one disappears), OIDs stable across queries and restarts, internal schemas hidden."""

from __future__ import annotations

import time

import psycopg
import pyarrow as pa

from bemidb.server.catalog.oids import relation_oid
from bemidb.storage.writer import write_table
from tests.support.server import start_server


def _catalog(wh):
    return wh.catalog()


def _write(wh, schema: str, name: str, rows: int = 2) -> None:
    arrow_schema = pa.schema([pa.field("id", pa.int64(), nullable=False, metadata={b"pg_type": b"bigint"}),
                              pa.field("label", pa.string(), metadata={b"pg_type": b"character varying(40)"})])
    batch = pa.RecordBatch.from_pylist([{"id": i, "label": f"row {i}"} for i in range(rows)], arrow_schema)
    write_table(_catalog(wh), (schema, name), arrow_schema, [batch])


def _wait_for(conn, sql: str, expected, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        got = conn.execute(sql).fetchall()
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_live_tables_and_stable_oids(fresh_warehouse):
    wh = fresh_warehouse  # local disk, then S3
    _write(wh, "public", "first")
    server = start_server(wh.data_dir, env=wh.env, log_level="INFO")
    try:
        with psycopg.connect(server.dsn("alice"), autocommit=True) as conn:
            oid_sql = "SELECT 'first'::regclass::oid"
            first_oid = conn.execute(oid_sql).fetchone()[0]
            assert first_oid == relation_oid("public", "first")
            assert conn.execute(oid_sql).fetchone()[0] == first_oid  # same across queries

            # Another process syncs a new table in a new schema: visible without restart.
            _write(wh, "sales", "orders", rows=3)
            listed = _wait_for(conn, "SELECT table_schema, table_name FROM information_schema.tables "
                                     "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
                               [("public", "first"), ("sales", "orders")])
            assert listed == [("public", "first"), ("sales", "orders")]
            assert conn.execute("SELECT count(*) FROM sales.orders").fetchone()[0] == 3
            columns = conn.execute("SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull "
                                   "FROM pg_attribute a WHERE a.attrelid = 'sales.orders'::regclass "
                                   "AND a.attnum > 0 ORDER BY a.attnum").fetchall()
            assert columns == [("id", "bigint", True), ("label", "character varying(40)", False)]
            schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace").fetchall()}
            assert schemas == {"pg_catalog", "public", "information_schema", "pg_toast", "sales"}

            # Dropped from the catalog: gone from pg_class too.
            _catalog(wh).drop_table(("sales", "orders"))
            gone = _wait_for(conn, "SELECT count(*) FROM pg_class WHERE relname = 'orders'", [(0,)])
            assert gone == [(0,)]
    finally:
        server.stop()

    # A restart (or another server over the same catalog) gives every table the same OID.
    server = start_server(wh.data_dir, env=wh.env, log_level="INFO")
    try:
        with psycopg.connect(server.dsn("bob"), autocommit=True) as conn:
            assert conn.execute("SELECT oid FROM pg_class WHERE relname = 'first'").fetchone()[0] == first_oid
            assert conn.execute("SELECT current_user, pg_get_userbyid(relowner) FROM pg_class "
                                "WHERE relname = 'first'").fetchone() == ("bob", "bob")
    finally:
        server.stop()


def test_session_settings_reach_the_catalog_functions(fresh_warehouse):
    wh = fresh_warehouse  # local disk, then S3
    _write(wh, "public", "t")
    _write(wh, "other", "t2")
    server = start_server(wh.data_dir, env=wh.env, log_level="INFO")
    try:
        with psycopg.connect(server.dsn("alice"), autocommit=True) as conn:
            assert conn.execute("SELECT current_schema(), current_schemas(true)").fetchone() == \
                ("public", ["pg_catalog", "public"])
            visible = "SELECT relname FROM pg_class WHERE relname IN ('t', 't2') AND pg_table_is_visible(oid) " \
                      "ORDER BY 1"
            assert conn.execute(visible).fetchall() == [("t",)]
            conn.execute("SET search_path TO other, public")
            assert conn.execute("SELECT current_schema(), current_setting('search_path')").fetchone() == \
                ("other", "other, public")
            assert conn.execute(visible).fetchall() == [("t",), ("t2",)]
            assert conn.execute("SELECT count(*) FROM t2").fetchone()[0] == 2  # DuckDB follows search_path
            conn.execute("SET TimeZone = 'Asia/Tokyo'")
            assert conn.execute("SHOW TimeZone").fetchone()[0] == "Asia/Tokyo"
            assert conn.execute("SELECT setting FROM pg_settings WHERE name = 'TimeZone'").fetchone()[0] == \
                "Asia/Tokyo"
            with psycopg.connect(server.dsn("bob"), autocommit=True) as other:  # settings are per session
                assert other.execute("SELECT current_setting('TimeZone')").fetchone()[0] == "UTC"
            with __import__("pytest").raises(psycopg.Error) as error:
                conn.execute("SET no_such_thing = 1")
            assert error.value.sqlstate == "42704"
            conn.execute("SET myapp.flag = 'on'")
            assert conn.execute("SELECT current_setting('myapp.flag')").fetchone()[0] == "on"
    finally:
        server.stop()
