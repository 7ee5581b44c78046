"""S3 misbehaving under a running server: responses cut off or slow (a TCP proxy between the server and
SeaweedFS), SeaweedFS killed and started again mid-query. Reads that fail are retried; what still fails is an
I/O error (58030, never XX000) for that query only; the server keeps serving, and the answers are right again
as soon as S3 is."""

from __future__ import annotations

import os
import threading
import time

import pyarrow as pa
import pytest

from bemidb import config
from bemidb.storage.catalog import open_catalog
from bemidb.storage.writer import write_table
from tests.support.server import bemidb_server  # noqa: F401 - fixture
from tests.support.tcp_proxy import TcpProxy

psycopg = pytest.importorskip("psycopg")

ROWS = 300_000
SUM_SQL = "SELECT count(*), sum(id), count(DISTINCT note) FROM big"
EXPECTED = (ROWS, ROWS * (ROWS - 1) // 2, ROWS)


def _write_big(env: dict) -> None:
    """A few MB of incompressible text in several files: a query reads many ranges, none of them cached."""
    catalog = open_catalog(config.resolve(None, config.STORAGE, env=env))
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("note", pa.string())])
    batches = [pa.RecordBatch.from_pydict({"id": list(range(start, start + 50_000)),
                                           "note": [f"{i:08d}" + os.urandom(12).hex() for i in
                                                    range(start, start + 50_000)]}, schema=schema)
               for start in range(0, ROWS, 50_000)]
    write_table(catalog, ("public", "big"), schema, batches, target_file_size=2 << 20)


@pytest.fixture
def proxied(s3, bucket, tmp_path):
    """A warehouse on SeaweedFS, and the environment of a server that reaches it through a proxy."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {**s3.env(bucket), "BEMIDB_DATA_DIR": str(data_dir)}
    _write_big(env)
    proxy = TcpProxy("127.0.0.1", s3.s3_port).start()
    yield proxy, {**env, "AWS_S3_ENDPOINT": proxy.endpoint}
    proxy.stop()


def test_cut_off_responses_are_retried_then_an_io_error(proxied, bemidb_server):  # noqa: F811
    proxy, env = proxied
    server = bemidb_server(env["BEMIDB_DATA_DIR"], env=env, log_level="INFO")
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        proxy.cut_after, proxy.cuts_left = 30_000, 3  # a few broken responses: retries hide them
        assert conn.execute(SUM_SQL).fetchone() == EXPECTED
        assert proxy.cuts == 3
    server.stop()

    server = bemidb_server(env["BEMIDB_DATA_DIR"], env=env, log_level="INFO")  # nothing cached
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        proxy.cut_after, proxy.cuts_left = 30_000, None  # every response broken: the query fails, cleanly
        with pytest.raises(psycopg.Error) as failed:
            conn.execute(SUM_SQL)
        assert failed.value.sqlstate == "58030", str(failed.value)
        assert conn.execute("SELECT 1").fetchone() == (1,)
        proxy.cut_after = None  # S3 healthy again: the same query answers right (nothing wrong was cached)
        assert conn.execute(SUM_SQL).fetchone() == EXPECTED
    assert server.alive()


def test_slow_responses_give_right_answers(proxied, bemidb_server):  # noqa: F811
    proxy, env = proxied
    server = bemidb_server(env["BEMIDB_DATA_DIR"], env=env, log_level="INFO")
    proxy.delay_s = 0.02  # every 64 kB chunk from S3 waits: reads overlap and finish out of order
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        assert conn.execute(SUM_SQL).fetchone() == EXPECTED
    assert server.alive()


def test_seaweedfs_killed_mid_query_and_started_again(own_s3, tmp_path, bemidb_server):  # noqa: F811
    bucket = own_s3.create_bucket("faults")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {**own_s3.env(bucket), "BEMIDB_DATA_DIR": str(data_dir)}
    _write_big(env)
    proxy = TcpProxy("127.0.0.1", own_s3.s3_port).start()  # slows the query down enough to kill S3 under it
    try:
        proxied_env = {**env, "AWS_S3_ENDPOINT": proxy.endpoint}
        server = bemidb_server(data_dir, env=proxied_env, log_level="INFO")
        proxy.delay_s = 0.2
        outcome: dict = {}

        def long_query() -> None:
            with psycopg.connect(server.dsn(), autocommit=True) as conn:
                try:
                    outcome["rows"] = conn.execute(SUM_SQL).fetchone()
                except psycopg.Error as exc:
                    outcome["error"] = exc

        proxy.reset()
        running = threading.Thread(target=long_query)
        running.start()
        deadline = time.monotonic() + 30
        while proxy.requests == 0 and time.monotonic() < deadline:  # the query is reading: now
            time.sleep(0.01)
        own_s3.stop()  # SIGKILL mid-query
        running.join(timeout=120)
        assert not running.is_alive()
        if "error" in outcome:  # (the query may have finished before the kill on a fast machine)
            assert outcome["error"].sqlstate == "58030", str(outcome["error"])
        else:
            assert outcome["rows"] == EXPECTED
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)  # S3 down: the server still answers
        proxy.delay_s = 0
        own_s3.start()
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            assert conn.execute(SUM_SQL).fetchone() == EXPECTED
        assert server.alive()
    finally:
        proxy.stop()
