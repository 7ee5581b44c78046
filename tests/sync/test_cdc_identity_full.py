"""CDC of tables without a primary key whose replica identity is FULL: their rows are a multiset (identical
rows allowed). Real Postgres 15 (wal_level=logical), the real CLI, tables served by a real `bemidb serve` on
local disk and SeaweedFS S3, compared with the source as multisets of rows in Postgres's own text output."""

from __future__ import annotations

import time

import psycopg
import pyarrow as pa
import pytest

from bemidb import config
from bemidb.storage.catalog import PROP_CDC_LSN, open_catalog
from bemidb.storage.changes import compact
from bemidb.sync import pgoutput
from bemidb.sync.cdc_batch import TableChanges
from bemidb.sync.cdc_identity import CopySnapshot
from tests.support.cdc import cdc as _cdc
from tests.support.cdc import (
    cdc_source,  # noqa: F401 - the `source` fixture
    killed_at,
    slot_position,
)
from tests.support.cdc import table as _table
from tests.support.server import bemidb_server  # noqa: F401 - fixture

COLUMNS = "kind, n, f, r, amount, x, tags, doc, blob, at, body"
# Values over 8 kB that do not compress: Postgres stores them out of line (TOAST).
BIG = "(SELECT string_agg(md5(random()::text || n), '') FROM generate_series(1, 300) n)"
CREATE = ("CREATE TABLE ev (kind text, n int, f float8, r real, amount numeric(12,3), x numeric, tags text[], "
          "doc jsonb, blob bytea, at timestamptz, body text);"
          "ALTER TABLE ev REPLICA IDENTITY FULL; ALTER TABLE ev ALTER body SET STORAGE EXTERNAL;")
ROWS = (
    "INSERT INTO ev VALUES "
    "('dup', 1, 1.5, 2.5, 1.250, 1.5, '{a,NULL}', '{\"k\": [1, null]}', '\\x00ff', '2025-01-01 10:00:00.5+00', 'x'),"
    "('dup', 1, 1.5, 2.5, 1.250, 1.5, '{a,NULL}', '{\"k\": [1, null]}', '\\x00ff', '2025-01-01 10:00:00.5+00', 'x'),"
    "('dup', 1, 1.5, 2.5, 1.250, 1.5, '{a,NULL}', '{\"k\": [1, null]}', '\\x00ff', '2025-01-01 10:00:00.5+00', 'x'),"
    "('nulls', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),"
    "('nulls', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),"
    "('zero', 0, 0, 0, 0, 0, '{}', '{}', '', '2025-01-01+00', ''),"
    "('zero', 0, '-0', '-0', 0, 0, '{}', '{}', '', '2025-01-01+00', ''),"
    "('nan', 2, 'NaN', 'NaN', 2.5, 'NaN', '{\"\"}', 'null', '\\x', '-infinity', 'n'),"
    "('nan', 2, 'NaN', 'NaN', 2.5, 'NaN', '{\"\"}', 'null', '\\x', '-infinity', 'n'),"
    "('inf', 3, 'Infinity', '-Infinity', 12345678.999, 0.000001, '{\"a,b\",\"c\\\"d\"}', '[1.50, \"x\"]', '\\x01',"
    " '1999-12-31 23:59:59.999999-08', 'i');"
    f"INSERT INTO ev SELECT 'big', g, g, g, g, g, ARRAY['b' || g], jsonb_build_object('g', g), NULL, now(), {BIG} "
    "FROM generate_series(1, 4) g, generate_series(1, 2) twice")


def _drain(url, data_dir, env=None):
    """A CDC run that applied the changes (the table not copied again: that would hide a wrong apply)."""
    result = _cdc(url, data_dir, env=env)
    assert "copying the table again" not in result.stderr and "synced by full refresh" not in result.stderr
    return result


def _one_of(where: str) -> str:
    """One of the rows `where` selects (identical rows: only their ctid tells them apart)."""
    return f"ctid = (SELECT ctid FROM ev WHERE {where} LIMIT 1)"


