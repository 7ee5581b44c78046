"""How the server's views read a table's Parquet files (issue 17): by name when the table never
changed its schema (every file then has the schema's names and types, checked on a file; DuckDB plans ~0.5-0.8 ms
faster), by Iceberg field id once the schema evolved (a renamed column still reads its old files). The real
Engine over real tables on local disk and on SeaweedFS S3; answers compared between the two ways of reading."""

from __future__ import annotations

import time

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyiceberg.types import LongType

from bemidb import config
from bemidb.server.engine import REFRESH_INTERVAL, Engine
from bemidb.storage.maintenance import vacuum_table
from bemidb.storage.writer import write_table
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


def test_full_refreshes_under_a_serving_engine_answer_old_or_new_never_an_error(fresh_warehouse):
    """A sync replaces every file of a table and vacuums while the server serves it (by name, on local disk and
    on S3): each query answers the old snapshot or the new one, never a mix nor an I/O error, and the new one
    once the engine has looked at the catalog again."""
    catalog = fresh_warehouse.catalog()
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("v", pa.int64())])
    rows = 300_000  # a few MB: more than DuckDB reads whole when it opens a file

    def full_refresh(generation: int) -> None:
        ids = pa.array(range(rows), pa.int64())
        batch = pa.RecordBatch.from_arrays([ids, pc.add(ids, generation * rows)], schema=schema)
        write_table(catalog, ("public", "swapped"), schema, [batch])
        vacuum_table(catalog.load_table(("public", "swapped")))  # as every sync does after its commit

    def answer(generation: int) -> int:
        return sum(range(rows)) + generation * rows * rows

    full_refresh(0)
    engine = _engine(fresh_warehouse)
    query = "SELECT sum(v) FROM public.swapped"  # needs every value: no footer statistic answers it
    assert FIELD_ID_READ not in _view_sql(engine, "swapped")
    for generation in range(1, 4):
        full_refresh(generation)
        engine.maybe_refresh()
        # Within the refresh interval the old view still reads the previous snapshot's files, which vacuum
        # keeps (3 snapshots): the old answer, or the new one if the engine looked already.
        assert engine.cursor().execute(query).fetchone()[0] in (answer(generation - 1), answer(generation))
        time.sleep(REFRESH_INTERVAL + 0.1)
        engine.maybe_refresh()
        assert engine.cursor().execute(query).fetchone()[0] == answer(generation)
        assert FIELD_ID_READ not in _view_sql(engine, "swapped")
