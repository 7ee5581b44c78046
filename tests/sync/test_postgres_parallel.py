"""Parallel extraction: several tables at once and a big table in ctid ranges over several connections, all in
ONE snapshot even while the source is being written to; never more connections than --threads."""

from __future__ import annotations

import random
import threading
import time
from argparse import Namespace

import psycopg
import pytest

from bemidb.config import Config
from bemidb.storage.catalog import open_catalog
from bemidb.sync import parallel, postgres_source
from bemidb.sync import postgres as sync_postgres
from tests.support.commands import run_bemidb

ACCOUNTS = 20_000
TOTAL = ACCOUNTS * 100


@pytest.fixture
def source(pg):
    url = pg.create_database("parallel_extraction")
    with psycopg.connect(url, autocommit=True) as conn:
        # Wide rows, so the table spans a few hundred pages and an update moves its row to another page.
        conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL, pad text NOT NULL)")
        conn.execute(f"INSERT INTO accounts SELECT i, 100, repeat('x', 200) FROM generate_series(1, {ACCOUNTS}) i")
        conn.execute("CREATE TABLE ledger (n serial PRIMARY KEY, amount int)")
        conn.execute("CREATE TABLE counter (done int)")
        conn.execute("INSERT INTO counter VALUES (0)")
        for i in range(4):
            conn.execute(f"CREATE TABLE small_{i} AS SELECT g AS id FROM generate_series(1, 100) g")
        conn.execute("VACUUM ANALYZE")
    return url


class Writer(threading.Thread):
    """Transfers between random accounts (the sum never changes), each also logged in `ledger` and counted
    in `counter` in the same transaction; samples how many other sessions are connected."""

    def __init__(self, url: str, database: str):
        super().__init__(daemon=True)
        self.url, self.database = url, database
        self.stop = threading.Event()
        self.transfers = 0
        self.most_sessions = 0

    def run(self) -> None:
        rng = random.Random(3)
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                a, b = rng.sample(range(1, ACCOUNTS + 1), 2)
                with conn.transaction():
                    conn.execute("UPDATE accounts SET balance = balance - 7 WHERE id = %s", (a,))
                    conn.execute("UPDATE accounts SET balance = balance + 7 WHERE id = %s", (b,))
                    conn.execute("INSERT INTO ledger (amount) VALUES (7)")
                    conn.execute("UPDATE counter SET done = done + 1")
                self.transfers += 1
                if self.transfers % 20 == 0:
                    sessions = conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
                        "AND backend_type = 'client backend'", (self.database,)).fetchone()[0]
                    self.most_sessions = max(self.most_sessions, sessions)


def _sync_in_process(url: str, data_dir, threads: int, include: list[str] | None = None) -> int:
    cfg = Config({"data_dir": str(data_dir), "source_postgres_database_url": url,
                  "source_postgres_threads": threads, "source_postgres_include_tables": include or []})
    return sync_postgres.run(cfg, Namespace(full_refresh=False, delete_old_tables=False))


def _check_accounts(catalog) -> None:
    rows = catalog.load_table(("public", "accounts")).scan(selected_fields=("id", "balance")).to_arrow()
    ids = rows.column("id").to_pylist()
    assert len(ids) == ACCOUNTS and len(set(ids)) == ACCOUNTS  # no row twice, none missing
    assert sum(rows.column("balance").to_pylist()) == TOTAL


def test_ranges_and_tables_in_parallel_see_one_snapshot_under_concurrent_writes(source, data_dir, monkeypatch):
    monkeypatch.setattr(parallel, "MIN_PART_PAGES", 50)  # split even this small table
    writer = Writer(source, "parallel_extraction")
    writer.start()
    try:
        while writer.transfers < 50:
            time.sleep(0.05)
        before = writer.transfers
        # Every table, several at once; accounts, the largest, first and over all 3 connections (3 ctid ranges,
        # one set of files each), the small tables after it.
        assert _sync_in_process(source, data_dir, threads=3) == 0
        catalog = open_catalog(Config({"data_dir": str(data_dir)}))
        _check_accounts(catalog)
        assert len(list(catalog.load_table(("public", "accounts")).scan().plan_files())) == 3
        # Tables read on different connections agree with each other: the same transfers are in both.
        ledger = catalog.load_table(("public", "ledger")).scan().to_arrow().num_rows
        [done] = catalog.load_table(("public", "counter")).scan().to_arrow().column("done").to_pylist()
        assert ledger == done > 0
        # accounts alone: read as 3 ctid ranges again.
        assert _sync_in_process(source, data_dir, threads=3, include=["public.accounts"]) == 0
        during = writer.transfers - before
    finally:
        writer.stop.set()
        writer.join()
    assert during > 0  # the source really changed while the sync read it
    accounts = catalog.load_table(("public", "accounts"))
    assert len(list(accounts.scan().plan_files())) == 3  # one set of files per ctid range
    _check_accounts(catalog)
    assert 1 <= writer.most_sessions <= 3


def test_threads_flag_and_env_bound_the_connections(source, data_dir, pg):
    result = run_bemidb("sync", "postgres", "--database-url", source, "--data-dir", str(data_dir), "--threads", "0")
    assert result.returncode == 2 and "--threads" in result.stderr
    result = run_bemidb("sync", "postgres", "--database-url", source, "--data-dir", str(data_dir),
                        env={"SOURCE_POSTGRES_THREADS": "2"})
    assert result.returncode == 0, result.stderr
    catalog = open_catalog(Config({"data_dir": str(data_dir)}))
    assert {t[-1] for t in catalog.list_tables("public")} == {"accounts", "ledger", "counter", "small_0", "small_1",
                                                              "small_2", "small_3"}


def test_ctid_ranges_cover_every_page_once():
    assert parallel.ctid_ranges(100, 1) == [""]
    assert parallel.ctid_ranges(100, 3) == [" WHERE ctid < '(33,0)'::tid",
                                            " WHERE ctid >= '(33,0)'::tid AND ctid < '(66,0)'::tid",
                                            " WHERE ctid >= '(66,0)'::tid"]
    assert parallel.wanted_parts(parallel.MIN_PART_PAGES * 10, 4) == 4
    assert parallel.wanted_parts(parallel.MIN_PART_PAGES - 1, 4) == 1


def test_largest_tables_first_each_over_all_its_ranges_connections(source):
    """Tables under one range's size go first; then big tables, largest first, each waiting for the
    connections of all its ranges, even when the previous one still holds them. Never more than `limit`
    connections."""
    first = postgres_source.connect(source)
    postgres_source.begin_snapshot(first)
    pool = parallel.SourcePool(source, first, limit=2)
    big = parallel.MIN_PART_PAGES * 2
    jobs = [parallel.TableJob(("public", name), pages) for name, pages in
            [("small_a", 1), ("big_b", big), ("small_c", 2), ("big_a", big + 1)]]
    # An incremental step is read in one piece: it holds no connection for ranges it will not read.
    jobs.append(parallel.TableJob(("public", "big_incremental"), big + 2, splittable=False))
    started: list[tuple[str, int]] = []

    def work(job, conn):
        started.append((job.key[1], len(job.extras)))
        assert conn.run("SELECT 1") == [[1]]
        time.sleep(0.3)  # the next job's connections are still held when it is picked
        return True

    try:
        parallel.run_tables(pool, jobs, work)
    finally:
        pool.close()
    assert sorted(started[:2]) == [("small_a", 0), ("small_c", 0)]  # done in a moment, kept if stopped later
    assert started[2:] == [("big_incremental", 0), ("big_a", 1), ("big_b", 1)]
    assert pool.opened <= 2