def _multiset(dsn: str, sql: str = f"SELECT {COLUMNS} FROM ev") -> list[tuple]:
    """The rows as Postgres's text output (NaN, -0, infinity and bytea as printed), sorted."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        result = conn.pgconn.exec_(sql.encode())
        rows = [tuple(result.get_value(r, c) for c in range(result.nfields)) for r in range(result.ntuples)]
    return sorted(rows, key=repr)


def _same(source, server, sql: str = f"SELECT {COLUMNS} FROM ev"):
    """The served rows equal the source's; the server looks at the catalog once a second (REFRESH_INTERVAL),
    so a commit made moments ago may show on a later query, not on the first."""
    theirs = _multiset(source.url, sql)
    deadline = time.monotonic() + 15
    while (ours := _multiset(server.dsn(), sql)) != theirs and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(ours) == len(theirs)
    assert ours == theirs


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_a_table_with_identical_rows_follows_the_source(source, data_dir, bemidb_server, request,  # noqa: F811
                                                        storage):
    env = {"BEMIDB_CDC_CHUNK_ROWS": "1000"}  # a transaction of more rows is written in parts
    if storage == "s3":
        env.update(request.getfixturevalue("s3").env(request.getfixturevalue("bucket")))
    source(CREATE + ROWS)
    first = _cdc(source.url, data_dir, env=env)
    assert "synced by full refresh" not in first.stderr
    server = bemidb_server(data_dir, env={k: v for k, v in env.items() if k != "BEMIDB_CDC_CHUNK_ROWS"})
    _same(source, server)

    # One of identical rows deleted, another updated; duplicates added; NULL rows; floats' NaN and -0.
    source(";".join([
        "DELETE FROM ev WHERE " + _one_of("kind = 'dup'"),
        "UPDATE ev SET n = 10, tags = '{x}' WHERE " + _one_of("kind = 'dup'"),
        "INSERT INTO ev SELECT * FROM ev WHERE kind IN ('nan', 'inf')",
        "DELETE FROM ev WHERE " + _one_of("kind = 'nulls'"),
        "UPDATE ev SET f = 7 WHERE " + _one_of("kind = 'zero' AND f::text = '-0'"),
        "UPDATE ev SET r = 'NaN', amount = 0.001 WHERE " + _one_of("kind = 'nan'"),
        # TOASTed values not sent by the update (another column changed): kept, from the old row.
        "UPDATE ev SET n = n + 100 WHERE kind = 'big' AND n <= 2",
        "UPDATE ev SET at = NULL WHERE " + _one_of("kind = 'big' AND n = 101")]))
    with psycopg.connect(source.url) as conn:  # rolled back: leaves no trace
        conn.execute("DELETE FROM ev WHERE kind = 'dup'")
        conn.execute("INSERT INTO ev (kind) VALUES ('rolled back')")
        conn.rollback()
    _drain(source.url, data_dir, env=env)
    _same(source, server)
    assert all(len(body) > 8000 for (body,) in _multiset(server.dsn(), "SELECT body FROM ev WHERE kind = 'big'"))

    # One transaction of several parts: later parts remove rows staged by earlier ones, and stored rows.
    source(";".join([
        "BEGIN; INSERT INTO ev (kind, n) SELECT 'many', g FROM generate_series(1, 3000) g",
        "INSERT INTO ev (kind, n) SELECT 'many', g FROM generate_series(1, 1500) g",
        "DELETE FROM ev WHERE kind = 'many' AND n % 3 = 0",
        "DELETE FROM ev WHERE " + _one_of("kind = 'many' AND n = 1"),
        "UPDATE ev SET f = -1 WHERE kind = 'nan'; DELETE FROM ev WHERE kind = 'zero'; COMMIT"]))
    _drain(source.url, data_dir, env=env)
    _same(source, server)

    # A truncate, then rows again (identical ones too), in one drain.
    source("TRUNCATE ev;" + ROWS + "; DELETE FROM ev WHERE " + _one_of("kind = 'big'"))
    _drain(source.url, data_dir, env=env)
    _same(source, server)

    # Compaction folds the position deletes into the rows (identical rows: exactly the ones still live).
    source("DELETE FROM ev WHERE " + _one_of("kind = 'dup'") + "; INSERT INTO ev SELECT * FROM ev WHERE kind = 'nan'")
    _drain(source.url, data_dir, env=env)
    catalog = open_catalog(config.resolve(None, config.STORAGE, env={**env, "BEMIDB_DATA_DIR": str(data_dir)}))
    assert compact(catalog.load_table(("public", "ev")), after_files=0)
    _same(source, server)


def test_killed_mid_apply_or_before_the_slot_moved_resumes_exactly_once(source, data_dir):
    env = {"BEMIDB_CDC_CHUNK_ROWS": "1000"}
    source(CREATE + ROWS)
    _drain(source.url, data_dir, env=env)
    before_rows = _stored(data_dir)
    source(";".join([
        "BEGIN; INSERT INTO ev (kind, n) SELECT 'many', g % 2000 FROM generate_series(1, 5000) g",
        "DELETE FROM ev WHERE " + _one_of("kind = 'dup'"), "DELETE FROM ev WHERE kind = 'many' AND n < 10",
        "UPDATE ev SET n = -n WHERE kind = 'big'; COMMIT"]))
    before = slot_position(source.url)
    for point in ("stage#2", "commit"):  # parts written, nothing committed: the table is as it was
        killed_at(source.url, data_dir, point, env=env)
        assert _stored(data_dir) == before_rows
        assert _table(data_dir, "ev").properties[PROP_CDC_LSN] == "0/0"
        assert slot_position(source.url) == before
    # Committed, the slot not moved: the next run must not apply the same changes again (rows would double).
    killed_at(source.url, data_dir, "advance", env=env)
    assert _stored(data_dir) == _source_stored(source)
    _drain(source.url, data_dir, env=env)
    assert _stored(data_dir) == _source_stored(source)
    assert slot_position(source.url) != before


def test_a_copy_taken_while_the_slot_holds_changes_is_not_replayed_onto(source, data_dir):
    """--full-refresh copies again and keeps the slot: its changes from before the copy are already in the
    copy (a keyed table converges; identical rows would be doubled)."""
    source(CREATE + ROWS)
    _cdc(source.url, data_dir)
    source("INSERT INTO ev SELECT * FROM ev WHERE kind = 'dup'")
    copied = _cdc(source.url, data_dir, "--full-refresh")
    assert _stored(data_dir) == _source_stored(source)
    source("INSERT INTO ev SELECT * FROM ev WHERE kind = 'dup'; DELETE FROM ev WHERE kind = 'inf'")
    drained = _cdc(source.url, data_dir)
    assert _stored(data_dir) == _source_stored(source)
    assert "copying the table again" not in copied.stderr + drained.stderr  # applied, not re-copied


def test_which_keyless_tables_cdc_keeps(source, data_dir):
    source("CREATE TABLE plain (v int); INSERT INTO plain VALUES (1), (1);"
           "CREATE TABLE by_index (v int NOT NULL); CREATE UNIQUE INDEX by_index_v ON by_index (v);"
           "ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_v; INSERT INTO by_index VALUES (1);"
           "CREATE TABLE gen (v int, twice int GENERATED ALWAYS AS (v * 2) STORED);"
           "ALTER TABLE gen REPLICA IDENTITY FULL; INSERT INTO gen (v) VALUES (1)")
    first = _cdc(source.url, data_dir)
    assert "public.plain: synced by full refresh, not CDC: no primary key (nor REPLICA IDENTITY FULL)" in first.stderr
    assert "public.by_index: synced by full refresh, not CDC: no primary key" in first.stderr
    assert "public.gen: synced by full refresh, not CDC: it has generated columns" in first.stderr
    # Switched to FULL: the next run copies it for CDC, and later runs apply its changes.
    source("ALTER TABLE plain REPLICA IDENTITY FULL; INSERT INTO plain VALUES (2)")
    switched = _cdc(source.url, data_dir)
    assert "public.plain: synced by full refresh" not in switched.stderr
    assert _table(data_dir, "plain").properties[PROP_CDC_LSN] == "0/0"
    source("DELETE FROM plain WHERE ctid = (SELECT ctid FROM plain WHERE v = 1 LIMIT 1); INSERT INTO plain "
           "VALUES (2), (NULL)")
    _cdc(source.url, data_dir)
    assert _table(data_dir, "plain").properties[PROP_CDC_LSN] != "0/0"
    assert sorted(_table(data_dir, "plain").scan().to_arrow().column("v").to_pylist(), key=repr) == [1, 2, 2, None]
    # Switched back: full refresh again, and the table leaves the publication (while in it without an
    # identity, the source refuses its updates and deletes).
    source("ALTER TABLE plain REPLICA IDENTITY DEFAULT")
    back = _cdc(source.url, data_dir)
    assert "public.plain: synced by full refresh, not CDC: no primary key" in back.stderr
    source("UPDATE plain SET v = 3 WHERE v = 1; DELETE FROM plain WHERE v IS NULL")
    _cdc(source.url, data_dir)
    assert sorted(_table(data_dir, "plain").scan().to_arrow().column("v").to_pylist()) == [2, 2, 3]


def _stored(data_dir, schema="public") -> list[str]:
    """The table's rows as sorted text (NaN and -0 kept apart; timestamps as stored, infinity too)."""
    arrow = _table(data_dir, "ev", schema).scan().to_arrow()
    arrow = arrow.cast(pa.schema([f.with_type(pa.int64()) if pa.types.is_timestamp(f.type) else f
                                  for f in arrow.schema]))
    return sorted(repr(row) for row in arrow.to_pylist())


