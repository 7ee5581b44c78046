"""Connect and metadata queries of BI tools, taken verbatim from their sources, run on the test Postgres and
through bemidb serving a sync of it, compared row for row."""

from __future__ import annotations

import psycopg
import pytest

from tests.support.commands import run_bemidb
from tests.support.server import start_server

SOURCE_DDL = """
CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(12,2) DEFAULT 0,
    placed date DEFAULT CURRENT_DATE, note varchar(40));
CREATE INDEX orders_customer_idx ON orders (customer);
COMMENT ON TABLE orders IS 'customer orders';
INSERT INTO orders (customer, total, placed) SELECT 'c' || (g % 7), g, '2024-01-01'::date + g FROM generate_series(1, 50) g;
CREATE TABLE "Mixed Case" ("Id" integer PRIMARY KEY, label text);
"""

# Metabase (src/metabase/driver/postgres.clj, current-user-table-privileges): note the `AS select` aliases.
METABASE_TABLE_PRIVILEGES = "\n".join([
    "with table_privileges as (",
    " select",
    "   NULL as role,",
    "   t.schemaname as schema,",
    "   t.objectname as table,",
    "   pg_catalog.has_table_privilege(current_user, '\"' || t.schemaname || '\"' || '.' || '\"' || t.objectname"
    " || '\"',  'update') as update,",
    "   pg_catalog.has_table_privilege(current_user, '\"' || t.schemaname || '\"' || '.' || '\"' || t.objectname"
    " || '\"',  'select') as select,",
    "   pg_catalog.has_table_privilege(current_user, '\"' || t.schemaname || '\"' || '.' || '\"' || t.objectname"
    " || '\"',  'insert') as insert,",
    "   pg_catalog.has_table_privilege(current_user, '\"' || t.schemaname || '\"' || '.' || '\"' || t.objectname"
    " || '\"',  'delete') as delete",
    " from (",
    "   select schemaname, tablename as objectname from pg_catalog.pg_tables",
    "   union",
    "   select schemaname, viewname as objectname from pg_catalog.pg_views",
    "   union",
    "   select schemaname, matviewname as objectname from pg_catalog.pg_matviews",
    " ) t",
    " where t.schemaname !~ '^pg_'",
    "   and t.schemaname <> 'information_schema'",
    "   and pg_catalog.has_schema_privilege(current_user, t.schemaname, 'usage')",
    ")",
    "select t.*",
    "from table_privileges t",
])

QUERIES = {
    # update/insert/delete privileges differ on purpose: the server is read-only (they are false here)
    "metabase table privileges": "SELECT role, schema, \"table\", \"select\" FROM (" + METABASE_TABLE_PRIVILEGES
                                 + ") AS m ORDER BY 2, 3",
}


@pytest.fixture(scope="module")
def source(pg):
    url = pg.create_database("compat_bi")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SOURCE_DDL)
    return url


@pytest.fixture(scope="module")
def server(source, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("compat-bi") / "data"
    data_dir.mkdir()
    run_bemidb("sync", "postgres", "--database-url", source, env={"BEMIDB_DATA_DIR": str(data_dir)}, check=True)
    process = start_server(data_dir, log_level="INFO")
    yield process
    process.stop()


def _run(dsn: str, sql: str):
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            cur = conn.execute(sql)
            return [d.name for d in cur.description], cur.fetchall()
        except psycopg.Error as exc:
            return "error", exc.sqlstate, str(exc).splitlines()[0]


def test_metabase_sees_a_read_only_server(server):
    _, rows = _run(server.dsn("alice"), METABASE_TABLE_PRIVILEGES)
    assert rows and all(r[4] and not (r[3] or r[5] or r[6]) for r in rows)


@pytest.mark.parametrize("name", list(QUERIES))
def test_bi_tool_query_as_postgres(server, source, name):
    assert _run(server.dsn("alice"), QUERIES[name]) == _run(source, QUERIES[name])
