"""A sync to S3 that is killed mid-upload, or whose S3 goes away half-way through the upload, leaves the tables
a running server serves exactly as they were; the next sync then lands whole, and the server picks it up."""

from __future__ import annotations

import signal
import time

import psycopg
import pytest

from tests.support.commands import popen_bemidb, run_bemidb
from tests.support.processes import wait_for
from tests.support.server import bemidb_server  # noqa: F401 - fixture
from tests.support.tcp_proxy import TcpProxy

NEW_ROWS = 600_000  # tens of MB of Parquet: a multipart upload, long enough to break in the middle


@pytest.fixture
def served(pg, s3, bucket, data_dir, bemidb_server, request):  # noqa: F811
    """A source table synced to S3 and served; the environment of syncs that reach S3 through a proxy."""
    url = pg.create_database(f"s3_sync_{request.node.name[-20:].lower()}_{int(time.time() * 1000) % 100000}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE big AS SELECT g::int8 AS id, md5(g::text) AS h FROM generate_series(1, 10) g")
    env = {**s3.env(bucket), "BEMIDB_DATA_DIR": str(data_dir)}
    run_bemidb("sync", "postgres", "--database-url", url, env=env, check=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text) "
                     f"FROM generate_series(11, {NEW_ROWS}) g")
    server = bemidb_server(data_dir, env=env, log_level="INFO")
    proxy = TcpProxy("127.0.0.1", s3.s3_port).start()
    yield url, env, {**env, "AWS_S3_ENDPOINT": proxy.endpoint}, server, proxy
    proxy.stop()


def _served_rows(server) -> tuple:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        return conn.execute("SELECT count(*), max(id) FROM big").fetchone()


def _next_sync_lands(url, env, server) -> None:
    run_bemidb("sync", "postgres", "--database-url", url, env=env, check=True)
    deadline = time.monotonic() + 15
    while _served_rows(server) != (NEW_ROWS, NEW_ROWS):
        assert time.monotonic() < deadline, _served_rows(server)
        time.sleep(0.3)


def test_sync_killed_mid_upload_leaves_the_served_table_as_it_was(served):
    url, env, proxied_env, server, proxy = served
    process = popen_bemidb("sync", "postgres", "--database-url", url, env=proxied_env)
    wait_for(lambda: proxy.bytes_up > 2 << 20, process, "the upload")  # parts of the new file are in S3
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    time.sleep(1.5)  # longer than the server's catalog refresh interval
    assert _served_rows(server) == (10, 10)
    _next_sync_lands(url, env, server)
    assert server.alive()


def test_s3_gone_half_way_through_the_upload_fails_the_sync_and_keeps_the_table(served):
    url, env, proxied_env, server, proxy = served
    proxy.break_after_up = 3 << 20  # S3 stops answering after 3 MB were uploaded
    result = run_bemidb("sync", "postgres", "--database-url", url, env=proxied_env, timeout=600)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    time.sleep(1.5)
    assert _served_rows(server) == (10, 10)
    _next_sync_lands(url, env, server)
    assert server.alive()