def _source_stored(source) -> list[str]:
    """The source's rows as a full refresh stores them: the oracle for _stored."""
    import tempfile

    from tests.support.cdc import full

    with tempfile.TemporaryDirectory() as scratch:
        full(source.url, scratch, "oracle", "--include", "public.ev")
        return _stored(scratch, "oracle")


def test_columns_added_and_dropped_between_and_within_drains(source, data_dir):
    source("CREATE TABLE s (a int, b text); ALTER TABLE s REPLICA IDENTITY FULL;"
           "INSERT INTO s VALUES (1, 'x'), (1, 'y'), (2, 'z')")
    _drain(source.url, data_dir)
    # A row inserted before a column was added and deleted after it (its old row has the new column, NULL).
    source("INSERT INTO s VALUES (3, 'w'); ALTER TABLE s ADD COLUMN c int; DELETE FROM s WHERE a = 3;"
           "UPDATE s SET c = 5 WHERE a = 2; INSERT INTO s VALUES (4, 'v', 1), (4, 'v', 1)")
    _drain(source.url, data_dir)
    assert _rows_of(data_dir, "s") == _source_rows_of(source, "s")
    # A dropped column makes two rows identical: one of them deleted leaves the other.
    source("ALTER TABLE s DROP COLUMN b; DELETE FROM s WHERE ctid = (SELECT ctid FROM s WHERE a = 1 LIMIT 1);"
           "DELETE FROM s WHERE ctid = (SELECT ctid FROM s WHERE a = 4 LIMIT 1)")
    result = _cdc(source.url, data_dir)
    assert "copying the table again" not in result.stderr
    assert _rows_of(data_dir, "s") == _source_rows_of(source, "s") == [(1, None), (2, 5), (4, 1)]


