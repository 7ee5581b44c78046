"""Primary-key point lookups (issue 17 (c)): `select * from t where id = $1` through a real client with
server-side prepared statements, compared with the source Postgres, on local disk and on SeaweedFS S3.
What makes them fast must never make them stale: Parquet footers cached across queries (Iceberg files never
change; a sync writes new ones), result encoders reused by a prepared statement run again. A sync's changes
are seen by the next lookup after the server's refresh interval, by the same prepared statement of the same
connection."""

from __future__ import annotations

import time

import psycopg
import pytest

from bemidb import config
from bemidb.server.engine import REFRESH_INTERVAL, Engine
from tests.support.commands import run_bemidb
from tests.support.synced import create_source, serve_synced

ROWS = 20_000
DDL = f"""
CREATE TABLE accounts (id bigint PRIMARY KEY, name text, balance numeric(12,2), opened date, note varchar(40));
INSERT INTO accounts SELECT i * 3, 'account ' || i, (i * 7 % 100000) / 100.0, DATE '2020-01-01' + (i % 900),
                            CASE WHEN i % 5 = 0 THEN NULL ELSE repeat('x', i % 40) END
FROM generate_series(1, {ROWS}) AS i;
CREATE TABLE labels (id integer PRIMARY KEY, label varchar(20));
INSERT INTO labels VALUES (1, 'one'), (2, 'two');
CREATE TABLE measures (id integer PRIMARY KEY, v integer);
INSERT INTO measures VALUES (1, 10), (2, 20);
"""
LOOKUP = "select * from accounts where id = %s"
KEYS = [3, 4, 1500, 29_997, 60_000, 60_001, -3]  # first, absent (not a multiple of 3), ..., last, beyond


@pytest.fixture(scope="module")
def source(pg, warehouse):
    return create_source(pg, f"lookups_{warehouse.kind}", DDL)


@pytest.fixture(scope="module")
def server(source, warehouse):
    yield from serve_synced(source, warehouse)


def _lookups(conn, keys=KEYS) -> list:
    return [conn.execute(LOOKUP, (key,), prepare=True).fetchall() for key in keys]


def test_lookups_by_key_answer_as_postgres(server, source):
    with psycopg.connect(server.dsn(), autocommit=True) as bemidb, psycopg.connect(source) as postgres:
        for _ in range(2):  # the second round runs the prepared statement again (encoder reused)
            assert _lookups(bemidb) == _lookups(postgres)


def test_a_sync_is_seen_by_the_next_lookup_of_the_same_prepared_statement(server, source, warehouse):
    with psycopg.connect(server.dsn(), autocommit=True) as bemidb, \
            psycopg.connect(source, autocommit=True) as postgres:
        before = _lookups(bemidb)
        assert before == _lookups(postgres)
        postgres.execute("UPDATE accounts SET balance = balance + 1, note = 'changed' WHERE id IN (3, 1500)")
        postgres.execute("DELETE FROM accounts WHERE id = 29997")
        postgres.execute("INSERT INTO accounts VALUES (60001, 'new', 1.25, DATE '2024-02-29', NULL)")
        run_bemidb("sync", "postgres", "--database-url", source, env=warehouse.env, check=True)
        time.sleep(REFRESH_INTERVAL + 0.2)  # the server looks at the catalog at most once a second
        after = _lookups(bemidb)
        assert after == _lookups(postgres)
        assert after != before


def test_a_column_retyped_by_a_sync_is_described_anew_by_the_same_prepared_statement(server, source, warehouse):
    """varchar -> text keeps the Arrow schema and DuckDB's types: only the served table's info changes, and a
    prepared statement run again must describe its result from it, not reuse its last encoder."""
    query = "select * from labels where id = %s"

    def described(conn) -> list:
        cur = conn.execute(query, (2,), prepare=True)
        return [(d.name, d.type_code) for d in cur.description] + cur.fetchall()

    with psycopg.connect(server.dsn(), autocommit=True) as bemidb, \
            psycopg.connect(source, autocommit=True) as postgres:
        assert described(bemidb) == described(postgres)
        postgres.execute("ALTER TABLE labels ALTER COLUMN label TYPE text")
        run_bemidb("sync", "postgres", "--database-url", source, env=warehouse.env, check=True)
        time.sleep(REFRESH_INTERVAL + 0.2)
        assert described(bemidb) == described(postgres)
        assert described(postgres)[1] == ("label", 25)


def _parameter_types(conn, sql: str) -> list[int]:
    """Parse (unnamed) + Describe statement, as clients that never prepare send before each run."""
    pgconn = conn.pgconn
    assert pgconn.prepare(b"", sql.encode(), None).status == psycopg.pq.ExecStatus.COMMAND_OK
    described = pgconn.describe_prepared(b"")
    return [described.param_type(i) for i in range(described.nparams)]


def test_unnamed_statements_parsed_again_answer_and_describe_as_postgres_across_a_retyping_sync(
        server, source, warehouse):
    """The parameter types DuckDB infers are kept per statement text (clients Parse the same text before each
    run): a sync that retypes the compared column must change them, and the answers, as in Postgres."""
    sql = "select * from measures where v = $1"
    with psycopg.connect(server.dsn(), autocommit=True) as bemidb, \
            psycopg.connect(source, autocommit=True) as postgres:
        for _ in range(2):
            assert _parameter_types(bemidb, sql) == _parameter_types(postgres, sql) == [23]
            assert [bemidb.execute(sql.replace("$1", "%s"), (v,), prepare=False).fetchall() for v in (20, 30)] == \
                [[(2, 20)], []]
        postgres.execute("ALTER TABLE measures ALTER COLUMN v TYPE text")
        run_bemidb("sync", "postgres", "--database-url", source, env=warehouse.env, check=True)
        time.sleep(REFRESH_INTERVAL + 0.2)
        assert _parameter_types(bemidb, sql) == _parameter_types(postgres, sql) == [25]
        query = sql.replace("$1", "%s")
        assert bemidb.execute(query, ("20",), prepare=False).fetchall() == \
            postgres.execute(query, ("20",), prepare=False).fetchall() == [(2, "20")]


def test_session_cursors_read_parquet_footers_from_the_cache(server, warehouse):
    """The engine's Parquet settings must reach every session's cursor (an extension option set without GLOBAL held for
    the engine's own connection only: each client query parsed the footers again)."""
    engine = Engine(config.resolve(None, list(config.SETTINGS), env=warehouse.env))
    cursor = engine.cursor()
    assert cursor.execute("SELECT current_setting('parquet_metadata_cache')").fetchone()[0] is True
    assert cursor.execute("SELECT count(*) FROM public.accounts").fetchone()[0] >= ROWS - 1
