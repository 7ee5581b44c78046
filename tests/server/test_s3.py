"""The server reading Iceberg tables from S3 (SeaweedFS), through pyarrow's S3 filesystem registered in DuckDB."""

from __future__ import annotations

import pyarrow as pa
import pytest

from bemidb import config
from bemidb.storage.catalog import open_catalog
from bemidb.storage.writer import write_table
from tests.support.server import bemidb_server  # noqa: F401 - fixture


@pytest.fixture
def s3_env(s3, bucket, data_dir) -> dict:
    return {**s3.env(bucket), "BEMIDB_DATA_DIR": str(data_dir)}


def test_tables_on_s3_are_served_and_streamed(s3_env, bemidb_server, data_dir):  # noqa: F811
    import psycopg

    catalog = open_catalog(config.resolve(None, config.STORAGE, env=s3_env))
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("label", pa.string())])
    rows = 300_000
    batches = [pa.RecordBatch.from_pydict({"id": list(range(start, start + 100_000)),
                                           "label": [f"l{i % 7}" for i in range(start, start + 100_000)]},
                                          schema=schema) for start in range(0, rows, 100_000)]
    write_table(catalog, ("public", "events"), schema, batches)
    server = bemidb_server(data_dir, env=s3_env)
    with psycopg.connect(server.dsn("s3user"), autocommit=True) as conn:
        assert conn.execute("SELECT count(*), sum(id) FROM events").fetchone() == (rows, rows * (rows - 1) // 2)
        assert conn.execute("SELECT label, count(*) FROM events GROUP BY label ORDER BY label LIMIT 2"
                            ).fetchall() == [("l0", 42858), ("l1", 42857)]
        streamed = sum(1 for _ in conn.cursor().stream("SELECT * FROM events"))
        assert streamed == rows
        # other paths of the bucket are outside the sandbox
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"SELECT * FROM read_parquet('s3://{s3_env['AWS_S3_BUCKET']}/elsewhere/x.parquet')")
        # a new snapshot on S3 is picked up live
        write_table(catalog, ("public", "events"), schema, batches[:1])
        import time

        deadline = time.monotonic() + 10
        while conn.execute("SELECT count(*) FROM events").fetchone() != (100_000,):
            assert time.monotonic() < deadline
            time.sleep(0.3)
