"""CDC under faults: a run SIGKILLed at every point (reading the slot, files written, committed before the
slot moved) and a source restart mid-drain resume exactly once; a follower outlives a source restart."""

from __future__ import annotations

import signal

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
from tests.support.processes import wait_for

READING_SLOT = ("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() "
                "AND query LIKE '%pg_logical_slot_peek_binary_changes%'")


def test_killed_at_every_point_resumes_exactly_once(source, data_dir):
    source("CREATE TABLE acct (id int PRIMARY KEY, balance int, note text);"
           "INSERT INTO acct SELECT g, 100, 'n' FROM generate_series(1, 50) g")
    _cdc(source.url, data_dir)
    expected = "SELECT * FROM acct ORDER BY id"

    # 1. Killed while reading the slot, and 2. with the new files written but not committed: nothing changes.
    source("INSERT INTO acct SELECT g, g, repeat('x', 200) FROM generate_series(51, 60000) g;"
           "UPDATE acct SET balance = balance - 1 WHERE id <= 10; DELETE FROM acct WHERE id = 20")

    def reading():
        return _source(source.url, READING_SLOT)[0]["count"]

    before = slot_position(source.url)
    process = popen_bemidb("sync", "postgres", "--sync-mode", "cdc", "--database-url", source.url, "--data-dir",
                           str(data_dir))
    wait_for(reading, process, "the slot being read")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    killed_at(source.url, data_dir, "commit")
    assert len(_rows(data_dir, "acct")) == 50 and _table(data_dir, "acct").properties[PROP_CDC_LSN] == "0/0"
    assert slot_position(source.url) == before  # the source still holds every change

    # 3. Killed after the commit, before the slot moved: the next run must not apply those changes again.
    killed_at(source.url, data_dir, "advance")
    assert _rows(data_dir, "acct") == _source(source.url, expected)
    assert slot_position(source.url) == before
    committed = _table(data_dir, "acct").current_snapshot().snapshot_id
    _cdc(source.url, data_dir)
    assert _table(data_dir, "acct").current_snapshot().snapshot_id == committed  # skipped, not re-applied
    assert slot_position(source.url) != before
    source("UPDATE acct SET balance = 0 WHERE id = 1")
    _cdc(source.url, data_dir)
    assert _rows(data_dir, "acct") == _source(source.url, expected)


def test_a_source_restart_mid_drain_fails_cleanly_and_the_next_run_resumes(own_postgres, data_dir):
    url = own_postgres.url()
    own_postgres.execute("postgres", "CREATE TABLE t (id int PRIMARY KEY, v text);"
                                     "INSERT INTO t SELECT g, 'a' FROM generate_series(1, 100) g")
    _cdc(url, data_dir)
    own_postgres.execute("postgres", "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(101, 300000) g;"
                                     "UPDATE t SET v = 'b' WHERE id <= 50")

    def reading():
        return own_postgres.execute("postgres", READING_SLOT)[0][0]

    # Changes under one chunk (cdc_collect.CHUNK_ROWS): applied in one commit or not at all.
    process = popen_bemidb("sync", "postgres", "--sync-mode", "cdc", "--database-url", url, "--data-dir",
                           str(data_dir), env={"BEMIDB_CDC_CHUNK_ROWS": "1000000"})
    wait_for(reading, process, "the slot being read")
    own_postgres.restart("fast")
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0, stderr.decode()
    assert "Traceback" not in stderr.decode(), stderr.decode()
    assert len(_rows(data_dir, "t")) == 100  # nothing half-applied
    _cdc(url, data_dir)
    assert _rows(data_dir, "t") == _source(url, "SELECT * FROM t ORDER BY id")


def test_a_follower_outlives_a_source_restart(own_postgres, data_dir):
    url = own_postgres.url()
    own_postgres.execute("postgres", "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a')")
    follower = popen_bemidb("sync", "postgres", "--sync-mode", "cdc", "--follow", "--commit-interval", "1s",
                            "--database-url", url, "--data-dir", str(data_dir))
    try:
        wait_for(lambda: _table_exists(data_dir, "t"), follower, "the first copy", timeout=60)
        own_postgres.restart("fast")
        own_postgres.execute("postgres", "INSERT INTO t VALUES (2, 'after the restart')")
        wait_for(lambda: len(_rows(data_dir, "t")) == 2, follower, "the change after the restart", timeout=60)
    finally:
        follower.send_signal(signal.SIGTERM)
        code = follower.wait(timeout=60)
    stderr = follower.stderr.read().decode()
    assert code == 0, stderr
    assert "retrying in 1s" in stderr
    assert _rows(data_dir, "t") == _source(url, "SELECT * FROM t ORDER BY id")


def _table_exists(data_dir, name):
    try:
        return _table(data_dir, name) is not None
    except Exception:  # noqa: BLE001 - not created yet
        return False
