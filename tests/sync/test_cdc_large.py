"""CDC with more changes than a drain holds at once (cdc_collect.CHUNK_ROWS): a million-row transaction in
bounded memory (the process's measured peak RSS), and a run killed between the commits of one big
transaction resumes exactly once."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.compute as pc

from bemidb.storage.catalog import PROP_CDC_LSN
from tests.support.cdc import cdc as _cdc
from tests.support.cdc import (
    cdc_source,  # noqa: F401 - the `source` fixture
    killed_at,
    slot_position,
)
from tests.support.cdc import rows as _rows
from tests.support.cdc import source_rows as _source
from tests.support.cdc import table as _table
from tests.support.commands import popen_bemidb

PEAK_RSS_BOUND_MB = 600  # generous (365 MB measured); the whole transaction held at once took 905 MB


def _peak_rss_mb(process) -> float:
    """The process's own high-water RSS (VmHWM, not reset by anything), read until it exits."""
    peak = 0.0
    while process.poll() is None:
        try:
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.05)
    return peak


def test_a_million_row_transaction_is_applied_in_bounded_memory(source, data_dir):
    source("CREATE TABLE big (id int PRIMARY KEY, v text); INSERT INTO big VALUES (0, 'before')")
    _cdc(source.url, data_dir)
    # One transaction: a million rows of ~130 bytes, and an update of the row copied before.
    source("BEGIN; INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 1000000) g;"
           "UPDATE big SET v = 'after' WHERE id = 0; COMMIT")
    process = popen_bemidb("sync", "postgres", "--sync-mode", "cdc", "--database-url", source.url, "--data-dir",
                           str(data_dir))
    peak = _peak_rss_mb(process)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr.decode()
    assert peak < PEAK_RSS_BOUND_MB, f"peak RSS {peak:.0f} MB"
    arrow = _table(data_dir, "big").scan().to_arrow()
    facts = _source(source.url, "SELECT count(*) AS n, sum(length(v)) AS chars, max(id) AS top FROM big")[0]
    assert arrow.num_rows == facts["n"] == 1_000_001
    assert pc.sum(pc.utf8_length(arrow.column("v"))).as_py() == facts["chars"]
    assert arrow.filter(pc.equal(arrow.column("id"), 0)).column("v").to_pylist() == ["after"]

def test_a_transaction_bigger_than_memory_is_seen_whole_or_not_at_all_and_resumes_exactly_once(source, data_dir):
    env = {"BEMIDB_CDC_CHUNK_ROWS": "1000"}
    big = "(SELECT string_agg(md5(random()::text || n), '') FROM generate_series(1, 300) n)"  # TOASTed, > 8 kB
    source("CREATE TABLE acct (id int PRIMARY KEY, balance int, doc text);"
           "ALTER TABLE acct ALTER doc SET STORAGE EXTERNAL;"
           f"INSERT INTO acct SELECT g, 100, {big} FROM generate_series(1, 50) g")
    _cdc(source.url, data_dir, env=env)
    expected = "SELECT * FROM acct ORDER BY id"
    before_rows = _rows(data_dir, "acct")
    # One transaction of 5,000 inserts, updates that leave the large values unsent (twice for some rows,
    # once after a new large value), a changed key and deletes, spread over several parts.
    source("BEGIN; UPDATE acct SET balance = 1 WHERE id <= 10;"
           f"UPDATE acct SET doc = {big} WHERE id IN (3, 4);"
           "INSERT INTO acct SELECT g, g, 'small' FROM generate_series(1000, 5999) g;"
           "UPDATE acct SET balance = 2 WHERE id <= 5; UPDATE acct SET id = id + 10000 WHERE id = 7;"
           "DELETE FROM acct WHERE id BETWEEN 1000 AND 1100 OR id = 20;"
           "UPDATE acct SET balance = 3 WHERE id BETWEEN 2000 AND 2010; COMMIT")
    before = slot_position(source.url)
    # Killed with three parts written, then with every part written and the commit not made: a reader sees
    # the table as it was before the transaction, and the source still holds every change.
    for point in ("stage#3", "commit"):
        killed_at(source.url, data_dir, point, env=env)
        table = _table(data_dir, "acct")
        assert _rows(data_dir, "acct") == before_rows and table.properties[PROP_CDC_LSN] == "0/0"
        assert slot_position(source.url) == before
    _cdc(source.url, data_dir, env=env)  # the whole transaction, in one commit
    assert _rows(data_dir, "acct") == _source(source.url, expected)
    assert all(len(r["doc"]) > 8000 for r in _rows(data_dir, "acct") if r["id"] <= 50 or r["id"] == 10007)
    source("UPDATE acct SET balance = 0 WHERE id IN (1, 3)")
    _cdc(source.url, data_dir, env=env)
    assert _rows(data_dir, "acct") == _source(source.url, expected)


def test_a_truncate_inside_a_transaction_bigger_than_memory(source, data_dir):
    """Parts staged before a TRUNCATE in the same transaction are dropped with the stored rows; the rows
    inserted after it, spread over parts, are all that is left."""
    env = {"BEMIDB_CDC_CHUNK_ROWS": "1000"}
    source("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'old' FROM generate_series(1, 100) g")
    _cdc(source.url, data_dir, env=env)
    source("BEGIN; INSERT INTO t SELECT g, 'a' FROM generate_series(101, 3000) g; TRUNCATE t;"
           "INSERT INTO t SELECT g, 'b' FROM generate_series(1, 2500) g; UPDATE t SET v = 'c' WHERE id % 7 = 0;"
           "DELETE FROM t WHERE id % 11 = 0; COMMIT")
    _cdc(source.url, data_dir, env=env)
    assert _rows(data_dir, "t") == _source(source.url, "SELECT * FROM t ORDER BY id")
