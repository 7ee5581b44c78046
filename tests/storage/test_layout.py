"""The Parquet layout the writer produces (row groups of DuckDB's size, dictionaries, a bloom filter on the
primary key) and tables written by the previous writer: still served, rewritten in the new layout by the next
full sync. Answers are compared with the source Postgres, through a real `bemidb serve`."""

from __future__ import annotations

import json
import random

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bemidb.config import Config
from bemidb.storage import layout, writer
from bemidb.storage.catalog import PROP_PRIMARY_KEY, PROP_SOURCE, open_catalog
from bemidb.storage.writer import write_table
from tests.support.commands import run_bemidb
from tests.support.server import start_server

SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("kind", pa.string()),
                    pa.field("amount", pa.decimal128(10, 2))])
ROWS = 3500


def _batch(ids: list[int]) -> pa.RecordBatch:
    return pa.record_batch([pa.array(ids, pa.int64()), pa.array([f"k{i % 7}" for i in ids]),
                            pa.array([i % 1000 for i in ids], pa.decimal128(10, 2))], schema=SCHEMA)


def _files(catalog, identifier) -> list[str]:
    table = catalog.load_table(identifier)
    return [task.file.file_path.removeprefix("file://") for task in table.scan().plan_files()]


def _bloom_columns(path: str) -> set[str]:
    rows = duckdb.sql(f"SELECT path_in_schema, bloom_filter_offset FROM parquet_metadata('{path}')").fetchall()
    return {name for name, offset in rows if offset is not None}


def test_row_groups_dictionaries_where_they_pay_and_a_bloom_filter_on_the_key(data_dir, monkeypatch):
    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", 1000)
    catalog = open_catalog(Config({"data_dir": str(data_dir)}))
    ids = list(range(ROWS))
    random.Random(7).shuffle(ids)  # not in key order: min/max cannot prune, the bloom filter can
    batches = [_batch(ids[i:i + 300]) for i in range(0, ROWS, 300)]  # batches not aligned to row groups
    write_table(catalog, ("s", "t"), SCHEMA, iter(batches), properties={PROP_PRIMARY_KEY: json.dumps(["id"])})
    [path] = _files(catalog, ("s", "t"))
    metadata = pq.ParquetFile(path).metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [1000, 1000, 1000, 500]
    encodings = {metadata.schema.column(i).name: metadata.row_group(0).column(i).encodings for i in range(3)}
    assert "RLE_DICTIONARY" in encodings["kind"]  # 7 distinct values: a dictionary pays
    assert "RLE_DICTIONARY" not in encodings["id"] and "RLE_DICTIONARY" not in encodings["amount"]  # near-unique
    assert _bloom_columns(path) == {"id"}
    column = metadata.row_group(0).column(0)
    assert column.has_column_index and column.has_offset_index  # DuckDB skips pages by it
    holder = ids.index(1234) // 1000
    probe = duckdb.sql(f"SELECT row_group_id, bloom_filter_excludes FROM parquet_bloom_probe('{path}', 'id', 1234)")
    excluded = dict(probe.fetchall())
    assert excluded[holder] is False
    assert sum(excluded.values()) >= 2  # the row groups without the key are skipped (fpp 5%)
    assert sorted(catalog.load_table(("s", "t")).scan().to_arrow().column("id").to_pylist()) == list(range(ROWS))


def test_no_bloom_filter_without_a_primary_key(data_dir):
    catalog = open_catalog(Config({"data_dir": str(data_dir)}))
    write_table(catalog, ("s", "t"), SCHEMA, iter([_batch(list(range(10)))]))
    assert _bloom_columns(_files(catalog, ("s", "t"))[0]) == set()


@pytest.fixture
def source(pg):
    url = pg.create_database("layout_old_writer")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, kind text, amount numeric(10,2))")
        conn.execute("INSERT INTO items SELECT i, 'k' || (i % 7), (i % 100)::numeric "
                     "FROM generate_series(0, 2999) AS i")
    return url


