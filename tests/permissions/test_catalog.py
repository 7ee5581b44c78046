"""The catalog follows the grants: psql's \\dt and \\d, information_schema, pg_class/pg_attribute and
SQLAlchemy's inspector show a restricted user only the tables and columns it may read; the same probes as
BEMIDB_USER show everything (so the filter is the grants', not a catalog that lost rows)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
import sqlalchemy

from tests.support import permissions as world

VISIBLE = {  # what the users file grants, as (table -> columns in table order)
    "analyst": {"orders": ["id", "user_id", "amount", "status"], "users": ["id", "name"],
                "report_daily": ["day", "total"], "report_monthly": ["month", "total"]},
    "tenant1": {"orders": ["id", "user_id", "amount", "status", "tenant_id"]},
}


def psql(dsn: str, command: str, password: str) -> subprocess.CompletedProcess:
    return subprocess.run(["psql", dsn, "-X", "-c", command], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PGPASSWORD": password})


def _login(server, user):
    password = world.ADMIN_PASSWORD if user == world.ADMIN else world.PASSWORDS[user]
    return server.dsn(user), password


@pytest.mark.parametrize("user", ["analyst", "tenant1"])
def test_psql_lists_and_describes_only_granted_tables_and_columns(server, user):
    dsn, password = _login(server, user)
    listing = psql(dsn, r"\dt", password)
    assert listing.returncode == 0, listing.stderr
    assert sorted(re.findall(r"^\s*public\s*\|\s*(\w+)\s*\|\s*table", listing.stdout, re.M)) == sorted(VISIBLE[user])
    described = psql(dsn, r"\d orders", password)
    assert described.returncode == 0, described.stderr
    columns = re.findall(r"^\s*(\w+)\s*\|", described.stdout.split("Column", 1)[1], re.M)
    assert columns == VISIBLE[user]["orders"]
    denied = psql(dsn, r"\d secret", password)
    absent = psql(dsn, r"\d no_such_table", password)
    assert "Did not find any relation named" in denied.stderr
    assert denied.stderr.replace("secret", "X") == absent.stderr.replace("no_such_table", "X")


def test_admin_sees_every_table(server):
    dsn, password = _login(server, world.ADMIN)
    listing = psql(dsn, r"\dt", password)
    assert {"secret", "orders", "users"} <= set(re.findall(r"^\s*public\s*\|\s*(\w+)\s*\|", listing.stdout, re.M))


@pytest.mark.parametrize("user", ["analyst", "tenant1", world.ADMIN])
def test_information_schema_and_pg_catalog_follow_the_grants(server, source, user):
    dsn, password = _login(server, user)
    with psycopg.connect(server.dsn(user, password), autocommit=True) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
        columns = {}
        for table, column in conn.execute("SELECT table_name, column_name FROM information_schema.columns "
                                          "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"):
            columns.setdefault(table, []).append(column)
        classes = {r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'")}
        attributes = [r[0] for r in conn.execute(
            "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relname = 'users' AND a.attnum > 0 ORDER BY a.attnum")]
        regclass = conn.execute("SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.orders'::regclass "
                                "AND attnum > 0").fetchone()[0]
    if user == world.ADMIN:  # everything, as the source has it
        with psycopg.connect(source, autocommit=True) as conn:
            expected = {r[0]: r[1] for r in conn.execute(
                "SELECT table_name, array_agg(column_name::text ORDER BY ordinal_position) "
                "FROM information_schema.columns WHERE table_schema = 'public' GROUP BY 1")}
    else:
        expected = VISIBLE[user]
    assert tables == set(expected) == classes
    assert columns == expected
    assert attributes == expected.get("users", [])
    assert regclass == len(expected["orders"])


@pytest.mark.parametrize("user", ["analyst", "tenant1"])
def test_sqlalchemy_inspector(server, user):
    url = server.dsn(user, world.PASSWORDS[user]).replace("postgresql://", "postgresql+psycopg://")
    engine = sqlalchemy.create_engine(url)
    try:
        inspector = sqlalchemy.inspect(engine)
        assert sorted(inspector.get_table_names()) == sorted(VISIBLE[user])
        assert [c["name"] for c in inspector.get_columns("orders")] == VISIBLE[user]["orders"]
        assert inspector.get_pk_constraint("orders")["constrained_columns"] == ["id"]
        with pytest.raises(sqlalchemy.exc.NoSuchTableError):
            inspector.get_columns("secret")
    finally:
        engine.dispose()


JDBC_JAR = Path.home() / ".m2/repository/org/postgresql/postgresql/42.7.13/postgresql-42.7.13.jar"
JAVA_SOURCE = """
import java.sql.*;
public class GrantsMeta {
  public static void main(String[] a) throws Exception {
    try (Connection c = DriverManager.getConnection(a[0], a[1], a[2])) {
      DatabaseMetaData m = c.getMetaData();
      try (ResultSet r = m.getTables(null, "public", "%", new String[]{"TABLE", "VIEW", "MATERIALIZED VIEW"})) {
        while (r.next()) System.out.println("table " + r.getString(3));
      }
      for (String t : new String[]{"orders", "users", "secret"}) {
        try (ResultSet r = m.getColumns(null, "public", t, "%")) {
          while (r.next()) System.out.println("column " + t + " " + r.getString(4));
        }
      }
      try (ResultSet r = m.getPrimaryKeys(null, "public", "secret")) {
        while (r.next()) System.out.println("pk secret " + r.getString(4));
      }
    }
  }
}
"""


def test_jdbc_metadata_follows_the_grants(server, tmp_path):
    if not JDBC_JAR.exists() or shutil.which("javac") is None:
        pytest.skip("PgJDBC jar or a JDK is not on this machine")
    (tmp_path / "GrantsMeta.java").write_text(JAVA_SOURCE)
    subprocess.run(["javac", "-cp", str(JDBC_JAR), "GrantsMeta.java"], cwd=tmp_path, check=True, capture_output=True)
    url = f"jdbc:postgresql://{server.host}:{server.port}/{server.database}?sslmode=disable"
    result = subprocess.run(["java", "-cp", f"{JDBC_JAR}:{tmp_path}", "GrantsMeta", url, "analyst",
                             world.PASSWORDS["analyst"]], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    visible = VISIBLE["analyst"]
    assert sorted(line.split()[1] for line in lines if line.startswith("table ")) == sorted(visible)
    for table in ("orders", "users"):
        assert [line.split()[2] for line in lines if line.startswith(f"column {table} ")] == visible[table]
    assert not [line for line in lines if "secret" in line]
