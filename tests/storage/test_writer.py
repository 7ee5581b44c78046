"""The streaming writer on its own: one snapshot per call, overwrite/append, schema replacement, rolling files,
failure leaves the previous snapshot and no files behind, properties recorded."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from bemidb.config import Config
from bemidb.storage import writer
from bemidb.storage.catalog import PROP_PG_TYPES, PROP_SOURCE, PROP_SYNCED_AT, open_catalog
from bemidb.storage.maintenance import vacuum_table
from bemidb.storage.writer import write_table

SCHEMA = pa.schema([
    pa.field("id", pa.int64(), nullable=False, metadata={b"pg_type": b"bigint"}),
    pa.field("amount", pa.decimal128(10, 2), metadata={b"pg_type": b"numeric(10,2)"}),
    pa.field("tags", pa.list_(pa.string()), metadata={b"pg_type": b"text[]"}),
])


def _batches(start: int, count: int, size: int = 1000):
    for offset in range(start, start + count, size):
        n = min(size, start + count - offset)
        yield pa.record_batch([pa.array(range(offset, offset + n), pa.int64()),
                               pa.array([offset % 100] * n, pa.decimal128(10, 2)),
                               pa.array([["a", None, f"t{offset}"]] * n)], schema=SCHEMA)


@pytest.fixture
def catalog(data_dir):
    return open_catalog(Config({"data_dir": str(data_dir)}))


def test_overwrite_then_append_one_snapshot_each(catalog):
    progress = []
    result = write_table(catalog, ("s", "t"), SCHEMA, _batches(0, 5000), properties={PROP_SOURCE: "test"},
                         on_progress=lambda rows, size: progress.append(rows))
    assert (result.rows, result.files) == (5000, 1) and result.bytes > 0
    assert progress[-1] == 5000 and progress == sorted(progress)
    table = catalog.load_table(("s", "t"))
    assert table.current_snapshot().snapshot_id == result.snapshot_id
    assert json.loads(table.properties[PROP_PG_TYPES]) == ["bigint", "numeric(10,2)", "text[]"]
    assert table.properties[PROP_SOURCE] == "test" and PROP_SYNCED_AT in table.properties
    assert table.schema().find_field("id").required

    write_table(catalog, ("s", "t"), SCHEMA, _batches(5000, 10), mode="append")
    table = catalog.load_table(("s", "t"))
    assert table.scan().to_arrow().num_rows == 5010 and len(table.metadata.snapshots) == 2

    write_table(catalog, ("s", "t"), SCHEMA, _batches(0, 3))
    table = catalog.load_table(("s", "t"))
    arrow = table.scan().to_arrow()
    assert arrow.column("id").to_pylist() == [0, 1, 2]
    assert arrow.column("tags").to_pylist()[0] == ["a", None, "t0"]
    assert len(table.metadata.snapshots) == 3


def test_overwrite_with_an_incompatible_schema_replaces_it_in_the_same_commit(catalog):
    write_table(catalog, ("s", "t"), SCHEMA, _batches(0, 10))
    other = pa.schema([pa.field("id", pa.string()), pa.field("extra", pa.float64())])
    batch = pa.record_batch([pa.array(["x"]), pa.array([1.5])], schema=other)
    result = write_table(catalog, ("s", "t"), other, iter([batch]))
    table = catalog.load_table(("s", "t"))
    assert [f.name for f in table.schema().fields] == ["id", "extra"]
    assert table.scan().to_arrow().to_pylist() == [{"id": "x", "extra": 1.5}]
    assert table.current_snapshot().snapshot_id == result.snapshot_id
    assert json.loads(table.properties[PROP_PG_TYPES]) == ["text", "double precision"]


def test_append_adds_new_columns_and_fills_missing_ones_with_nulls(catalog):
    write_table(catalog, ("s", "t"), SCHEMA, _batches(0, 2))
    wider = SCHEMA.append(pa.field("note", pa.string()))
    batch = pa.record_batch([pa.array([7], pa.int64()), pa.array([1], pa.decimal128(10, 2)),
                             pa.array([[]], pa.list_(pa.string())), pa.array(["n"])], schema=wider)
    write_table(catalog, ("s", "t"), wider, iter([batch]), mode="append")
    rows = catalog.load_table(("s", "t")).scan().to_arrow().sort_by("id").to_pylist()
    assert [r["note"] for r in rows] == [None, None, "n"]


def test_files_roll_at_target_size(catalog, monkeypatch):
    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", 5000)
    result = write_table(catalog, ("s", "t"), SCHEMA, _batches(0, 50000), target_file_size=1)
    assert result.files == 10
    table = catalog.load_table(("s", "t"))
    assert len(list(table.scan().plan_files())) == 10
    assert table.scan().to_arrow().num_rows == 50000


def test_failure_before_commit_keeps_old_snapshot_and_deletes_partial_files(catalog, data_dir, monkeypatch):
    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", 1000)
    write_table(catalog, ("s", "t"), SCHEMA, _batches(0, 10))
    files_before = set(data_dir.rglob("*.parquet"))

    def failing():
        yield from _batches(0, 5000)
        raise RuntimeError("source went away")

    with pytest.raises(RuntimeError, match="source went away"):
        write_table(catalog, ("s", "t"), SCHEMA, failing(), target_file_size=1)
    assert set(data_dir.rglob("*.parquet")) == files_before
    assert catalog.load_table(("s", "t")).scan().to_arrow().num_rows == 10


def test_failed_first_write_leaves_no_table(catalog):
    def failing():
        yield from _batches(0, 10)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_table(catalog, ("s", "new"), SCHEMA, failing())
    assert ("s", "new") not in catalog.list_tables("s")


def test_empty_input_commits_an_empty_snapshot(catalog):
    result = write_table(catalog, ("s", "empty"), SCHEMA, iter([]))
    table = catalog.load_table(("s", "empty"))
    assert result.rows == 0 and table.current_snapshot() is not None
    assert table.scan().to_arrow().num_rows == 0


def test_vacuum_expires_snapshots_and_removes_unreferenced_files(catalog, data_dir):
    for i in range(4):
        write_table(catalog, ("s", "t"), SCHEMA, _batches(i, 10))
    table = catalog.load_table(("s", "t"))
    assert len(table.metadata.snapshots) == 4 and len(list(data_dir.rglob("*.parquet"))) == 4
    result = vacuum_table(table, keep_snapshots=2)
    table = catalog.load_table(("s", "t"))
    assert result.expired_snapshots == 2 and len(table.metadata.snapshots) == 2
    assert result.deleted_files >= 2 and len(list(data_dir.rglob("*.parquet"))) == 2
    assert table.scan().to_arrow().column("id").to_pylist()[0] == 3


def test_invalid_mode_is_rejected(catalog):
    with pytest.raises(ValueError, match="mode"):
        write_table(catalog, ("s", "t"), SCHEMA, iter([]), mode="merge")
