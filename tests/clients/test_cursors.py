"""Server-side cursors (DECLARE / FETCH / MOVE / CLOSE / pg_cursors) and the session commands around prepared
statements (DEALLOCATE, DISCARD ALL), each run on the test Postgres and through bemidb serving a sync of it,
compared: psql-style SQL, psycopg and psycopg2 named cursors, SQLAlchemy stream_results, pandas chunks."""

from __future__ import annotations

import pandas as pd
import psycopg
import psycopg2
import pytest
import sqlalchemy as sa

from tests.support.commands import run_bemidb
from tests.support.server import bemidb_server, start_server  # noqa: F401 - fixture

SOURCE_DDL = """
CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2), seen timestamptz);
INSERT INTO items SELECT g, 'item ' || g, g / 4.0, '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 minute'
    FROM generate_series(1, 5000) g;
"""


@pytest.fixture(scope="module")
def source(pg):
    url = pg.create_database("compat_cursors")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SOURCE_DDL)
    return url


@pytest.fixture(scope="module")
def server(source, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("compat-cursors") / "data"
    data_dir.mkdir()
    run_bemidb("sync", "postgres", "--database-url", source, env={"BEMIDB_DATA_DIR": str(data_dir)}, check=True)
    process = start_server(data_dir, log_level="INFO")
    yield process
    process.stop()


def _both(server, source):
    return server.dsn("alice"), source


def _outcome(conn: psycopg.Connection, sql: str):
    """(status tag, rows) of one statement, or the SQLSTATE it failed with."""
    try:
        cur = conn.execute(sql)
        return cur.statusmessage, cur.fetchall() if cur.description else None
    except psycopg.Error as exc:
        conn.rollback() if not conn.autocommit else None
        return "error", exc.sqlstate


SESSION = [
    "BEGIN",
    "DECLARE c CURSOR FOR SELECT id, name, price FROM items WHERE id <= 300 ORDER BY id",
    "FETCH c", "FETCH 3 FROM c", "FETCH FORWARD 2 IN c", "FETCH NEXT c", "MOVE 10 c", "FETCH RELATIVE 0 c",
    "FETCH FORWARD 0 c", "FETCH RELATIVE 5 c", "FETCH ABSOLUTE 40 c", "MOVE FORWARD ALL IN c", "FETCH c",
    # is_scrollable left out: Postgres says true for a cursor declared without [NO] SCROLL whose plan can go
    # backward; bemidb's cursors only go forward (README, Client compatibility)
    "SELECT name, statement, is_holdable, is_binary FROM pg_cursors",
    "DECLARE \"Quoted\" NO SCROLL CURSOR WITH HOLD FOR SELECT id FROM items WHERE id < 4 ORDER BY id",
    "COMMIT",
    "SELECT name FROM pg_cursors ORDER BY name",
    "FETCH ALL FROM \"Quoted\"", "FETCH ALL FROM \"Quoted\"", "CLOSE \"Quoted\"", "CLOSE \"Quoted\"",
    "DECLARE outside CURSOR FOR SELECT 1",
    "BEGIN", "DECLARE a CURSOR FOR SELECT id FROM items ORDER BY id", "DECLARE a CURSOR FOR SELECT 1",
    "ROLLBACK",
    "BEGIN", "DECLARE a NO SCROLL CURSOR FOR SELECT id FROM items ORDER BY id", "FETCH 2 a",
    "FETCH BACKWARD 1 a",
    "ROLLBACK",
    "BEGIN", "DECLARE b CURSOR FOR SELECT id FROM items ORDER BY id", "DECLARE d CURSOR FOR SELECT 2 AS two",
    "FETCH 1 b", "SELECT count(*) FROM items", "FETCH 1 b", "FETCH d", "CLOSE ALL", "FETCH b", "ROLLBACK",
    "FETCH 1 nope",
]


def test_declare_fetch_move_close_as_postgres(server, source):
    ours_dsn, theirs_dsn = _both(server, source)
    with psycopg.connect(ours_dsn, autocommit=True) as ours, psycopg.connect(theirs_dsn, autocommit=True) as theirs:
        for sql in SESSION:
            expected = _outcome(theirs, sql)
            got = _outcome(ours, sql)
            if expected[0] == "error":
                theirs.execute("ROLLBACK")
                ours.execute("ROLLBACK")
            assert got == expected, sql


def _fetch_description(dsn: str) -> list:
    """A FETCH's RowDescription: each column's table (as its pg_class name), column number, type and typmod."""
    with psycopg.connect(dsn) as conn:
        conn.execute("DECLARE d CURSOR FOR SELECT i.id, i.name AS label, i.price, i.id + 1 AS next, s.seen "
                     "FROM items i JOIN (SELECT id, seen FROM items) s ON s.id = i.id ORDER BY i.id")
        result = conn.pgconn.exec_(b"FETCH 2 FROM d")
        tables = {oid: name for oid, name in conn.execute("SELECT oid::int8, relname::text FROM pg_class")}
        return [(result.fname(i), tables.get(result.ftable(i)), result.ftablecol(i), result.ftype(i),
                 result.fmod(i)) for i in range(result.nfields)]


def test_fetch_describes_source_columns_as_postgres(server, source):
    """psqlODBC's UseDeclareFetch takes nullability and sizes from pg_attribute by these table OIDs."""
    ours, theirs = (_fetch_description(dsn) for dsn in _both(server, source))
    assert theirs[0][1:3] == ("items", 1) and theirs[3][1] is None
    assert ours == theirs


def test_psycopg_named_cursor_with_parameters(server, source):
    results = []
    for dsn in _both(server, source):
        with psycopg.connect(dsn) as conn:
            with conn.cursor(name="pages") as cur:
                cur.execute("SELECT id, name, price, seen FROM items WHERE id > %s AND name LIKE %s ORDER BY id",
                            (4000, "item 4%"))
                pages = []
                while rows := cur.fetchmany(333):
                    pages.append(rows)
                results.append(([d.name for d in cur.description], pages))
            with conn.cursor(name="held", withhold=True) as cur:
                cur.execute("SELECT id FROM items ORDER BY id LIMIT 5")
                conn.commit()
                results.append(cur.fetchall())
    assert results[0] == results[2] and results[1] == results[3]
    assert len(results[0][1]) == 3 and sum(len(p) for p in results[0][1]) == 999


def test_psycopg2_named_cursor(server, source):
    results = []
    for dsn in _both(server, source):
        with psycopg2.connect(dsn) as conn, conn.cursor("p2") as cur:
            cur.itersize = 700
            cur.execute("SELECT id, name FROM items WHERE id % 3 = 0 ORDER BY id")
            rows = list(cur)
            results.append(([d.name for d in cur.description], rows))
        conn.close()
    assert results[0] == results[1] and len(results[0][1]) == 1666


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_sqlalchemy_stream_results_and_pandas_chunks(server, source, driver):
    frames = []
    for dsn in _both(server, source):
        engine = sa.create_engine(dsn.replace("postgresql://", f"postgresql+{driver}://", 1))
        with engine.connect() as conn:
            streamed = conn.execution_options(stream_results=True, max_row_buffer=250).execute(
                sa.text("SELECT id, name FROM items WHERE id <= :n ORDER BY id"), {"n": 1200})
            rows = [tuple(r) for r in streamed.partitions(400)]
            chunks = list(pd.read_sql(sa.text("SELECT id, price FROM items ORDER BY id"),
                                      conn.execution_options(stream_results=True), chunksize=1500))
        engine.dispose()
        frames.append((rows, [len(c) for c in chunks], pd.concat(chunks).reset_index(drop=True)))
    (rows_a, sizes_a, frame_a), (rows_b, sizes_b, frame_b) = frames
    assert rows_a == rows_b and sizes_a == sizes_b == [1500, 1500, 1500, 500]
    pd.testing.assert_frame_equal(frame_a, frame_b)


def test_pandas_chunks_over_pg8000(server, source):
    chunks = []
    for dsn in _both(server, source):
        engine = sa.create_engine(dsn.replace("postgresql://", "postgresql+pg8000://", 1).replace(
            "?sslmode=disable", ""))
        with engine.connect() as conn:
            chunks.append([c.to_dict("list") for c in pd.read_sql(
                sa.text("SELECT id, name FROM items WHERE id < 100 ORDER BY id"), conn, chunksize=30)])
        engine.dispose()
    assert chunks[0] == chunks[1] and len(chunks[0]) == 4


DEALLOCATE_SESSION = [
    "PREPARE_BY_PROTOCOL", "DEALLOCATE s1", "DEALLOCATE s1", "PREPARE_BY_PROTOCOL", "DEALLOCATE ALL",
    "PREPARE_BY_PROTOCOL", "DISCARD ALL", "PREPARE_BY_PROTOCOL", "SET application_name = \"x y\"",
    "SHOW application_name", "SET TIME ZONE \"Etc/UTC\"", "SHOW TimeZone",
    "SET search_path = \"$user\", public, \"Odd\"", "SHOW search_path", "DISCARD ALL", "SHOW application_name",
    "BEGIN", "DISCARD ALL", "ROLLBACK",
]


def test_deallocate_and_discard_as_postgres(server, source):
    """A statement prepared through the protocol is dropped by DEALLOCATE (psqlODBC reuses plan names)."""
    outcomes = []
    for dsn in _both(server, source):
        seen = []
        with psycopg.connect(dsn, autocommit=True) as conn:
            for sql in DEALLOCATE_SESSION:
                if sql == "PREPARE_BY_PROTOCOL":  # a protocol-level Parse of a named statement
                    result = conn.pgconn.prepare(b"s1", b"SELECT 1")
                    seen.append(result.error_field(psycopg.pq.DiagnosticField.SQLSTATE) or "prepared")
                    continue
                seen.append(_outcome(conn, sql))
        outcomes.append(seen)
    assert outcomes[0] == outcomes[1]


def test_cursor_over_tables_on_s3(s3, bucket, data_dir, bemidb_server):  # noqa: F811
    """The same cursor over a table stored on S3 (SeaweedFS): each cursor's own DuckDB cursor reads the S3
    files through the server's registered filesystem, and its rows and row count are those of the table."""
    import pyarrow as pa

    from bemidb import config
    from bemidb.storage.catalog import open_catalog
    from bemidb.storage.writer import write_table

    env = {**s3.env(bucket), "BEMIDB_DATA_DIR": str(data_dir)}
    catalog = open_catalog(config.resolve(None, config.STORAGE, env=env))
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("label", pa.string())])
    rows = 150_000
    write_table(catalog, ("public", "events"), schema, [pa.RecordBatch.from_pydict(
        {"id": list(range(rows)), "label": [f"l{i % 5}" for i in range(rows)]}, schema=schema)])
    server = bemidb_server(data_dir, env=env)
    with psycopg.connect(server.dsn("s3user")) as conn:
        with conn.cursor(name="on_s3") as cur:
            cur.execute("SELECT id, label FROM events WHERE id %% %s = 0 ORDER BY id", (3,))
            pages = []
            while page := cur.fetchmany(20_000):
                pages.append(len(page))
                assert page[0][1] == f"l{page[0][0] % 5}"
        assert sum(pages) == rows // 3 and len(pages) == 3
        assert conn.execute("SELECT reltuples FROM pg_class WHERE relname = 'events'").fetchone() == (rows,)
