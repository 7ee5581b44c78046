"""Real clients (psql, psycopg 3, pg8000, asyncpg, PgJDBC) against a real `bemidb serve` process."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support.items import ITEMS, write_items
from tests.support.server import start_server

UTC = dt.UTC


@pytest.fixture(scope="module")
def server(warehouse):
    """One server for the module, on local disk and on S3: every test here only reads."""
    write_items(warehouse.data_dir, env=warehouse.env)
    process = start_server(warehouse.data_dir, env=warehouse.env)
    yield process
    process.stop()


# -- psql ------------------------------------------------------------------------------------------------------


def psql(server, *args: str, check: bool = True, dsn: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(["psql", dsn or server.dsn("alice"), "-X", "-v", "ON_ERROR_STOP=1", *args],
                            capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"psql failed: {result.stderr}\nserver log:\n{server.log()[-3000:]}")
    return result


def test_psql_statements_copy_and_errors(server):
    out = psql(server, "-At", "-c", "SELECT id, name, price, active FROM items ORDER BY id; SELECT 40 + 2").stdout
    assert out.splitlines() == ["1|apple|1.50|t", '2|pear, "green"|-20.05|f', "3|||", "42"]

    out = psql(server, "-At", "-c", "SELECT created, day, blob, tags FROM items WHERE id = 1").stdout
    assert out.strip() == "2024-01-02 03:04:05.123456+00|2024-01-02|\\x0001ff|{red,fruit}"

    out = psql(server, "-c", "\\copy (SELECT id, name FROM items ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)")
    assert out.stdout.splitlines() == ["id,name", "1,apple", '2,"pear, ""green"""', "3,"]
    out = psql(server, "-c", "\\copy (SELECT id, name, tags FROM items ORDER BY id) TO STDOUT")
    assert out.stdout.splitlines() == ["1\tapple\t{red,fruit}", '2\tpear, "green"\t{"a b",NULL,""}',
                                       "3\t\\N\t\\N"]

    bad = psql(server, "-c", "SELECT nope FROM items", check=False)
    assert bad.returncode != 0
    assert 'column "nope" does not exist' in bad.stderr
    assert "LINE 1: SELECT nope FROM items" in bad.stderr  # psql prints the position it was given
    verbose = psql(server, "-v", "VERBOSITY=verbose", "-c", "SELECT * FROM missing_table", check=False)
    assert "42P01" in verbose.stderr and 'relation "missing_table" does not exist' in verbose.stderr
    syntax = psql(server, "-v", "VERBOSITY=verbose", "-c", "SELEC 1", check=False)
    assert "42601" in syntax.stderr
    # the server is still fine for the next client
    assert psql(server, "-At", "-c", "SELECT count(*) FROM items").stdout.strip() == "3"


def test_psql_transactions_and_empty_query(server):
    out = psql(server, "-Atq", "-c", "BEGIN; SELECT 1; COMMIT; ROLLBACK").stdout
    assert out.splitlines() == ["1"]
    result = psql(server, "-c", ";", check=False)
    assert result.returncode == 0


def test_set_config_is_set_and_answers_like_postgres(server, pg, tmp_path):
    """SELECT set_config(...) (pg_dump, ORMs): the setting changes for the session, as SET would, and the
    row, its column name and SHOW afterwards are Postgres's; through psql (simple) and psycopg (extended)."""
    import psycopg

    script = ("SELECT set_config('search_path', 'elsewhere, public', false); SHOW search_path; "
              "SELECT pg_catalog.set_config('application_name', 'it''s me', true) AS app; "
              "SELECT current_setting('application_name')")
    ours = psql(server, "-A", "-c", script).stdout
    theirs = subprocess.run(["psql", pg.url(), "-X", "-A", "-c", script], capture_output=True, text=True,
                            check=True).stdout
    assert ours == theirs and "elsewhere, public" in ours and "app\nit's me" in ours
    with psycopg.connect(server.dsn("alice"), autocommit=True) as conn:
        cursor = conn.execute("SELECT set_config('search_path', 'nowhere', false)")
        assert cursor.fetchall() == [("nowhere",)] and cursor.description[0].name == "set_config"
        with pytest.raises(psycopg.errors.UndefinedTable):  # items is in public, no longer searched
            conn.execute("SELECT count(*) FROM items")
        conn.execute("SELECT set_config('search_path', 'public', false)")
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (3,)
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            conn.execute("SELECT set_config('statement_timeout', 'soon', false)")


