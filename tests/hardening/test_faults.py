"""Faults, seen from the clients of a running server: a sync killed at the edges of its work (before its first
batch, inside its commit), syncs landing while 8 clients read the same table, the catalog Postgres restarted
under the server, S3 stopped under a query and under a sync.

The invariant everywhere: a reader sees one complete snapshot (old or new), never a mix and never half of one;
errors are ErrorResponses, never a dead server; and when the service is back, everything works again without
restarting anything. (A SIGKILL mid-table and a source restart mid-COPY are covered in tests/sync/test_postgres_faults.py.)
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.support import wire_client as wire
from tests.support.commands import REPO, run_bemidb
from tests.support.server import bemidb_server, start_server  # noqa: F401 - fixture

ROWS = 20_000  # generation g of the source table: ROWS + g rows, every row's gen = g


def fill_generation(url: str, gen: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS t")
        conn.execute("CREATE TABLE t (id int8 PRIMARY KEY, gen int4 NOT NULL, pad text)")
        conn.execute("INSERT INTO t SELECT g, %s, repeat('x', 20) FROM generate_series(1, %s) g",
                     [gen, ROWS + gen])


def next_generation(url: str, gen: int) -> None:
    """Change the table in place (the sync copies it whole): every row moves to `gen`, one row more."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE t SET gen = %s", [gen])
        conn.execute("INSERT INTO t VALUES (%s, %s, 'new')", [ROWS + gen, gen])