def _old_writer(monkeypatch):
    """The previous writer's layout: 1M-row groups, no bloom filter, no page index, dictionaries on strings only."""
    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", 1_000_000)
    monkeypatch.setattr(layout, "bloom_filters", lambda *args: None)
    real = pq.ParquetWriter

    def old_parquet_writer(where, schema, **options):
        options["use_dictionary"] = [f.name for f in schema if pa.types.is_string(f.type)]
        options.pop("write_page_index", None)
        options.pop("max_rows_per_page", None)
        options.pop("data_page_size", None)
        return real(where, schema, **options)

    monkeypatch.setattr(writer.pq, "ParquetWriter", old_parquet_writer)


def _answers(dsn_or_url: str) -> list[tuple]:
    with psycopg.connect(dsn_or_url, autocommit=True) as conn:
        return conn.execute("SELECT id, kind, amount FROM items WHERE id IN (0, 1234, 2999) ORDER BY id").fetchall() + \
            conn.execute("SELECT count(*), sum(amount), count(DISTINCT kind) FROM items").fetchall()


def test_table_of_the_old_writer_is_served_then_rewritten_by_the_next_full_sync(source, data_dir, monkeypatch):
    catalog = open_catalog(Config({"data_dir": str(data_dir)}))
    with psycopg.connect(source) as conn:
        rows = conn.execute("SELECT id, kind, amount FROM items ORDER BY id").fetchall()
    old = pa.record_batch([pa.array([r[0] for r in rows], pa.int64()), pa.array([r[1] for r in rows]),
                           pa.array([r[2] for r in rows], pa.decimal128(10, 2))], schema=SCHEMA)
    with monkeypatch.context() as patch:
        _old_writer(patch)
        write_table(catalog, ("public", "items"), SCHEMA, iter([old]),
                    properties={PROP_SOURCE: "postgres", PROP_PRIMARY_KEY: json.dumps(["id"])})
    [old_path] = _files(catalog, ("public", "items"))
    old_metadata = pq.ParquetFile(old_path).metadata
    assert old_metadata.num_row_groups == 1 and _bloom_columns(old_path) == set()
    assert not old_metadata.row_group(0).column(0).has_column_index
    assert "RLE_DICTIONARY" not in old_metadata.row_group(0).column(2).encodings

    server = start_server(data_dir)
    try:
        assert _answers(server.dsn()) == _answers(source)
    finally:
        server.stop()

    result = run_bemidb("sync", "postgres", "--database-url", source, "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    [new_path] = _files(catalog, ("public", "items"))
    assert new_path != old_path and _bloom_columns(new_path) == {"id"}
    metadata = pq.ParquetFile(new_path).metadata
    assert "RLE_DICTIONARY" in metadata.row_group(0).column(2).encodings  # amount: 100 distinct numbers
    assert metadata.row_group(0).column(0).has_column_index
    server = start_server(data_dir)
    try:
        assert _answers(server.dsn()) == _answers(source)
    finally:
        server.stop()


def test_incremental_merge_writes_the_same_layout(source, data_dir):
    def sync():
        result = run_bemidb("sync", "postgres", "--database-url", source, "--data-dir", str(data_dir),
                            "--incremental", "public.items:id")
        assert result.returncode == 0, result.stderr

    sync()
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("INSERT INTO items SELECT i, 'k' || (i % 7), (i % 100)::numeric "
                     "FROM generate_series(3000, 3999) AS i")
    sync()
    catalog = open_catalog(Config({"data_dir": str(data_dir)}))
    paths = _files(catalog, ("public", "items"))
    assert len(paths) == 2  # the first copy (rewritten without the re-read key 2999) and the new rows
    for path in paths:
        assert _bloom_columns(path) == {"id"}
        assert "RLE_DICTIONARY" in pq.ParquetFile(path).metadata.row_group(0).column(2).encodings
    server = start_server(data_dir)
    try:
        assert _answers(server.dsn()) == _answers(source)
    finally:
        server.stop()
