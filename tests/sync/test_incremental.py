"""`bemidb sync postgres --incremental`: real source Postgres, real CLI process, tables read back from Iceberg
(pyiceberg) and compared row by row with what psycopg reads from the source."""

from __future__ import annotations

import json
import signal

import duckdb
import psycopg
import pyarrow as pa
import pytest

from bemidb.config import Config
from bemidb.server.engine import view_sql
from bemidb.storage import evolution
from bemidb.storage.catalog import open_catalog
from bemidb.storage.writer import iceberg_schema, write_table
from bemidb.sync.incremental import PROP_CURSOR_COLUMN, PROP_CURSOR_VALUE, PROP_KEY_COLUMNS
from tests.support.commands import popen_bemidb, run_bemidb
from tests.support.processes import wait_for


def _popen_sync(url, data_dir, env=None):
    return popen_bemidb("sync", "postgres", "--database-url", url, "--data-dir", str(data_dir),
                        "--include", "public.big", env=env)


def _sync(url, data_dir, *args, env=None):
    return run_bemidb("sync", "postgres", "--database-url", url, "--data-dir", str(data_dir), *args, env=env)


def _table(data_dir, name):
    return open_catalog(Config({"data_dir": str(data_dir)})).load_table(("public", name))


def _dest(data_dir, name, order_by=("id",)):
    rows = _table(data_dir, name).scan().to_arrow().to_pylist()
    return sorted(rows, key=lambda r: tuple((r[c] is None, r[c]) for c in order_by))


