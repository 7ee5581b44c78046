"""Reading from S3 (SeaweedFS) under concurrency: every answer equals the local-disk server's, and a read that
cannot be done is an I/O error (58030) that leaves the server serving.

The concurrent test is the regression test of issue 14: through fsspec's ArrowFSWrapper, DuckDB's threads
shared one file position per file and read each other's offsets ("invalid TType", "Negative size").
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pytest

from bemidb import config
from bemidb.storage.catalog import open_catalog
from bemidb.storage.writer import write_table
from tests.support.server import bemidb_server  # noqa: F401 - fixture
from tests.support.tpch import tpch_queries, write_tpch, wrong_answers

psycopg = pytest.importorskip("psycopg")

CLIENTS = 6
ROUNDS = 2  # the second round runs on footers and handles the first one cached


@pytest.fixture
def s3_env(s3, bucket, tmp_path) -> dict:
    data_dir = tmp_path / "s3-data"
    data_dir.mkdir()
    return {**s3.env(bucket), "BEMIDB_DATA_DIR": str(data_dir)}


def _answers_of_local_disk(tmp_path, bemidb_server) -> dict[str, list]:  # noqa: F811
    local_dir = tmp_path / "local-data"
    local_dir.mkdir()
    write_tpch({"BEMIDB_DATA_DIR": str(local_dir)})
    server = bemidb_server(local_dir, log_level="INFO")
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        answers = {name: conn.execute(sql).fetchall() for name, sql in tpch_queries().items()}
    server.stop()
    return answers


def test_tpch_from_s3_with_concurrent_clients_equals_local_disk(s3_env, tmp_path, bemidb_server):  # noqa: F811
    expected = _answers_of_local_disk(tmp_path, bemidb_server)
    write_tpch(s3_env)
    queries = tpch_queries()
    server = bemidb_server(s3_env["BEMIDB_DATA_DIR"], env=s3_env, log_level="INFO")  # fresh: nothing cached

    def client(number: int) -> list[str]:
        problems = []
        names = list(queries)
        names = names[number * 3 % len(names):] + names[:number * 3 % len(names)]  # clients overlap unevenly
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            for _ in range(ROUNDS):
                problems += wrong_answers(conn, names, queries, expected)
        return problems

    with ThreadPoolExecutor(CLIENTS) as pool:
        problems = [p for found in pool.map(client, range(CLIENTS)) for p in found]
    assert problems == [], "\n".join(problems[:20])
    assert server.alive()


def test_file_deleted_under_the_server_is_an_io_error_and_the_server_keeps_serving(s3, s3_env, bemidb_server):  # noqa: F811
    catalog = open_catalog(config.resolve(None, config.STORAGE, env=s3_env))
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("note", pa.string())])
    # Random text, ~4 MB: more than the footer bytes the reader keeps in memory, and more than DuckDB reads
    # whole when it opens a file (a ~2 MB file is read entirely by the first DESCRIBE of it by name, and a query
    # then answers from those bytes: the snapshot's own, Iceberg files never change).
    rows = 400_000
    batch = pa.RecordBatch.from_pydict({"id": list(range(rows)), "note": [os.urandom(8).hex() for _ in range(rows)]},
                                       schema=schema)
    write_table(catalog, ("public", "gone"), schema, [batch])
    write_table(catalog, ("public", "kept"), schema, [batch.slice(0, 10)])
    server = bemidb_server(s3_env["BEMIDB_DATA_DIR"], env=s3_env, log_level="INFO")
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        # the server has read the footers (its views are bound), never the data: now the files go
        client = s3.client()
        bucket = s3_env["AWS_S3_BUCKET"]
        listing = client.list_objects_v2(Bucket=bucket, Prefix="iceberg/")["Contents"]
        data_files = [o["Key"] for o in listing if "/gone/" in o["Key"] and o["Key"].endswith(".parquet")]
        assert data_files
        for key in data_files:
            client.delete_object(Bucket=bucket, Key=key)
        # Not a bare max(note): read by name, DuckDB may answer that from the footer's statistics.
        with pytest.raises(psycopg.Error) as failed:
            conn.execute("SELECT sum(length(note)) FROM gone").fetchone()
        assert failed.value.sqlstate == "58030", str(failed.value)
        assert "Traceback" not in str(failed.value)
        # the same connection and others keep working on what is still there
        assert conn.execute("SELECT count(*), sum(id) FROM kept").fetchone() == (10, 45)
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (10,)
    assert server.alive()
