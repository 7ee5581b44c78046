"""Apache Superset's PostgreSQL calls (superset/db_engine_specs/postgres.py: its prequery, get_catalog_names,
get_table_names with foreign tables, the cancel-query pair) and the SQLAlchemy reflection it builds datasets
from (psycopg2, Superset's default driver), on the test Postgres and bemidb serving a sync of it, compared."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.support.synced import create_source, serve_synced
from tests.support.warehouse import make_warehouse

SOURCE_DDL = """
CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(12,2) DEFAULT 0,
    placed date DEFAULT CURRENT_DATE, uid uuid UNIQUE, note varchar(40));
COMMENT ON TABLE orders IS 'customer orders';
COMMENT ON COLUMN orders.customer IS 'who ordered';
CREATE INDEX orders_placed ON orders (placed DESC, customer);
CREATE TABLE items (order_id int NOT NULL, sku text NOT NULL, qty int DEFAULT 1, price float8, tags text[],
    created timestamptz, PRIMARY KEY (order_id, sku));
INSERT INTO orders (customer, total, placed) SELECT 'c' || g, g * 1.5, '2024-01-01'::date + g
    FROM generate_series(1, 5) g;
"""


@pytest.fixture(scope="module")
def source(pg):
    return create_source(pg, "compat_superset", SOURCE_DDL)


@pytest.fixture(scope="module")
def server(source, tmp_path_factory):
    """Catalog rows do not depend on where the data files are: local disk only."""
    yield from serve_synced(source, make_warehouse("local", tmp_path_factory.mktemp("superset-data")))


def _superset(url: str) -> dict:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    out: dict = {}
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql('set search_path = "public"')  # PostgresEngineSpec.get_prequeries
            out["search_path"] = conn.exec_driver_sql("SHOW search_path").scalar()
            out["catalogs"] = sorted(c for (c,) in conn.exec_driver_sql(
                "\nSELECT datname FROM pg_database\nWHERE datistemplate = false;\n            "))
            inspector = sa.inspect(conn)
            out["tables"] = sorted(set(inspector.get_table_names("public"))
                                   | set(inspector.get_foreign_table_names("public")))
            out["views"] = (inspector.get_view_names("public"), inspector.get_materialized_view_names("public"))
            for table in out["tables"]:
                out[f"{table} columns"] = [(c["name"], str(c["type"]), c["nullable"], c["default"],
                                            c.get("autoincrement"), c.get("comment"))
                                           for c in inspector.get_columns(table, "public")]
                out[f"{table} pk"] = inspector.get_pk_constraint(table, "public")
                out[f"{table} fks"] = inspector.get_foreign_keys(table, "public")
                out[f"{table} indexes"] = inspector.get_indexes(table, "public")
                out[f"{table} unique"] = inspector.get_unique_constraints(table, "public")
                out[f"{table} checks"] = inspector.get_check_constraints(table, "public")
                out[f"{table} comment"] = inspector.get_table_comment(table, "public")
            # Power BI's key query (its Npgsql-era catalog reads): primary keys and UNIQUE constraints
            out["keys"] = conn.exec_driver_sql(
                "select i.CONSTRAINT_SCHEMA, i.CONSTRAINT_NAME, i.TABLE_NAME, i.CONSTRAINT_TYPE, ii.COLUMN_NAME, "
                "ii.ORDINAL_POSITION, i.nulls_distinct from INFORMATION_SCHEMA.table_constraints i inner join "
                "INFORMATION_SCHEMA.key_column_usage ii on i.CONSTRAINT_SCHEMA = ii.CONSTRAINT_SCHEMA and "
                "i.CONSTRAINT_NAME = ii.CONSTRAINT_NAME and i.TABLE_SCHEMA = ii.TABLE_SCHEMA and i.TABLE_NAME = "
                "ii.TABLE_NAME\nwhere i.TABLE_SCHEMA = 'public'\nand i.CONSTRAINT_TYPE in ('PRIMARY KEY', 'UNIQUE')"
                "\norder by i.CONSTRAINT_SCHEMA || '_' || i.CONSTRAINT_NAME, ii.TABLE_SCHEMA, ii.TABLE_NAME, "
                "ii.ORDINAL_POSITION").fetchall()
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()  # get_cancel_query_id
            out["pid"] = isinstance(pid, int)
            out["cancel other"] = conn.exec_driver_sql(  # cancel_query, for a pid that is not running
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid='0'").fetchall()
    finally:
        engine.dispose()
    return out


def test_superset_calls_as_postgres(server, source):
    ours, theirs = _superset(server.dsn("alice")), _superset(source)
    assert theirs["tables"] == ["items", "orders"] and theirs["orders columns"] and len(theirs["keys"]) == 4
    # the test Postgres holds every test's database; bemidb serves one database (its own name)
    assert ours.pop("catalogs") == ["bemidb"] and "compat_superset" in theirs.pop("catalogs")
    assert {k: v for k, v in ours.items() if v != theirs.get(k)} == {}