def _duckdb(data_dir, name, order_by="id"):
    """The table as the query server reads it: DuckDB over the current snapshot's files, by column name."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(view_sql("main", name, _table(data_dir, name)))
    cur = con.execute(f"SELECT * FROM main.{name} ORDER BY {order_by}")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _src(url, sql):
    with psycopg.connect(url) as conn:
        cur = conn.execute(sql)
        names = [d.name for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]






def _files(data_dir, name) -> set[str]:
    return {task.file.file_path for task in _table(data_dir, name).scan().plan_files()}


@pytest.fixture
def source(pg, request):
    url = pg.create_database("h10_" + request.node.name.lower()[:40])

    def execute(sql, *params):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql, params or None)

    execute("""
        CREATE TABLE orders (id int PRIMARY KEY, updated_at timestamptz NOT NULL, amount numeric(10,2),
                             note varchar(20));
        INSERT INTO orders SELECT g, timestamptz '2025-01-01 00:00:00+00' + g * interval '1 minute',
                                  g * 1.25, 'n' || g
        FROM generate_series(1, 50) g;
        CREATE TABLE events (created_at timestamp, kind text);
        INSERT INTO events SELECT timestamp '2025-01-01' + (g / 2) * interval '1 hour', 'e' || g
        FROM generate_series(1, 20) g;
    """)
    return url, execute


ORDERS = "public.orders:updated_at"


def test_first_run_copies_all_then_new_and_updated_rows_replace_old_versions(source, data_dir):
    url, execute = source
    result = _sync(url, data_dir, "--include", "public.orders", "--incremental", ORDERS)
    assert result.returncode == 0, result.stderr
    assert _dest(data_dir, "orders") == _src(url, "SELECT * FROM orders ORDER BY id")
    table = _table(data_dir, "orders")
    assert table.properties[PROP_CURSOR_COLUMN] == "updated_at"
    assert table.properties[PROP_CURSOR_VALUE] == "2025-01-01 00:50:00+00"
    assert json.loads(table.properties[PROP_KEY_COLUMNS]) == ["id"]
    snapshots = len(table.metadata.snapshots)

    # inserts, updates (the cursor moves), a delete
    execute("INSERT INTO orders SELECT g, timestamptz '2025-02-01 00:00:00+00' + g * interval '1 second', g, 'new'"
            " FROM generate_series(51, 60) g")
    execute("UPDATE orders SET amount = -amount, note = 'changed', updated_at = '2025-03-01 00:00:00+00' "
            "WHERE id IN (3, 25, 55)")
    execute("DELETE FROM orders WHERE id = 10")
    result = _sync(url, data_dir, "--include", "public.orders", "--incremental", ORDERS)
    assert result.returncode == 0, result.stderr

    table = _table(data_dir, "orders")
    assert len(table.metadata.snapshots) == snapshots + 1  # data and cursor in ONE commit
    assert table.properties[PROP_CURSOR_VALUE] == "2025-03-01 00:00:00+00"
    got = _dest(data_dir, "orders")
    ids = [r["id"] for r in got]
    assert len(ids) == len(set(ids)) == 60  # never two versions of a row; the deleted row 10 is still there
    source_rows = _src(url, "SELECT * FROM orders ORDER BY id")
    assert [r for r in got if r["id"] != 10] == source_rows
    assert _duckdb(data_dir, "orders") == got
    assert {r["id"]: r["note"] for r in got if r["id"] in (3, 25, 55)} == {3: "changed", 25: "changed",
                                                                           55: "changed"}

    # --full-refresh: deletes are applied, the cursor is kept for the next incremental run
    result = _sync(url, data_dir, "--include", "public.orders", "--incremental", ORDERS, "--full-refresh")
    assert result.returncode == 0, result.stderr
    assert _dest(data_dir, "orders") == source_rows
    assert _table(data_dir, "orders").properties[PROP_CURSOR_VALUE] == "2025-03-01 00:00:00+00"

    # nothing new: the table is unchanged and the run succeeds
    result = _sync(url, data_dir, "--include", "public.orders", "--incremental", ORDERS)
    assert result.returncode == 0, result.stderr
    assert _dest(data_dir, "orders") == source_rows


def test_rows_another_engine_deleted_make_the_next_run_a_full_refresh(source, data_dir):
    """Trino's DELETE on a synced table writes position deletes; a merge would read the old files as they are
    and bring those rows back: the run is a full refresh (said in one line), and the next one merges again."""
    from tests.support.row_deletes import delete_positions

    url, execute = source
    assert _sync(url, data_dir, "--include", "public.orders", "--incremental", ORDERS).returncode == 0
    table = _table(data_dir, "orders")
    (path,) = _files(data_dir, "orders")
    delete_positions(table, {path: [0, 1]})
    assert len(_table(data_dir, "orders").scan().to_arrow()) == 48  # pyiceberg applies them
    assert len(_duckdb(data_dir, "orders")) == 48  # and so does the server's view
    execute("UPDATE orders SET note = 'moved', updated_at = '2025-04-01 00:00:00+00' WHERE id = 7")

    result = _sync(url, data_dir, "--include", "public.orders", "--incremental", ORDERS)
    assert result.returncode == 0, result.stderr
    assert "full refresh: the table has row-level deletes written by another engine" in result.stderr
    source_rows = _src(url, "SELECT * FROM orders ORDER BY id")
    assert _dest(data_dir, "orders") == source_rows == _duckdb(data_dir, "orders")

    execute("UPDATE orders SET note = 'again', updated_at = '2025-05-01 00:00:00+00' WHERE id = 8")
    result = _sync(url, data_dir, "--include", "public.orders", "--incremental", ORDERS)
    assert result.returncode == 0 and "full refresh" not in result.stderr, result.stderr
    assert _dest(data_dir, "orders") == _src(url, "SELECT * FROM orders ORDER BY id")


def test_ties_on_the_cursor_value_are_not_lost_and_not_duplicated(source, data_dir):
    url, execute = source
    args = ("--include", "public.orders,public.events", "--incremental", f"{ORDERS},public.events:created_at")
    assert _sync(url, data_dir, *args).returncode == 0
    files_before = _files(data_dir, "orders")

    # Rows that commit after the sync with the cursor value it stopped at (clock skew, same-timestamp batches)
    execute("INSERT INTO orders VALUES (100, '2025-01-01 00:50:00+00', 1, 'late tie')")
    execute("INSERT INTO events VALUES ('2025-01-01 10:00:00', 'late tie')")  # the max created_at
    result = _sync(url, data_dir, *args)
    assert result.returncode == 0, result.stderr

    assert _dest(data_dir, "orders") == _src(url, "SELECT * FROM orders ORDER BY id")
    # The re-read tail (id 50, unchanged at the stored cursor value) did not cost a rewrite: old files kept.
    assert files_before <= _files(data_dir, "orders")

    # No key: the rows at the stored cursor value are replaced by their re-read copies (same multiset).
    order = ("created_at", "kind")
    assert _dest(data_dir, "events", order) == _src(url, "SELECT * FROM events ORDER BY created_at, kind")
    assert len(_dest(data_dir, "events", order)) == 21


def test_composite_primary_key_merge(source, data_dir):
    url, execute = source
    execute("""CREATE TABLE lines (order_id int, line int, qty int, version bigint NOT NULL,
                                   PRIMARY KEY (order_id, line));
               INSERT INTO lines SELECT g / 10, g % 10, g, g FROM generate_series(0, 99) g""")
    args = ("--include", "public.lines", "--incremental", "lines:version")  # a bare table name means public
    assert _sync(url, data_dir, *args).returncode == 0
    execute("UPDATE lines SET qty = -1, version = 1000 + line WHERE order_id = 3")
    execute("INSERT INTO lines VALUES (3, 10, 7, 2000)")
    result = _sync(url, data_dir, *args)
    assert result.returncode == 0, result.stderr
    order = ("order_id", "line")
    assert _dest(data_dir, "lines", order) == _src(url, "SELECT * FROM lines ORDER BY order_id, line")
    assert json.loads(_table(data_dir, "lines").properties[PROP_KEY_COLUMNS]) == ["order_id", "line"]


def test_schema_evolves_in_place_and_incompatible_change_falls_back_to_full_refresh(source, data_dir):
    url, execute = source
    execute("ALTER TABLE orders ADD COLUMN score real DEFAULT 1.5, ADD COLUMN legacy int DEFAULT 0, "
            "ADD COLUMN qty bigint DEFAULT 5")
    args = ("--include", "public.orders", "--incremental", ORDERS)
    assert _sync(url, data_dir, *args).returncode == 0
    files_before = _files(data_dir, "orders")

    execute("ALTER TABLE orders ADD COLUMN region text, DROP COLUMN legacy")
    execute("ALTER TABLE orders ALTER COLUMN id TYPE int8, ALTER COLUMN note TYPE text, "
            "ALTER COLUMN amount TYPE numeric(14,2), ALTER COLUMN score TYPE float8, ALTER COLUMN qty TYPE int4")
    execute("INSERT INTO orders VALUES (51, '2025-05-01 00:00:00+00', 123456789.99, 'new', 2.25, 7, 'eu')")
    result = _sync(url, data_dir, *args)
    assert result.returncode == 0, result.stderr
    assert "schema evolved" in result.stderr and "added region" in result.stderr
    assert "full refresh" not in result.stderr

    table = _table(data_dir, "orders")
    fields = [(f.name, str(f.field_type)) for f in table.schema().fields]
    # widened in place; qty narrowed at the source: the table keeps bigint and casts the new values up
    assert fields == [("id", "long"), ("updated_at", "timestamptz"), ("amount", "decimal(14, 2)"),
                      ("note", "string"), ("score", "double"), ("qty", "long"), ("region", "string")]
    got = _dest(data_dir, "orders")
    assert got == _src(url, "SELECT * FROM orders ORDER BY id")  # old rows: region NULL, legacy gone
    assert sum(r["region"] is None for r in got) == 50
    assert _duckdb(data_dir, "orders") == got  # the server's view over old and new files agrees
    assert files_before < _files(data_dir, "orders")  # not a rewrite: the old file stays, read through ids

    # text -> int cannot be promoted: a full refresh, said in one line
    execute("ALTER TABLE orders ALTER COLUMN note TYPE int USING length(note)")
    result = _sync(url, data_dir, *args)
    assert result.returncode == 0, result.stderr
    assert "full refresh: column note changed type from string to int" in result.stderr
    assert _dest(data_dir, "orders") == _src(url, "SELECT * FROM orders ORDER BY id")
    assert str(_table(data_dir, "orders").schema().find_field("note").field_type) == "int"


def test_sigkill_mid_run_leaves_no_duplicates_after_the_next_run(source, data_dir):
    url, execute = source
    execute("CREATE TABLE big (id int8 PRIMARY KEY, h text)")
    execute("INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 10) g")
    env = {"SOURCE_POSTGRES_INCREMENTAL": "public.big:id"}
    assert _sync(url, data_dir, "--include", "public.big", env=env).returncode == 0
    execute("INSERT INTO big SELECT g, md5(g::text) FROM generate_series(11, 500000) g")

    def copying():  # the run's incremental COPY is streaming (long before its commit)
        with psycopg.connect(url, autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                                "AND query LIKE 'COPY (SELECT %\"big\" WHERE \"id\" >= %'").fetchone()[0]

    process = _popen_sync(url, data_dir, env=env)
    wait_for(copying, process, "the incremental COPY")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    table = _table(data_dir, "big")
    assert table.properties[PROP_CURSOR_VALUE] == "10"  # neither data nor cursor committed
    assert table.scan().to_arrow().num_rows == 10

    result = _sync(url, data_dir, "--include", "public.big", env=env)
    assert result.returncode == 0, result.stderr
    arrow = _table(data_dir, "big").scan().to_arrow()
    assert arrow.num_rows == 500_000
    assert len(arrow.column("id").unique()) == 500_000
    assert _table(data_dir, "big").properties[PROP_CURSOR_VALUE] == "500000"


def test_bad_cursor_specs_fail_clearly(source, data_dir):
    url, _ = source
    result = _sync(url, data_dir, "--incremental", "public.orders")
    assert result.returncode == 2
    assert "not schema.table:cursor_column" in result.stderr and "Traceback" not in result.stderr

    result = _sync(url, data_dir, "--include", "public.orders,public.events",
                   "--incremental", "public.orders:nope,public.events:kind")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cursor column nope is not a column of the table" in result.stderr
    assert "cursor column kind has type text" in result.stderr

    result = _sync(url, data_dir, "--include", "public.orders", "--incremental", f"{ORDERS},public.nope:id")
    assert result.returncode == 0, result.stderr
    assert "--incremental public.nope: not a table synced in this run" in result.stderr


def test_merge_on_s3(source, s3, bucket, data_dir):
    url, execute = source
    env = {**s3.env(bucket), "SOURCE_POSTGRES_INCREMENTAL": ORDERS}
    assert _sync(url, data_dir, "--include", "public.orders", env=env).returncode == 0
    execute("UPDATE orders SET note = 'on s3', updated_at = '2025-06-01 00:00:00+00' WHERE id % 10 = 0")
    execute("INSERT INTO orders VALUES (51, '2025-06-02 00:00:00+00', 5, 'new')")
    result = _sync(url, data_dir, "--include", "public.orders", env=env)
    assert result.returncode == 0, result.stderr
    catalog = open_catalog(Config({"data_dir": str(data_dir), "aws_s3_bucket": bucket,
                                   "aws_s3_endpoint": env["AWS_S3_ENDPOINT"], "aws_region": env["AWS_REGION"],
                                   "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
                                   "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"]}))
    table = catalog.load_table(("public", "orders"))
    assert all(task.file.file_path.startswith(f"s3://{bucket}/") for task in table.scan().plan_files())
    got = sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["id"])
    assert got == _src(url, "SELECT * FROM orders ORDER BY id")


def test_evolution_rules_and_reorder(tmp_path):
    """The in-place rules on their own, and a column order change applied to a real table's schema."""
    def schema(*fields):
        return iceberg_schema(pa.schema([pa.field(n, t) for n, t in fields]))

    base = schema(("a", pa.int32()), ("m", pa.decimal128(10, 2)), ("f", pa.float32()), ("s", pa.string()))
    ok = evolution.compare(base, schema(("a", pa.int64()), ("m", pa.decimal128(12, 2)), ("f", pa.float64()),
                                        ("s", pa.string())))
    assert ok.incompatible is None and set(ok.widened) == {"a", "m", "f"}
    narrower = evolution.compare(schema(("a", pa.int64())), schema(("a", pa.int32())))
    assert narrower.incompatible is None and str(narrower.kept_wider["a"]) == "long"
    for bad in [("m", pa.decimal128(12, 3)), ("m", pa.string()), ("s", pa.int64()), ("a", pa.float64())]:
        fields = dict([("a", pa.int32()), ("m", pa.decimal128(10, 2)), ("f", pa.float32()), ("s", pa.string())])
        fields.update([bad])
        assert evolution.compare(base, schema(*fields.items())).incompatible, bad

    catalog = open_catalog(Config({"data_dir": str(tmp_path)}))
    first = pa.schema([pa.field("a", pa.int32()), pa.field("b", pa.string()), pa.field("c", pa.int32())])
    write_table(catalog, ("public", "x"), first,
                [pa.record_batch([pa.array([1]), pa.array(["x"]), pa.array([2])], schema=first)])
    table = catalog.load_table(("public", "x"))
    wanted = schema(("a", pa.int64()), ("d", pa.float64()), ("c", pa.int32()), ("b", pa.string()))
    change = evolution.compare(table.schema(), wanted)
    assert change.reordered and change.added == ["d"]
    txn = table.transaction()
    evolution.apply(txn, wanted, change)
    txn.commit_transaction()
    evolved = catalog.load_table(("public", "x")).schema()
    assert [(f.name, str(f.field_type), f.field_id) for f in evolved.fields] == [
        ("a", "long", 1), ("d", "double", 4), ("c", "int", 3), ("b", "string", 2)]