def _rows_of(data_dir, name) -> list[tuple]:
    return sorted((tuple(r.values()) for r in _table(data_dir, name).scan().to_arrow().to_pylist()), key=repr)


def _source_rows_of(source, name) -> list[tuple]:
    with psycopg.connect(source.url) as conn:
        return sorted(conn.execute(f"SELECT * FROM {name}").fetchall(), key=repr)


def _relation(columns=("a", "b"), identity="f"):
    return pgoutput.Relation(1, "public", "t", identity, tuple(columns), (False,) * len(columns),
                             (23,) * len(columns))


def test_net_counts_do_not_depend_on_the_order_of_changes():
    rel = _relation()
    changes = [pgoutput.Change("I", 1, ("1", "x"), None), pgoutput.Change("I", 1, ("1", "x"), None),
               pgoutput.Change("U", 1, ("2", "x"), ("1", "x")), pgoutput.Change("D", 1, None, ("3", None)),
               pgoutput.Change("I", 1, ("3", None), None), pgoutput.Change("D", 1, None, ("2", "x"))]
    seen = set()
    for order in (changes, changes[::-1], changes[2:] + changes[:2]):
        counted = TableChanges([])
        for change in order:
            counted.add(rel, change)
        seen.add(tuple(sorted(counted.rows.items(), key=repr)))
        assert counted.lost is None
    assert seen == {((("1", "x"), 1),)}  # two inserted, one updated away; the rest cancel out


def test_an_update_takes_its_unsent_large_values_from_its_old_row_and_needs_the_whole_old_row():
    counted = TableChanges([])
    counted.add(_relation(), pgoutput.Change("U", 1, ("2", pgoutput.UNCHANGED), ("1", "large")))
    assert counted.rows == {("1", "large"): -1, ("2", "large"): 1}
    for identity, old in (("f", None), ("f", ("1", pgoutput.UNCHANGED)), ("i", ("1", None))):
        partial = TableChanges([])
        partial.add(_relation(identity=identity), pgoutput.Change("D", 1, None, old))
        assert partial.lost and not partial.rows


def test_counts_follow_a_changed_relation():
    counted = TableChanges([])
    counted.add(_relation(("a", "b")), pgoutput.Change("I", 1, ("1", "x"), None))
    counted.add(_relation(("a", "b", "c")), pgoutput.Change("D", 1, None, ("1", "x", None)))
    assert counted.rows == {}
    counted.add(_relation(("a", "b", "c")), pgoutput.Change("I", 1, ("1", "x", "7"), None))
    counted.add(_relation(("c", "a")), pgoutput.Change("I", 1, ("7", "1"), None))  # b dropped, c moved
    assert counted.rows == {("7", "1"): 2} and counted.columns == ("c", "a")


def test_copy_snapshot_visibility_across_the_32_bit_wrap():
    snapshot = CopySnapshot.parse("100:110:103,105")
    assert [xid for xid in range(95, 115) if xid in snapshot] == [95, 96, 97, 98, 99, 100, 101, 102, 104, 106,
                                                                  107, 108, 109]
    wrapped = CopySnapshot.parse(f"{(5 << 32) - 3}:{(5 << 32) + 2}:{(5 << 32) + 1}")  # xmin before the wrap
    assert 0xFFFFFFFE in wrapped and 0 in wrapped and 1 not in wrapped and 2 not in wrapped
    assert 3 not in wrapped and 0xFFFFFFF0 in wrapped
