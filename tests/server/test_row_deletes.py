"""Tables another Iceberg engine changed with row-level deletes, read through the server by a real client:
position deletes (Trino's DELETE, Spark merge-on-read) are applied, as pyiceberg applies them; equality
deletes (Flink upserts), which cannot be applied yet, make queries on that table fail with a message saying
so, never answer with deleted rows."""

from __future__ import annotations

import time

import psycopg
import pyarrow as pa
import pytest

from bemidb.storage.writer import write_table
from tests.support.row_deletes import delete_equal, delete_positions
from tests.support.server import start_server

SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string())])


def _write(catalog, name: str, ids: range, mode: str = "overwrite") -> None:
    batch = pa.record_batch([pa.array(ids, pa.int64()), pa.array([f"n{i}" for i in ids])], schema=SCHEMA)
    write_table(catalog, ("public", name), SCHEMA, iter([batch]), mode=mode)


def _ids(conn, sql: str) -> list[int]:
    return [row[0] for row in conn.execute(sql).fetchall()]


def test_position_deletes_applied_and_equality_deletes_refused(fresh_warehouse):
    wh = fresh_warehouse  # local disk, then S3: delete files are read through the same S3 reader
    catalog = wh.catalog()
    _write(catalog, "t", range(0, 10))
    _write(catalog, "t", range(10, 15), mode="append")  # a second data file, no deletes on it
    _write(catalog, "flink", range(0, 5))
    table = catalog.load_table(("public", "t"))
    first = next(task.file.file_path for task in table.scan().plan_files() if task.file.record_count == 10)
    delete_positions(table, {first: [2, 5]})
    delete_equal(catalog.load_table(("public", "flink")), "name", ["n1"])
    expected = sorted(catalog.load_table(("public", "t")).scan().to_arrow()["id"].to_pylist())
    assert expected == [0, 1, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14]  # pyiceberg, the reference reader

    server = start_server(wh.data_dir, env=wh.env)
    try:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            assert _ids(conn, "SELECT id FROM t ORDER BY id") == expected
            assert conn.execute("SELECT count(*), sum(id) FROM t").fetchone() == (13, sum(expected))
            assert _ids(conn, "SELECT id FROM t WHERE name IN ('n2', 'n3') ORDER BY id") == [3]
            with pytest.raises(psycopg.Error, match="equality delete files"):
                conn.execute("SELECT * FROM flink")
            assert _ids(conn, "SELECT count(*) FROM t") == [13]  # the session goes on

            # a later delete is seen live, like any commit
            delete_positions(catalog.load_table(("public", "t")), {first: [0]})
            deadline = time.monotonic() + 10
            while _ids(conn, "SELECT count(*) FROM t") != [12] and time.monotonic() < deadline:
                time.sleep(0.3)
            assert _ids(conn, "SELECT min(id) FROM t") == [1]
    finally:
        server.stop()
