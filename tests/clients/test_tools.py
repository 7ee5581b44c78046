"""The catalog queries of BI tools and IDEs (tests/data/tool_catalog_queries.sql) against bemidb and the source
Postgres, plus PgJDBC's DatabaseMetaData (what Metabase, DBeaver and DataGrip call) through a real JVM."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.clients.test_psql import SOURCE_DDL
from tests.support.synced import create_source, serve_synced

QUERIES = Path(__file__).parent.parent / "data" / "tool_catalog_queries.sql"
JDBC_JAR = Path.home() / ".m2/repository/org/postgresql/postgresql/42.7.13/postgresql-42.7.13.jar"


def _blocks() -> list[tuple[str, str]]:
    parts = re.split(r"^-- name: (.+)$", QUERIES.read_text(), flags=re.M)
    return [(parts[i].strip(), parts[i + 1].strip().rstrip(";")) for i in range(1, len(parts), 2)]


@pytest.fixture(scope="module")
def source(pg):
    return create_source(pg, "compat_tools", SOURCE_DDL)


@pytest.fixture(scope="module")
def server(source, warehouse):
    """Synced and served from local disk, then from S3."""
    yield from serve_synced(source, warehouse)


def _rows(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize(("name", "sql"), _blocks(), ids=[name for name, _ in _blocks()])
def test_tool_query(server, source, name, sql):
    ours = _rows(server.dsn("postgres"), sql)
    if "compare" in name:
        assert ours == _rows(source, sql)
    elif "rows" in name:
        assert ours


JAVA_SOURCE = """
import java.sql.*;
public class Meta {
  public static void main(String[] a) throws Exception {
    try (Connection c = DriverManager.getConnection(a[0], a[1], a[2])) {
      DatabaseMetaData m = c.getMetaData();
      System.out.println("product " + m.getDatabaseProductName());
      try (ResultSet r = m.getSchemas()) { while (r.next()) System.out.println("schema " + r.getString(1)); }
      try (ResultSet r = m.getTables(null, "public", "%", new String[]{"TABLE", "VIEW", "MATERIALIZED VIEW"})) {
        while (r.next()) System.out.println("table " + r.getString(3) + " " + r.getString(4) + " " + r.getString(5));
      }
      try (ResultSet r = m.getColumns(null, "public", "everything", "%")) {
        while (r.next()) System.out.println("column " + r.getString(4) + " " + r.getInt(5) + " " + r.getString(6)
            + " " + r.getInt(7) + " " + r.getString(18) + " " + r.getInt(17));
      }
      try (ResultSet r = m.getPrimaryKeys(null, "public", "everything")) {
        while (r.next()) System.out.println("pk " + r.getString(4));
      }
      try (ResultSet r = m.getTypeInfo()) { int n = 0; while (r.next()) n++; System.out.println("types " + (n > 20)); }
      try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT id, note FROM everything")) {
        ResultSetMetaData md = r.getMetaData();
        System.out.println("rsmd " + md.getColumnTypeName(1) + " " + md.getColumnTypeName(2));
      }
    }
  }
}
"""


@pytest.fixture(scope="module")
def meta_class(tmp_path_factory):
    if not JDBC_JAR.exists() or shutil.which("javac") is None:
        pytest.skip("PgJDBC jar or a JDK is not on this machine")
    folder = tmp_path_factory.mktemp("jdbc")
    (folder / "Meta.java").write_text(JAVA_SOURCE)
    subprocess.run(["javac", "-cp", str(JDBC_JAR), "Meta.java"], cwd=folder, check=True, capture_output=True)
    return folder


def _java_meta(folder: Path, url: str, user: str, password: str) -> list[str]:
    result = subprocess.run(["java", "-cp", f"{JDBC_JAR}:{folder}", "Meta", url, user, password],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.splitlines()


def test_jdbc_database_metadata_matches_postgres(server, source, pg, meta_class):
    ours = _java_meta(meta_class, f"jdbc:postgresql://{server.host}:{server.port}/{server.database}?sslmode=disable",
                      "postgres", "")
    theirs = _java_meta(meta_class, f"jdbc:postgresql://127.0.0.1:{pg.port}/compat_tools", pg.user, pg.password)
    assert "product PostgreSQL" in ours
    assert [line for line in ours if line.startswith("schema")] == ["schema information_schema",
                                                                    "schema pg_catalog", "schema public"]
    for prefix in ("table ", "column ", "pk ", "types ", "rsmd "):
        assert [line for line in ours if line.startswith(prefix)] == \
            [line for line in theirs if line.startswith(prefix)], prefix
