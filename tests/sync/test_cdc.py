"""`bemidb sync postgres --sync-mode cdc`: a real Postgres 15 with wal_level=logical, the real CLI, tables read
back from Iceberg and through `bemidb serve`, compared with the source (the oracle) row by row."""

from __future__ import annotations

import signal

import psycopg
import pyarrow as pa
import pytest
from pyiceberg.manifest import ManifestContent

from bemidb import config
from bemidb.storage.catalog import PROP_CDC_LSN, PROP_CDC_SLOT, open_catalog
from bemidb.storage.changes import compact
from bemidb.sync.pgoutput import format_lsn
from tests.support.alltypes import SCHEMA_SQL
from tests.support.cdc import cdc as _cdc
from tests.support.cdc import cdc_source  # noqa: F401 - the `source` fixture
from tests.support.cdc import full as _full
from tests.support.cdc import rows as _rows
from tests.support.cdc import source_rows as _source
from tests.support.cdc import table as _table
from tests.support.commands import popen_bemidb, run_bemidb
from tests.support.processes import wait_for
from tests.support.server import bemidb_server  # noqa: F401 - fixture


def test_insert_update_delete_rollback_mix_matches_the_source(source, data_dir):
    source("CREATE TABLE items (id int PRIMARY KEY, name text, qty int, price numeric(10,2));"
           "INSERT INTO items SELECT g, 'item ' || g, g, g * 1.5 FROM generate_series(1, 100) g")
    _cdc(source.url, data_dir)
    table = _table(data_dir, "items")
    assert table.properties[PROP_CDC_SLOT] == "bemidb_public"
    assert len(_rows(data_dir, "items")) == 100
    source("INSERT INTO items SELECT g, 'new ' || g, g, 2 FROM generate_series(101, 120) g")
    source("UPDATE items SET qty = qty * 10, name = name || ' (upd)' WHERE id % 7 = 0")
    source("DELETE FROM items WHERE id % 11 = 0")
    source("UPDATE items SET price = 0 WHERE id = 105")
    source("INSERT INTO items VALUES (1000, 'inserted then deleted', 1, 1); DELETE FROM items WHERE id = 1000")
    with psycopg.connect(source.url) as conn:  # rolled back: must leave no trace
        conn.execute("INSERT INTO items VALUES (2000, 'rolled back', 1, 1)")
        conn.execute("DELETE FROM items WHERE id = 1")
        conn.rollback()
    _cdc(source.url, data_dir)
    assert _rows(data_dir, "items") == _source(source.url, "SELECT * FROM items ORDER BY id")
    lsn = _table(data_dir, "items").properties[PROP_CDC_LSN]
    assert lsn != "0/0"
    # Nothing new: the table is not committed again, and the result is unchanged.
    snapshot = _table(data_dir, "items").current_snapshot().snapshot_id
    _cdc(source.url, data_dir)
    assert _table(data_dir, "items").current_snapshot().snapshot_id == snapshot
    assert _rows(data_dir, "items") == _source(source.url, "SELECT * FROM items ORDER BY id")


def test_primary_key_update_truncate_and_toast(source, data_dir):
    # Values over 8 kB that do not compress, so Postgres stores them out of line (TOAST).
    big = "(SELECT string_agg(md5(random()::text || n), '') FROM generate_series(1, 300) n)"
    source("CREATE TABLE docs (id int PRIMARY KEY, title text, body text, meta jsonb, blob bytea);"
           "ALTER TABLE docs ALTER body SET STORAGE EXTERNAL;"
           f"INSERT INTO docs SELECT g, 't' || g, {big}, jsonb_build_object('k', {big}), decode({big}, 'hex') "
           "FROM generate_series(1, 20) g;"
           "CREATE TABLE wiped (id int PRIMARY KEY, v text); INSERT INTO wiped VALUES (1, 'a'), (2, 'b')")
    _cdc(source.url, data_dir)
    # Updates that do not touch the large (TOASTed, > 8 kB) values: pgoutput does not send them.
    source("UPDATE docs SET title = 'changed' WHERE id <= 5")
    source("UPDATE docs SET id = id + 100 WHERE id = 6")  # a changed primary key (large values unchanged)
    source("UPDATE docs SET title = 'twice' WHERE id = 106")
    source("UPDATE docs SET body = 'small now' WHERE id = 7")
    source("TRUNCATE wiped; INSERT INTO wiped VALUES (3, 'c')")
    _cdc(source.url, data_dir)
    assert _rows(data_dir, "docs") == _source(source.url, "SELECT id, title, body, meta::text AS meta, blob "
                                                          "FROM docs ORDER BY id")
    assert _rows(data_dir, "wiped") == [{"id": 3, "v": "c"}]
    assert all(len(r["body"]) > 8000 for r in _rows(data_dir, "docs") if r["id"] != 7)


