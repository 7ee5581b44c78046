"""What a session derives from its settings is computed once per change, not per query (statement_timeout in
ms, the values pushed into DuckDB: TimeZone, search_path, the GUC map current_setting reads). A SET between two
runs of the same prepared statement must still be seen by the next run: each test SETs a setting the cache
reads between runs of one server-side prepared statement (psycopg, prepare=True) and compares with the same
statements on the source Postgres, on local disk and on SeaweedFS S3."""

from __future__ import annotations

import time
from contextlib import contextmanager

import psycopg
import pytest

from tests.support.commands import run_bemidb
from tests.support.server import start_server
from tests.support.synced import create_source

DDL = """
CREATE SCHEMA north;
CREATE SCHEMA south;
CREATE TABLE north.t (id integer PRIMARY KEY, a text);
INSERT INTO north.t VALUES (1, 'north one'), (2, 'north two');
CREATE TABLE south.t (id integer PRIMARY KEY, a text);
INSERT INTO south.t VALUES (1, 'south one'), (2, NULL);
"""

# A cross product DuckDB cannot shortcut: its run time grows with $1.
SLOW = "SELECT count(*) FROM range(%s) a, range(100000) b WHERE a.range + b.range = -1"


@pytest.fixture(scope="module")
def source(pg, warehouse):
    return create_source(pg, f"settings_cache_{warehouse.kind}", DDL)


@pytest.fixture(scope="module")
def server(source, warehouse):
    # --keep-schemas: north.t and south.t are served as such, so that the search_path chooses between them
    run_bemidb("sync", "postgres", "--database-url", source, "--keep-schemas", env=warehouse.env, check=True)
    process = start_server(warehouse.data_dir, env=warehouse.env, log_level="INFO")
    try:
        yield process
    finally:
        process.stop()


def _run(conn, sql: str, params: tuple) -> tuple[list, list]:
    cur = conn.execute(sql, params, prepare=True)
    return [(d.name, d.type_code) for d in cur.description], cur.fetchall()


@contextmanager
def _bemidb_and_postgres(server, source):
    with psycopg.connect(server.dsn(), autocommit=True) as bemidb, \
            psycopg.connect(source, autocommit=True) as postgres:
        yield bemidb, postgres


def _set_on_both(conns: tuple, sql: str) -> None:
    for conn in conns:
        conn.execute(sql)


def _both(bemidb, postgres, sql: str, params: tuple = ()) -> tuple[list, list]:
    ours = _run(bemidb, sql, params)
    assert ours == _run(postgres, sql, params)
    return ours


def test_search_path_set_between_runs_of_a_prepared_statement_is_seen(server, source):
    """The same text names another table after SET search_path: other rows (Postgres plans a prepared
    statement again when the search_path changed; with other result columns it would refuse to)."""
    sql = "select * from t where id = %s"
    with _bemidb_and_postgres(server, source) as (bemidb, postgres):
        answers = []
        for path in ("north", "south", "north", "south, north"):
            _set_on_both((bemidb, postgres), f"SET search_path = {path}")
            answers.append(_both(bemidb, postgres, sql, (1,)))
            assert _both(bemidb, postgres, "select current_schema()") == ([("current_schema", 19)], [(path[:5],)])
        assert answers[0] != answers[1] and answers[0] == answers[2] and answers[1] == answers[3]


def test_timezone_set_between_runs_of_a_prepared_statement_is_seen(server, source):
    sql = "select %s::timestamptz::text as shown, current_setting('TimeZone') as zone, (%s::timestamptz)::date as day"
    instant = "2024-03-10 06:30:00+00"
    with _bemidb_and_postgres(server, source) as (bemidb, postgres):
        seen = []
        for zone in ("UTC", "Asia/Tokyo", "America/New_York", "UTC"):
            _set_on_both((bemidb, postgres), f"SET TimeZone = '{zone}'")
            seen.append(_both(bemidb, postgres, sql, (instant, instant))[1])
        assert len({row[0][0] for row in seen}) == 3  # three zones, three texts of the same instant


def test_custom_and_reported_settings_set_between_runs_are_seen_by_current_setting(server, source):
    sql = "select current_setting('bemidb_test.flavour'), current_setting('application_name'), %s::int"
    with _bemidb_and_postgres(server, source) as (bemidb, postgres):
        for n, (flavour, app) in enumerate([("plain", "first"), ("salted", "first"), ("salted", "second")]):
            _set_on_both((bemidb, postgres), f"SET bemidb_test.flavour = '{flavour}'")
            _set_on_both((bemidb, postgres), f"SET application_name = '{app}'")
            assert _both(bemidb, postgres, sql, (n,))[1] == [(flavour, app, n)]


def _seconds(conn, size: int) -> float:
    started = time.monotonic()
    conn.execute(SLOW, (size,), prepare=True).fetchall()
    return time.monotonic() - started


def test_statement_timeout_set_between_runs_of_a_prepared_statement_takes_effect(server):
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        size = 16
        while _seconds(conn, size) < 1.0:  # a size the same prepared statement needs a second or more for
            size *= 4
            assert size < 10**9, "the cross product never took a second"
        conn.execute("SET statement_timeout = '200ms'")
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
            conn.execute(SLOW, (size,), prepare=True)
        assert conn.execute(SLOW, (4,), prepare=True).fetchall() == [(0,)]  # the session goes on
        conn.execute("SET statement_timeout = 0")  # off again: the same run completes
        assert conn.execute(SLOW, (size,), prepare=True).fetchall() == [(0,)]
        conn.execute("SET statement_timeout = '200ms'")  # on again, the value read before this change
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
            conn.execute(SLOW, (size,), prepare=True)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("200ms",)
