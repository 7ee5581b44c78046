"""A source table asked for by its source name: the error names the relation once, as Postgres does, with a
HINT naming the table it is served as; failed statements reach the log with their text, literals hidden at INFO.
On local disk and on SeaweedFS S3; Postgres is the oracle for the message."""

from __future__ import annotations

import psycopg
import pytest

from tests.support.commands import run_bemidb
from tests.support.server import start_server

DB = "first_hour_errors"


@pytest.fixture(scope="module")
def source(pg):
    pg.create_database(DB)
    pg.execute(DB, "CREATE SCHEMA analytics; CREATE TABLE analytics.page_views (id int PRIMARY KEY, path text); "
                   "INSERT INTO analytics.page_views VALUES (1, '/a')")
    return pg


@pytest.fixture(params=["local", "s3"])
def served(request, source, tmp_path):
    env = {}
    if request.param == "s3":
        s3 = request.getfixturevalue("s3")
        env = s3.env(request.getfixturevalue("bucket"))
    data_dir = tmp_path / "data"
    result = run_bemidb("sync", "postgres", "--data-dir", str(data_dir),
                        env={"SOURCE_POSTGRES_DATABASE_URL": source.url(DB), **env})
    assert result.returncode == 0, result.stderr
    server = start_server(data_dir, env=env, log_level="INFO")
    yield server
    server.stop()


def _error(dsn: str, sql: str) -> psycopg.Error:
    with psycopg.connect(dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as caught:
            conn.execute(sql)
    return caught.value


def test_missing_relation_is_said_as_postgres_says_it_with_a_hint(source, served):
    got = _error(served.dsn(), "SELECT * FROM analytics.page_views")
    assert got.sqlstate == "42P01"
    assert got.diag.message_primary == 'relation "analytics.page_views" does not exist'
    assert "public.analytics_page_views" in got.diag.message_hint and "--keep-schemas" in got.diag.message_hint
    # the message itself is Postgres's, word for word (a relation neither has)
    for sql in ("SELECT * FROM analytics.nope", "SELECT * FROM nope", 'SELECT * FROM "Mixed Case"'):
        ours, theirs = _error(served.dsn(), sql), _error(source.url(DB), sql)
        assert (ours.sqlstate, ours.diag.message_primary) == (theirs.sqlstate, theirs.diag.message_primary), sql


def test_failed_query_log_line_has_the_query_without_its_literals(served):
    secret = "hunter2-in-a-literal"
    _error(served.dsn(), f"SELECT * FROM missing_table WHERE token = '{secret}' AND n = 42")
    lines = [line for line in served.log().splitlines() if "error 42P01" in line and "missing_table" in line]
    assert len(lines) == 1, served.log()[-3000:]
    assert "query: SELECT * FROM missing_table WHERE token = '***' AND n = 42" in lines[0]
    assert secret not in served.log()
    _error(served.dsn(), "SELECT * FROM other_missing WHERE a = E'it\\'s-secret-2' OR b = $t$secret-3$t$")
    lines = [line for line in served.log().splitlines() if "other_missing" in line]
    assert len(lines) == 1 and "a = '***' OR b = '***'" in lines[0], served.log()[-2000:]
    assert "secret-2" not in served.log() and "secret-3" not in served.log()
    long_query = "SELECT * FROM missing_table WHERE " + " OR ".join(f"n = {i}" for i in range(500))
    _error(served.dsn(), long_query)
    logged = [line for line in served.log().splitlines() if "n = 499" in line or "n = 1 OR" in line]
    assert logged and all(len(line) < 500 for line in logged) and logged[-1].endswith("…")