# -- psycopg 3 -------------------------------------------------------------------------------------------------


def test_psycopg_simple_params_prepared_binary(server):
    import psycopg

    with psycopg.connect(server.dsn("alice"), autocommit=True) as conn:
        assert conn.info.server_version >= 160000
        assert conn.info.parameter_status("server_encoding") == "UTF8"
        assert conn.info.parameter_status("integer_datetimes") == "on"
        rows = conn.execute("SELECT id, name FROM items WHERE id <= %s ORDER BY id", [2]).fetchall()
        assert rows == [(1, "apple"), (2, 'pear, "green"')]
        for binary in (False, True):
            for prepare in (False, True):
                cur = conn.cursor(binary=binary)
                cur.execute("SELECT id, name, price, active, created, tags, payload, blob, day, ratio "
                            "FROM items WHERE id = %s", [1], prepare=prepare)
                row = cur.fetchone()
                assert row == (1, "apple", Decimal("1.50"), True, ITEMS[0]["created"], ["red", "fruit"],
                               {"a": 1, "b": [1, 2]}, b"\x00\x01\xff", dt.date(2024, 1, 2), 0.1), (binary, prepare)
        # NULLs and awkward values survive both formats
        for binary in (False, True):
            row = conn.cursor(binary=binary).execute(
                "SELECT name, price, tags, blob, ratio FROM items WHERE id = 3").fetchone()
            assert row == (None, None, None, None, None)
            row = conn.cursor(binary=binary).execute(
                "SELECT tags, price, ratio FROM items WHERE id = 2").fetchone()
            assert row == (["a b", None, ""], Decimal("-20.05"), -1.5e100)
        # the same prepared statement many times (psycopg prepares after 5 executions by default)
        for i in range(8):
            assert conn.execute("SELECT %s::int + 1", [i]).fetchone() == (i + 1,)


def test_backend_pid_is_the_pid_from_backend_key_data(server):
    """pg_backend_pid() and pg_stat_activity name the pid the client got in BackendKeyData (libpq and PgJDBC
    pass it to pg_cancel_backend and match log lines with it)."""
    import psycopg

    with psycopg.connect(server.dsn("alice")) as conn, psycopg.connect(server.dsn("bob")) as other:
        pid = conn.info.backend_pid
        assert pid and pid != other.info.backend_pid
        assert conn.execute("SELECT pg_backend_pid()").fetchone() == (pid,)
        assert other.execute("SELECT pg_backend_pid()").fetchone() == (other.info.backend_pid,)
        row = conn.execute("SELECT usename FROM pg_stat_activity WHERE pid = pg_backend_pid()").fetchone()
        assert row == ("alice",)


def test_psycopg_errors_keep_connection_usable(server):
    import psycopg

    with psycopg.connect(server.dsn("alice")) as conn:
        with pytest.raises(psycopg.errors.UndefinedColumn):
            conn.execute("SELECT nope FROM items")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (3,)
        conn.commit()
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM nowhere WHERE id = %s", [1])
        conn.rollback()
        assert conn.execute("SELECT %s::text", ["ok"]).fetchone() == ("ok",)


# -- pg8000 ----------------------------------------------------------------------------------------------------


def test_pg8000(server):
    import pg8000.native

    conn = pg8000.native.Connection(**server.conninfo("alice"))
    try:
        rows = conn.run("SELECT id, name, price, active, day FROM items WHERE id = :id", id=1)
        assert rows == [[1, "apple", Decimal("1.50"), True, dt.date(2024, 1, 2)]]
        assert conn.run("SELECT count(*) FROM items") == [[3]]
        with pytest.raises(pg8000.native.DatabaseError) as info:
            conn.run("SELECT * FROM nope")
        assert info.value.args[0]["C"] == "42P01"
        assert conn.run("SELECT 'still here'") == [["still here"]]
    finally:
        conn.close()