def sync_env(data_dir: Path, extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BEMIDB_", "AWS_", "SOURCE_", "CATALOG_", "DESTINATION_"))}
    env.update({"BEMIDB_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO), **(extra or {})})
    return env


def sync(url: str, data_dir: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_bemidb("sync", "postgres", "--database-url", url, "--include", "public.t",
                      env={"BEMIDB_DATA_DIR": str(data_dir), **(env or {})}, timeout=300)


def popen_sync(url: str, data_dir: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bemidb", "sync", "postgres", "--database-url", url,
                             "--include", "public.t"], env=sync_env(data_dir, env), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(condition, what: str, process: subprocess.Popen | None = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"sync ended before {what}: {process.stderr.read().decode()[-2000:]}")
        time.sleep(0.02)
    if process is not None:
        process.kill()
    raise AssertionError(f"timed out waiting for {what}")


def snapshot_of(conn) -> tuple[int, int, int]:
    """(rows, min gen, max gen) of public.t as one query sees it."""
    return tuple(conn.execute("SELECT count(*), min(gen), max(gen) FROM public.t").fetchone())


def assert_whole_generation(seen: tuple[int, int, int], allowed: set[int]) -> None:
    rows, low, high = seen
    assert low == high, f"a mix of snapshots: gens {low}..{high}"
    assert low in allowed, f"generation {low} not expected (allowed {allowed})"
    assert rows == ROWS + low, f"generation {low} with {rows} rows: half a snapshot"


def files_under(root: Path, suffix: str) -> set[Path]:
    return set(root.rglob(f"*{suffix}"))


class Readers:
    """`count` clients querying public.t in a loop, each checking every answer is one whole generation."""

    def __init__(self, server, count: int, allowed: set[int]):
        self.server = server
        self.allowed = allowed
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.queries = 0
        self.seen: set[int] = set()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.loop, args=(i,)) for i in range(count)]

    def loop(self, index: int) -> None:
        try:
            with psycopg.connect(self.server.dsn(), autocommit=True, connect_timeout=30) as conn:
                while not self.stop.is_set():
                    if index % 2:
                        seen = snapshot_of(conn)
                    else:  # the whole table streamed: a refresh landing mid-stream must not mix files
                        rows = conn.execute("SELECT gen FROM public.t").fetchall()
                        gens = {r[0] for r in rows}
                        seen = (len(rows), min(gens), max(gens))
                    assert_whole_generation(seen, self.allowed)
                    with self.lock:
                        self.queries += 1
                        self.seen.add(seen[1])
        except Exception as exc:  # counted, reported by the test
            with self.lock:
                self.errors.append(f"reader {index}: {type(exc).__name__}: {exc}")

    def __enter__(self) -> Readers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


# ---------------------------------------------------------------------------------------------------------


@pytest.mark.slow  # about a minute: three syncs while 8 clients read
def test_syncs_landing_while_8_clients_read_never_show_a_mix(pg, data_dir, bemidb_server):  # noqa: F811
    url = pg.create_database("hard_faults_readers")
    fill_generation(url, 1)
    assert sync(url, data_dir).returncode == 0
    server = bemidb_server(data_dir, log_level="INFO")
    with Readers(server, 8, allowed={1, 2, 3, 4}) as readers:
        for gen in (2, 3, 4):
            next_generation(url, gen)
            result = sync(url, data_dir)
            assert result.returncode == 0, result.stderr
            time.sleep(1.5)  # the server notices a new snapshot within about a second
    print(f"\nFAULTS readers=8 queries={readers.queries} errors={len(readers.errors)} gens={sorted(readers.seen)}")
    assert not readers.errors, readers.errors[:5]
    assert readers.queries > 16
    assert 4 in readers.seen, "the readers never saw the last sync"
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        assert_whole_generation(snapshot_of(conn), {4})


def hold_catalog_write_lock(data_dir: Path) -> sqlite3.Connection:
    """Take SQLite's write lock on the embedded catalog: a commit (UPDATE iceberg_tables) now waits, readers
    (WAL mode) do not."""
    lock = sqlite3.connect(data_dir / "catalog.db", timeout=30, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    return lock


def test_sync_killed_during_its_commit_leaves_the_old_snapshot(pg, data_dir, bemidb_server):  # noqa: F811
    url = pg.create_database("hard_faults_commit")
    fill_generation(url, 1)
    assert sync(url, data_dir).returncode == 0
    server = bemidb_server(data_dir, log_level="INFO")
    metadata_dir = data_dir / "warehouse" / "public" / "t" / "metadata"
    data_files_before = files_under(data_dir / "warehouse", ".parquet")
    metadata_before = files_under(metadata_dir, ".metadata.json")
    next_generation(url, 2)

    with Readers(server, 4, allowed={1}) as readers:
        lock = hold_catalog_write_lock(data_dir)
        try:
            process = popen_sync(url, data_dir)
            # The new metadata file is written just before the catalog row is swung to it: the sync is now
            # inside its commit, waiting for our lock. Kill it right there.
            wait_for(lambda: files_under(metadata_dir, ".metadata.json") - metadata_before,
                     "the new metadata file (the commit)", process)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        time.sleep(1.5)  # readers keep going across the kill and the lock release
    assert not readers.errors, readers.errors[:5]
    assert readers.seen == {1}
    orphans = files_under(data_dir / "warehouse", ".parquet") - data_files_before
    assert orphans, "the sync was killed before writing data: this test did not reach the commit"

    result = sync(url, data_dir)  # the next sync succeeds and its vacuum removes what the killed one left
    assert result.returncode == 0, result.stderr
    assert not [p for p in orphans if p.exists()], "orphaned data files of the killed sync remain"
    time.sleep(1.5)
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        assert_whole_generation(snapshot_of(conn), {2})


def test_sync_killed_before_its_first_batch_changes_nothing(pg, data_dir, bemidb_server):  # noqa: F811
    url = pg.create_database("hard_faults_before")
    fill_generation(url, 1)
    assert sync(url, data_dir).returncode == 0
    server = bemidb_server(data_dir, log_level="INFO")
    next_generation(url, 2)
    files_before = files_under(data_dir / "warehouse", "")
    with psycopg.connect(url, autocommit=False) as blocker:
        blocker.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")  # the sync's read of t waits behind this
        process = popen_sync(url, data_dir)

        def waiting_on_lock() -> bool:
            with psycopg.connect(url, autocommit=True) as conn:
                return bool(conn.execute("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                         "AND datname = current_database()").fetchall())

        wait_for(waiting_on_lock, "the sync to wait for the source table", process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        blocker.rollback()
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        assert_whole_generation(snapshot_of(conn), {1})
    assert not [p for p in files_under(data_dir / "warehouse", ".parquet") if p not in files_before]
    result = sync(url, data_dir)
    assert result.returncode == 0, result.stderr
    time.sleep(1.5)
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        assert_whole_generation(snapshot_of(conn), {2})


# ---------------------------------------------------------------------------------------------------------
# Services going away under a running server


def query_outcome(server, sql: str) -> tuple[str, object]:
    """('ok', rows) or ('error', sqlstate); a dropped connection or a dead server is neither (raises)."""
    client = wire.RawClient(server.host, server.port, timeout=120)
    try:
        assert client.startup()[-1].tag == b"Z"
        replies = client.simple(sql)
    finally:
        client.close()
    found = wire.errors(replies)
    if found:  # an outage is the client's business, our internals are not
        text = " ".join(found[0].fields().values())
        assert "Traceback" not in text and 'File "' not in text, found[0].fields()
        assert found[0].sqlstate != "XX000", found[0].fields()
    return ("error", found[0].sqlstate) if found else ("ok", wire.rows(replies))


def test_catalog_postgres_restart_under_a_running_server(pg, own_postgres, data_dir):
    source = pg.create_database("hard_faults_catalog_src")
    fill_generation(source, 1)
    catalog_url = own_postgres.url()
    env = {"CATALOG_DATABASE_URL": catalog_url}
    result = sync(source, data_dir, env)
    assert result.returncode == 0, result.stderr
    server = start_server(data_dir, env=env, log_level="INFO")
    try:
        assert query_outcome(server, "SELECT count(*) FROM public.t") == ("ok", [[str(ROWS + 1).encode()]])
        own_postgres.stop("immediate")
        time.sleep(1.5)  # the server's next catalog look fails while the catalog is down
        outcome = query_outcome(server, "SELECT count(*), min(gen) FROM public.t")
        # Either the last known snapshot (data files need no catalog) or a clear error: never half, never a drop.
        assert outcome in (("ok", [[str(ROWS + 1).encode(), b"1"]]),) or outcome[0] == "error", outcome
        assert server.alive()
        own_postgres._pg_ctl_start()
        next_generation(source, 2)
        result = sync(source, data_dir, env)
        assert result.returncode == 0, result.stderr
        deadline = time.monotonic() + 30
        outcome = None
        while time.monotonic() < deadline:  # the server reconnects by itself and shows the new snapshot
            outcome = query_outcome(server, "SELECT count(*), min(gen), max(gen) FROM public.t")
            if outcome == ("ok", [[str(ROWS + 2).encode(), b"2", b"2"]]):
                break
            time.sleep(0.5)
        assert outcome == ("ok", [[str(ROWS + 2).encode(), b"2", b"2"]]), outcome
        assert "internal error" not in server.log(), server.log()[-3000:]
    finally:
        server.stop()


def test_s3_stopped_under_a_query_and_a_sync_then_back(pg, own_s3, data_dir):
    source = pg.create_database("hard_faults_s3")
    fill_generation(source, 1)
    bucket = own_s3.create_bucket("hard-faults")
    env = own_s3.env(bucket)
    assert sync(source, data_dir, env).returncode == 0
    server = start_server(data_dir, env=env, log_level="INFO", extra_args=["--statement-timeout", "60s"])
    try:
        assert query_outcome(server, "SELECT count(*) FROM public.t") == ("ok", [[str(ROWS + 1).encode()]])
        own_s3.stop()
        # Mid-query: S3 is gone. A clear ErrorResponse (or data DuckDB already cached), never a hang or a drop.
        outcome = query_outcome(server, "SELECT count(*), min(gen), max(gen), max(pad) FROM public.t")
        print(f"\nFAULTS query with S3 stopped: {outcome}")
        assert outcome[0] == "error" or outcome == ("ok", [[str(ROWS + 1).encode(), b"1", b"1", b"x" * 20]])
        assert server.alive()
        # Mid-sync: the sync fails with one clear line and commits nothing.
        next_generation(source, 2)
        result = sync(source, data_dir, env)
        assert result.returncode != 0
        print(f"FAULTS sync with S3 stopped: exit {result.returncode}: {result.stderr.strip()[-300:]}")
        assert "Traceback" not in result.stderr, result.stderr[-2000:]
        assert len(result.stderr.strip().splitlines()) <= 3, result.stderr
        own_s3.start()
        outcome = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the server recovers by itself: still the old, whole snapshot
            outcome = query_outcome(server, "SELECT count(*), min(gen), max(gen) FROM public.t")
            if outcome[0] == "ok":
                break
            time.sleep(1)
        assert outcome == ("ok", [[str(ROWS + 1).encode(), b"1", b"1"]]), outcome
        result = sync(source, data_dir, env)
        assert result.returncode == 0, result.stderr
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            outcome = query_outcome(server, "SELECT count(*), min(gen), max(gen) FROM public.t")
            if outcome == ("ok", [[str(ROWS + 2).encode(), b"2", b"2"]]):
                break
            time.sleep(0.5)
        assert outcome == ("ok", [[str(ROWS + 2).encode(), b"2", b"2"]]), outcome
    finally:
        server.stop()