def test_every_mapped_type_is_stored_as_a_full_refresh_stores_it(source, data_dir):
    """Rows arriving by CDC are decoded exactly as copied rows are: the full refresh of the same source is
    the oracle, value by value, for every type (arrays, jsonb, numeric, timestamptz, bytea, BC, infinity)."""
    create, inserts = SCHEMA_SQL.split("SET TimeZone = 'America/New_York';")
    source(create)
    _cdc(source.url, data_dir)  # copies the empty table
    source("SET TimeZone = 'America/New_York';" + inserts)
    source("UPDATE alltypes SET tx = 'updated', a_i4 = '{7,8}' WHERE id = 1")
    source("DELETE FROM alltypes WHERE id = 2")
    _cdc(source.url, data_dir)  # BC/infinite values in the batch: their columns are typed by the source
    _assert_same_as_full_refresh(source.url, data_dir)
    # Only ordinary values in the batch: every column pgoutput's text can carry is typed in-process.
    source("SET TimeZone = 'America/New_York'; UPDATE alltypes SET tx = 'again', d = d + 1, ts = ts + '1s', "
           "tstz = tstz + '1 day' WHERE id = 1")
    _cdc(source.url, data_dir)
    _assert_same_as_full_refresh(source.url, data_dir)
    # Compaction (here of every file) copies every type's values as they are, deleted rows dropped.
    assert compact(_table(data_dir, "alltypes"), after_files=0)
    assert not any(task.delete_files for task in _table(data_dir, "alltypes").scan().plan_files())
    _assert_same_as_full_refresh(source.url, data_dir)


def _assert_same_as_full_refresh(url, data_dir):
    _full(url, data_dir, "oracle")
    ours = _table(data_dir, "alltypes").scan().to_arrow().sort_by("id")
    theirs = _table(data_dir, "alltypes", "oracle").scan().to_arrow().sort_by("id")
    assert ours.num_rows == 4
    assert ours.schema.equals(theirs.schema)
    for name in ours.column_names:
        # Compared as storage values (BC and infinite dates are outside Python's range), NaN equal to NaN.
        mine, oracle = (_storage_values(t.column(name)) for t in (ours, theirs))
        assert mine == oracle, name


def _storage_values(column):
    column = column.combine_chunks()
    if pa.types.is_temporal(column.type):
        column = column.cast(pa.int64()) if not pa.types.is_date32(column.type) else column.cast(pa.int32())
    elif pa.types.is_list(column.type) and pa.types.is_temporal(column.type.value_type):
        width = pa.int32() if pa.types.is_date32(column.type.value_type) else pa.int64()
        column = column.cast(pa.list_(width))
    return repr(column.to_pylist())


def test_two_schemas_and_a_table_without_a_key(source, data_dir):
    source("CREATE SCHEMA shop; CREATE TABLE shop.orders (id int PRIMARY KEY, total int);"
           "CREATE TABLE public.users (id int PRIMARY KEY, name text); CREATE TABLE public.log (line text);"
           "CREATE TABLE public.gen (id int PRIMARY KEY, a int, twice int GENERATED ALWAYS AS (a * 2) STORED);"
           "INSERT INTO gen (id, a) VALUES (1, 1);"
           "INSERT INTO shop.orders VALUES (1, 10); INSERT INTO users VALUES (1, 'ann'); INSERT INTO log VALUES ('x')")
    first = _cdc(source.url, data_dir)
    assert "public.log: synced by full refresh, not CDC: no primary key" in first.stderr
    source("INSERT INTO shop.orders VALUES (2, 20); UPDATE users SET name = 'bob'; INSERT INTO log VALUES ('y')")
    _cdc(source.url, data_dir)
    assert _rows(data_dir, "shop_orders") == [{"id": 1, "total": 10}, {"id": 2, "total": 20}]
    assert _rows(data_dir, "users") == [{"id": 1, "name": "bob"}]
    assert sorted(r["line"] for r in _table(data_dir, "log").scan().to_arrow().to_pylist()) == ["x", "y"]
    assert "public.gen: synced by full refresh, not CDC: it has generated columns" in first.stderr
    source("UPDATE gen SET a = 5")
    _cdc(source.url, data_dir)
    assert _rows(data_dir, "gen") == [{"id": 1, "a": 5, "twice": 10}]