# -- asyncpg ---------------------------------------------------------------------------------------------------


def test_asyncpg_prepared_binary(server):
    import asyncpg

    async def main():
        conn = await asyncpg.connect(**server.conninfo("alice"))
        try:
            stmt = await conn.prepare("SELECT id, name, price, active, created, day, ratio, blob "
                                      "FROM items WHERE id = $1")
            row = await stmt.fetchrow(1)
            assert tuple(row) == (1, "apple", Decimal("1.50"), True, ITEMS[0]["created"], dt.date(2024, 1, 2),
                                  0.1, b"\x00\x01\xff")
            rows = await conn.fetch("SELECT id FROM items WHERE id > $1 ORDER BY id", 1)
            assert [r["id"] for r in rows] == [2, 3]
            assert await conn.fetchval("SELECT count(*) FROM items") == 3
            with pytest.raises(asyncpg.UndefinedTableError):
                await conn.fetch("SELECT * FROM nope")
            assert await conn.fetchval("SELECT $1::bigint * 2", 21) == 42
        finally:
            await conn.close()

    asyncio.run(main())


# -- PgJDBC ----------------------------------------------------------------------------------------------------

JDBC_JAR = Path.home() / ".m2/repository/org/postgresql/postgresql/42.7.13/postgresql-42.7.13.jar"
JAVA_SOURCE = r"""
import java.sql.*;
import java.util.Properties;

public class JdbcCheck {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.setProperty("user", "alice");
        props.setProperty("sslmode", "disable");
        try (Connection c = DriverManager.getConnection(args[0], props)) {
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT id, name, price, active, day FROM items WHERE id <= ? ORDER BY id")) {
                for (int round = 0; round < 6; round++) {  // prepareThreshold=5: server-side prepare kicks in
                    ps.setLong(1, 2);
                    try (ResultSet rs = ps.executeQuery()) {
                        StringBuilder sb = new StringBuilder();
                        while (rs.next()) {
                            sb.append(rs.getLong(1)).append('|').append(rs.getString(2)).append('|')
                              .append(rs.getBigDecimal(3)).append('|').append(rs.getBoolean(4)).append('|')
                              .append(rs.getDate(5)).append(';');
                        }
                        if (round == 5) System.out.println(sb);
                    }
                }
            }
            c.setAutoCommit(false);  // fetch size only streams inside a transaction: Execute with a row limit
            try (Statement st = c.createStatement()) {
                st.setFetchSize(1000);
                try (ResultSet rs = st.executeQuery("SELECT range AS n FROM range(25000)")) {
                    long sum = 0, rows = 0;
                    while (rs.next()) { sum += rs.getLong(1); rows++; }
                    System.out.println("rows=" + rows + " sum=" + sum);
                }
            }
            c.commit();
            try (Statement st = c.createStatement()) {
                st.executeQuery("SELECT nope FROM items");
            } catch (SQLException e) {
                System.out.println("error=" + e.getSQLState());
            }
            c.rollback();
            try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT 7")) {
                rs.next();
                System.out.println("after=" + rs.getInt(1));
            }
        }
    }
}
"""


def test_pgjdbc(server, tmp_path):
    if not JDBC_JAR.exists() or not shutil.which("javac"):
        pytest.skip("PgJDBC jar or javac not on this machine")
    (tmp_path / "JdbcCheck.java").write_text(JAVA_SOURCE)
    subprocess.run(["javac", "-cp", str(JDBC_JAR), "JdbcCheck.java"], cwd=tmp_path, check=True, timeout=120)
    url = f"jdbc:postgresql://127.0.0.1:{server.port}/bemidb"
    result = subprocess.run(["java", "-cp", f"{JDBC_JAR}:{tmp_path}", "JdbcCheck", url], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr + server.log()[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == '1|apple|1.50|true|2024-01-02;2|pear, "green"|-20.05|false|1999-12-31;'
    assert lines[1] == f"rows=25000 sum={sum(range(25000))}"
    assert lines[2] == "error=42703"
    assert lines[3] == "after=7"
    assert json.dumps  # keep json imported for payload checks above
