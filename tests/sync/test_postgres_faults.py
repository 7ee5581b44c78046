"""A sync killed with SIGKILL mid-table: readers keep the old snapshot, the next sync succeeds and its vacuum
removes the orphaned files. Locally and on S3 (SeaweedFS)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg

from bemidb.config import Config
from bemidb.storage.catalog import open_catalog
from tests.support.commands import REPO, popen_bemidb, run_bemidb
from tests.support.processes import wait_for


def _popen_sync(url, data_dir, env=None):
    return popen_bemidb("sync", "postgres", "--database-url", url, "--data-dir", str(data_dir),
                        "--include", "public.big", env=env)


def _parquet_files(data_dir: Path) -> set[Path]:
    return set(data_dir.rglob("*.parquet"))


def _referenced(table) -> set[str]:
    return {task.file.file_path.removeprefix("file://") for task in table.scan().plan_files()}


def test_sigkill_mid_table_keeps_old_snapshot_and_next_sync_cleans_up(pg, data_dir):
    url = pg.create_database("h3_kill_local")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE big AS SELECT g::int8 AS id, md5(g::text) AS h FROM generate_series(1, 10) g")
    assert run_bemidb("sync", "postgres", "--database-url", url, "--data-dir", str(data_dir)).returncode == 0
    before = _parquet_files(data_dir)
    with psycopg.connect(url, autocommit=True) as conn:
        # 1.1M rows: the first row group (1M rows) is flushed to a new file well before the end of the COPY
        conn.execute("INSERT INTO big SELECT g, md5(g::text) FROM generate_series(11, 1100000) g")

    process = _popen_sync(url, data_dir)
    wait_for(lambda: _parquet_files(data_dir) - before, process, "the first new data file")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    orphans = _parquet_files(data_dir) - before
    assert orphans

    catalog = open_catalog(Config({"data_dir": str(data_dir)}))
    table = catalog.load_table(("public", "big"))
    assert table.scan().to_arrow().num_rows == 10  # the old snapshot, complete

    result = run_bemidb("sync", "postgres", "--database-url", url, "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    table = catalog.load_table(("public", "big"))
    arrow = table.scan().to_arrow()
    assert arrow.num_rows == 1100000 and max(arrow.column("id").to_pylist()) == 1100000
    assert not any(orphan.exists() for orphan in orphans)  # removed by the vacuum that follows each sync

    # `bemidb vacuum --keep-snapshots 1`: only the current snapshot and its files remain
    result = run_bemidb("vacuum", "--data-dir", str(data_dir), "--keep-snapshots", "1")
    assert result.returncode == 0, result.stderr
    table = catalog.load_table(("public", "big"))
    assert len(table.metadata.snapshots) == 1
    assert {str(p) for p in _parquet_files(data_dir)} == _referenced(table)
    assert table.scan().to_arrow().num_rows == 1100000


def test_sigkill_mid_table_on_s3(pg, s3, bucket, data_dir):
    url = pg.create_database("h3_kill_s3")
    env = s3.env(bucket)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE big AS SELECT g::int8 AS id, md5(g::text) AS h FROM generate_series(1, 10) g")
    result = run_bemidb("sync", "postgres", "--database-url", url, "--data-dir", str(data_dir), env=env)
    assert result.returncode == 0, result.stderr
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO big SELECT g, md5(g::text) FROM generate_series(11, 600000) g")

    def copy_running() -> bool:
        with psycopg.connect(url, autocommit=True) as conn:
            return bool(conn.execute("SELECT 1 FROM pg_stat_activity WHERE query LIKE 'COPY%big%'").fetchall())

    process = _popen_sync(url, data_dir, env)
    wait_for(copy_running, process, "the COPY")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    catalog = open_catalog(Config({"data_dir": str(data_dir), "aws_s3_bucket": bucket,
                                   "aws_s3_endpoint": env["AWS_S3_ENDPOINT"], "aws_region": env["AWS_REGION"],
                                   "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
                                   "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"]}))
    assert catalog.load_table(("public", "big")).scan().to_arrow().num_rows == 10

    result = run_bemidb("sync", "postgres", "--database-url", url, "--data-dir", str(data_dir), env=env)
    assert result.returncode == 0, result.stderr
    assert catalog.load_table(("public", "big")).scan().to_arrow().num_rows == 600000


def test_source_restarted_mid_copy_fails_clearly_and_keeps_old_data(data_dir):
    """Its own Postgres (restarting the shared one would disturb other tests)."""
    from tests.support.postgres import PostgresCluster, find_bin_dir

    cluster = PostgresCluster(find_bin_dir()).start()
    try:
        url = cluster.url()
        cluster.execute("postgres", "CREATE TABLE big AS SELECT g::int8 AS id FROM generate_series(1, 10) g;"
                                    "CREATE TABLE later (id int)")
        result = run_bemidb("sync", "postgres", "--database-url", url, "--data-dir", str(data_dir))
        assert result.returncode == 0, result.stderr
        cluster.execute("postgres", "INSERT INTO big SELECT g FROM generate_series(11, 1500000) g")

        def copy_running() -> bool:
            return bool(cluster.execute("postgres", "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'COPY%big%'"))

        process = subprocess.Popen(
            # One connection: `later` then surely waits behind `big` (with more, it may finish first).
            [sys.executable, "-m", "bemidb", "sync", "postgres", "--database-url", url, "--data-dir", str(data_dir),
             "--threads", "1"],
            env={**{k: v for k, v in os.environ.items() if not k.startswith(("BEMIDB_", "AWS_", "SOURCE_"))},
                 "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(copy_running, process, "the COPY")
        cluster.restart()
        _stdout, stderr = process.communicate(timeout=120)
        stderr = stderr.decode()
        assert process.returncode == 1, stderr
        assert "public.big: FAILED" in stderr and "connection" in stderr
        assert "public.later: FAILED: not synced: source connection lost" in stderr
        assert "Traceback" not in stderr
        catalog = open_catalog(Config({"data_dir": str(data_dir)}))
        assert catalog.load_table(("public", "big")).scan().to_arrow().num_rows == 10
        # and the next run, with the source back, succeeds
        result = run_bemidb("sync", "postgres", "--database-url", url, "--data-dir", str(data_dir))
        assert result.returncode == 0, result.stderr
        assert catalog.load_table(("public", "big")).scan().to_arrow().num_rows == 1500000
    finally:
        cluster.destroy()


def test_abandoned_copy_cancel_never_hits_the_next_statement(pg):
    """The sync cancels a COPY it stops reading (e.g. to re-read a table exactly). When the COPY had already
    finished, that CancelRequest used to land on the NEXT statement and fail the table's re-read."""
    from bemidb.sync import postgres_source as source
    from bemidb.sync.postgres_copy import copy_csv_chunks

    url = pg.create_database("h3_late_cancel")
    pg.execute("h3_late_cancel", "CREATE TABLE small AS SELECT g AS id FROM generate_series(1, 3) g")
    conn = source.connect(url)
    try:
        source.begin_snapshot(conn)
        for _ in range(20):
            conn.run("SAVEPOINT s")
            chunks = copy_csv_chunks(conn, "SELECT id FROM small")
            assert next(chunks) is not None  # the whole table is in the first chunk: the COPY is done
            chunks.close()  # the consumer gives up early, as on a value it must re-read exactly
            conn.run("ROLLBACK TO SAVEPOINT s")
            # the statement after must run normally, however late the cancel arrived
            assert conn.run("SELECT count(*) FROM small") == [[3]]
    finally:
        conn.close()
