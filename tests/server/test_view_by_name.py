"""How the server's views read a table's Parquet files (issue 17): by name when the table never
changed its schema (every file then has the schema's names and types, checked on a file; DuckDB plans ~0.5-0.8 ms
faster), by Iceberg field id once the schema evolved (a renamed column still reads its old files). The real
Engine over real tables on local disk and on SeaweedFS S3; answers compared between the two ways of reading."""

from __future__ import annotations

import pytest
from pyiceberg.types import LongType

from bemidb import config
from bemidb.server.engine import Engine
from tests.support.items import write_items

FIELD_ID_READ = "(\"schema\" = "  # how DuckDB spells read_parquet(..., schema = MAP {...}) in a view
QUERY = "SELECT * FROM public.items WHERE id = 2 OR name IS NULL ORDER BY id"


def _engine(warehouse) -> Engine:
    return Engine(config.resolve(None, list(config.SETTINGS), env=warehouse.env))


def _view_sql(engine: Engine, name: str) -> str:
    return engine._internal.execute("SELECT sql FROM duckdb_views() WHERE view_name = ?", [name]).fetchone()[0]


@pytest.fixture
def engine_and_rows(fresh_warehouse):
    write_items(fresh_warehouse.data_dir, env=fresh_warehouse.env)
    engine = _engine(fresh_warehouse)
    return fresh_warehouse, engine, engine.cursor().execute(QUERY).fetchall()


def test_a_table_with_one_schema_is_read_by_name_with_the_same_answers(engine_and_rows):
    warehouse, engine, rows = engine_and_rows
    assert FIELD_ID_READ not in _view_sql(engine, "items")  # on local disk and on S3 alike
    assert len(rows) == 2
    # the same files read by field id (the form every evolved table gets) answer the same
    table = warehouse.catalog().load_table(("public", "items"))
    from bemidb.server.engine import view_sql

    engine._internal.execute(view_sql("public", "items", table))
    assert FIELD_ID_READ in _view_sql(engine, "items")
    assert engine.cursor().execute(QUERY).fetchall() == rows


def test_an_evolved_schema_is_read_by_field_id(engine_and_rows):
    warehouse, _engine_before, rows = engine_and_rows
    table = warehouse.catalog().load_table(("public", "items"))
    with table.update_schema() as update:
        update.rename_column("name", "title")
        update.add_column("stock", LongType())
    engine = _engine(warehouse)
    assert FIELD_ID_READ in _view_sql(engine, "items")
    got = engine.cursor().execute("SELECT id, title, stock FROM public.items WHERE id = 2 OR title IS NULL "
                                  "ORDER BY id").fetchall()
    assert got == [(r[0], r[1], None) for r in rows]