def test_lag_is_shown_and_drop_slot_removes_slot_and_publication(source, data_dir, pg):
    source("CREATE TABLE t (id int PRIMARY KEY, v text)")
    _cdc(source.url, data_dir)
    source("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
    wide = {"COLUMNS": "250"}
    tables = run_bemidb("tables", "--data-dir", str(data_dir), "--database-url", source.url, check=True, env=wide)
    assert "slot bemidb_public:" in tables.stdout and "of WAL held" in tables.stdout
    assert "(cdc 0/0)" in " ".join(tables.stdout.split())
    doctor = run_bemidb("doctor", "--data-dir", str(data_dir), "--database-url", source.url, "--port", "0",
                        env=wide)
    assert "slot bemidb_public:" in doctor.stdout, doctor.stdout
    _cdc(source.url, data_dir)
    lsn = _table(data_dir, "t").properties[PROP_CDC_LSN]
    assert f"(cdc {lsn})" in run_bemidb("tables", "--data-dir", str(data_dir), check=True, env=wide).stdout

    dropped = _cdc(source.url, data_dir, "--drop-slot")
    assert "dropped slot bemidb_public and publication bemidb_public" in " ".join(dropped.stdout.split())
    assert not pg.execute(source.url.rsplit("/", 1)[1], "SELECT 1 FROM pg_replication_slots UNION ALL "
                                                         "SELECT 1 FROM pg_publication")


def test_without_wal_level_logical_one_line_says_what_to_set(data_dir):
    from tests.support.postgres import PostgresCluster, find_bin_dir

    cluster = PostgresCluster(find_bin_dir())
    cluster.wal_level = "replica"
    cluster.start()
    try:
        cluster.execute("postgres", "CREATE TABLE t (id int PRIMARY KEY)")
        result = run_bemidb("sync", "postgres", "--database-url", cluster.url(), "--data-dir", str(data_dir),
                            env={"SOURCE_POSTGRES_SYNC_MODE": "CDC"})
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "wal_level = logical" in lines[0] and "(it is replica)" in lines[0]
        assert "rds.logical_replication" in lines[0]
    finally:
        cluster.destroy()


def test_an_invalidated_slot_is_replaced_and_the_tables_copied_again(own_postgres, data_dir):
    url = own_postgres.url()
    own_postgres.execute("postgres", "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1)")
    _cdc(url, data_dir)
    own_postgres.execute("postgres", "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
    own_postgres.execute("postgres", "SELECT pg_reload_conf()")
    for i in range(4):  # WAL beyond what the slot may keep, then a checkpoint removes it
        own_postgres.execute("postgres", f"INSERT INTO t VALUES ({i + 2}, {i}); SELECT pg_switch_wal()")
    own_postgres.execute("postgres", "CHECKPOINT")
    assert own_postgres.execute("postgres", "SELECT wal_status FROM pg_replication_slots") == [("lost",)]
    result = _cdc(url, data_dir)
    assert "slot bemidb_public was invalidated" in " ".join(result.stdout.split())
    assert _rows(data_dir, "t") == _source(url, "SELECT * FROM t ORDER BY id")
    own_postgres.execute("postgres", "UPDATE t SET v = 100")
    _cdc(url, data_dir)
    assert _rows(data_dir, "t") == _source(url, "SELECT * FROM t ORDER BY id")


SERVED_SQL = "SELECT id, name, price, tags, at, doc FROM items ORDER BY id"


def _served(server, sql=SERVED_SQL):
    with psycopg.connect(server.dsn()) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_changes_are_served_as_the_source_answers(source, data_dir, bemidb_server, request, storage):  # noqa: F811
    env = {}
    if storage == "s3":
        s3 = request.getfixturevalue("s3")
        env = s3.env(request.getfixturevalue("bucket"))
    source("CREATE TABLE items (id bigint PRIMARY KEY, name text, price numeric(12,2), tags text[], "
           "at timestamptz, doc jsonb);"
           "INSERT INTO items SELECT g, 'n' || g, g / 3.0, ARRAY['a' || g, NULL], "
           "timestamptz '2025-01-01 00:00:00+00' + g * interval '1 hour', jsonb_build_object('g', g) "
           "FROM generate_series(1, 300) g")
    _cdc(source.url, data_dir, env=env)
    source("UPDATE items SET tags = '{}', price = NULL WHERE id % 5 = 0; DELETE FROM items WHERE id > 290;"
           "INSERT INTO items VALUES (1000, 'it''s new', 9.99, '{x,\"y z\"}', '2026-06-01 12:00:00.123456+02', "
           "'{\"nested\": [1, {\"a\": null}]}');"
           "UPDATE items SET id = 2000 WHERE id = 1")
    _cdc(source.url, data_dir, env=env)
    server = bemidb_server(data_dir, env=env)
    assert _served(server) == [tuple(r.values()) for r in _source(source.url, SERVED_SQL)]
    # "Data as of", for a dashboard: the last sync, its mode and the source position applied.
    catalog = open_catalog(config.resolve(None, config.STORAGE, env={**env, "BEMIDB_DATA_DIR": str(data_dir)}))
    lsn = catalog.load_table(("public", "items")).properties[PROP_CDC_LSN]
    with psycopg.connect(server.dsn()) as conn:
        rows = conn.execute("SELECT schema_name, table_name, sync_mode, source_lsn, "
                            "now() - last_synced_at < interval '10 minutes' FROM bemidb_last_synced_at()").fetchall()
    assert rows == [("public", "items", "cdc", lsn, True)]


@pytest.mark.parametrize("ddl", [
    "CREATE TABLE items (id int PRIMARY KEY, name text)",
    "CREATE TABLE items (id int, name text); ALTER TABLE items REPLICA IDENTITY FULL;"
    "INSERT INTO items VALUES (2, 'two')",  # a multiset, no key: two equal rows
], ids=["primary-key", "keyless-identity-full"])
def test_follow_shows_a_change_within_seconds_and_stops_on_sigterm(source, data_dir, bemidb_server, ddl):  # noqa: F811
    source(ddl + "; INSERT INTO items VALUES (1, 'one'), (2, 'two')")
    _cdc(source.url, data_dir)
    server = bemidb_server(data_dir)
    follower = popen_bemidb("sync", "postgres", "--sync-mode", "cdc", "--follow", "--commit-interval", "1s",
                            "--database-url", source.url, "--data-dir", str(data_dir))
    changes = ["INSERT INTO items VALUES (10, 'followed')", "UPDATE items SET name = 'again' WHERE id = 1",
               "DELETE FROM items WHERE ctid = (SELECT min(ctid) FROM items WHERE id = 2)"]  # one row (of two equal ones)
    query = "SELECT id, name FROM items ORDER BY id, name"
    try:
        for change in changes:
            source(change)
            expected = [tuple(r.values()) for r in _source(source.url, query)]
            wait_for(lambda e=expected: _served(server, query) == e, follower, "the change to be served", timeout=30)
        assert follower.poll() is None
    finally:
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(timeout=60) == 0, follower.stderr.read().decode()
    assert _served(server, query) == [tuple(r.values()) for r in _source(source.url, query)]
    applied = _table(data_dir, "items").properties.get(PROP_CDC_LSN, "")
    assert applied not in ("", format_lsn(0)), "the changes were applied by CDC, not by a copy"


def test_follow_commits_before_the_interval_once_enough_rows_changed(source, data_dir):
    source("CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'one')")
    _cdc(source.url, data_dir)
    # An interval no test waits for: only --commit-changes can make these changes visible.
    follower = popen_bemidb("sync", "postgres", "--sync-mode", "cdc", "--follow", "--commit-interval", "1h",
                            "--commit-changes", "50", "--database-url", source.url, "--data-dir", str(data_dir))
    try:
        # The first batch may land in the follower's first drain; the second only by the change count.
        for first, total in ((100, 101), (200, 201)):
            source("INSERT INTO items SELECT g, 'bulk' FROM generate_series(%s::int, %s::int) g", first, first + 99)
            wait_for(lambda n=total: len(_rows(data_dir, "items")) == n, follower,
                     f"the rows up to {first + 99} to be committed", timeout=60)
        assert follower.poll() is None
    finally:
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(timeout=60) == 0, follower.stderr.read().decode()
    assert _rows(data_dir, "items") == _source(source.url, "SELECT * FROM items ORDER BY id")


def test_changes_land_as_position_deletes_and_compaction_folds_them(source, data_dir):
    source("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' FROM generate_series(1, 1000) g")
    _cdc(source.url, data_dir)
    first_files = {task.file.file_path for task in _table(data_dir, "t").scan().plan_files()}
    for round_ in range(3):
        source(f"UPDATE t SET v = 'r{round_}' WHERE id % 10 = {round_}; DELETE FROM t WHERE id = {round_ + 1};"
               f"INSERT INTO t VALUES ({2000 + round_}, 'new')")
        _cdc(source.url, data_dir)
    tasks = list(_table(data_dir, "t").scan().plan_files())
    assert first_files <= {task.file.file_path for task in tasks}  # the copied file was not rewritten
    assert any(task.delete_files for task in tasks)
    assert _rows(data_dir, "t") == _source(source.url, "SELECT * FROM t ORDER BY id")
    assert compact(_table(data_dir, "t"), after_files=2)
    table = _table(data_dir, "t")
    assert not any(task.delete_files for task in table.scan().plan_files())
    assert not [m for m in table.current_snapshot().manifests(table.io) if m.content == ManifestContent.DELETES]
    assert _rows(data_dir, "t") == _source(source.url, "SELECT * FROM t ORDER BY id")
    source("UPDATE t SET v = 'after' WHERE id = 500")
    _cdc(source.url, data_dir)
    assert _rows(data_dir, "t") == _source(source.url, "SELECT * FROM t ORDER BY id")


def test_schema_changes_are_applied_in_place_or_by_a_copy(source, data_dir):
    source("CREATE TABLE t (id int PRIMARY KEY, a int, gone text, v varchar(5));"
           "INSERT INTO t SELECT g, g, 'x', 'v' FROM generate_series(1, 10) g")
    _cdc(source.url, data_dir)
    source("INSERT INTO t VALUES (11, 11, 'y', 'w'); ALTER TABLE t ADD COLUMN added text;"
           "ALTER TABLE t DROP COLUMN gone; ALTER TABLE t ALTER a TYPE bigint;"
           "INSERT INTO t VALUES (12, 9000000000, 'w', 'new'); UPDATE t SET added = 'u' WHERE id = 1")
    _cdc(source.url, data_dir)
    assert _rows(data_dir, "t") == _source(source.url, "SELECT * FROM t ORDER BY id")
    # Compaction reads files of both schemas by field id: the added column NULL in old files, a widened.
    assert compact(_table(data_dir, "t"), after_files=0)
    assert _rows(data_dir, "t") == _source(source.url, "SELECT * FROM t ORDER BY id")
    source("ALTER TABLE t ALTER v TYPE int USING length(v); UPDATE t SET v = 7 WHERE id = 2")  # not in place
    result = _cdc(source.url, data_dir)
    assert "copying the table again" in result.stderr
    assert _rows(data_dir, "t") == _source(source.url, "SELECT * FROM t ORDER BY id")
    source("UPDATE t SET v = 8 WHERE id = 3")
    _cdc(source.url, data_dir)
    assert _rows(data_dir, "t") == _source(source.url, "SELECT * FROM t ORDER BY id")


def test_full_refresh_recopies_and_a_slot_of_another_database_is_refused(source, data_dir, pg):
    source("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1)")
    _cdc(source.url, data_dir)
    source("UPDATE t SET v = 2")
    copied = _cdc(source.url, data_dir, "--full-refresh")
    assert "sync postgres -> public: 1 synced" in copied.stderr  # copied again, then the slot replayed on it
    assert _rows(data_dir, "t") == [{"id": 1, "v": 2}]
    source("UPDATE t SET v = 3")
    _cdc(source.url, data_dir)
    assert _rows(data_dir, "t") == [{"id": 1, "v": 3}]
    pg.execute("postgres", "SELECT pg_create_logical_replication_slot('bemidb_elsewhere', 'pgoutput')")
    try:
        result = run_bemidb("sync", "postgres", "--sync-mode", "cdc", "--database-url", source.url, "--data-dir",
                            str(data_dir), "--slot-name", "bemidb_elsewhere")
        assert result.returncode == 2
        assert "belongs to database postgres" in result.stderr and "Traceback" not in result.stderr
    finally:
        pg.execute("postgres", "SELECT pg_drop_replication_slot('bemidb_elsewhere')")


def test_one_large_transaction_is_applied_whole(source, data_dir):
    source("CREATE TABLE big (id int PRIMARY KEY, v text, n int);"
           "INSERT INTO big SELECT g, 'old', g FROM generate_series(1, 1000) g")
    _cdc(source.url, data_dir)
    with psycopg.connect(source.url) as conn:  # one transaction: 150k inserts, updates of them, deletes
        conn.execute("INSERT INTO big SELECT g, md5(g::text), g FROM generate_series(1001, 151000) g")
        conn.execute("UPDATE big SET v = 'updated in the same transaction' WHERE id % 1000 = 3")
        conn.execute("DELETE FROM big WHERE id % 1000 = 4")
    _cdc(source.url, data_dir)
    assert _rows(data_dir, "big") == _source(source.url, "SELECT * FROM big ORDER BY id")
