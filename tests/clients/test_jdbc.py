"""PgJDBC 42.7 (DatabaseMetaData, ResultSetMetaData, a prepared statement with setDate and a UUID) against the
test Postgres and bemidb serving a sync of it, compared line by line (tests/clients/jdbc/Metadata.java)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest

from tests.support.commands import run_bemidb
from tests.support.server import start_server

JAR = Path.home() / ".m2/repository/org/postgresql/postgresql/42.7.13/postgresql-42.7.13.jar"
PROGRAM = Path(__file__).parent / "jdbc" / "Metadata.java"
pytestmark = pytest.mark.skipif(shutil.which("java") is None or not JAR.exists(), reason="java or PgJDBC missing")

SOURCE_DDL = """
CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(12,2) DEFAULT 0,
    placed date, uid uuid, note varchar(40), order_note text);
COMMENT ON TABLE orders IS 'customer orders';
INSERT INTO orders (customer, total, placed, uid) SELECT 'c' || g, g * 1.5, '2024-01-01'::date + g,
    gen_random_uuid() FROM generate_series(1, 5) g;
"""

# Lines that differ on purpose, with the reason (README, Client compatibility): none today. ResultSetMetaData
# (rsmd, shapes) is compared too: PgJDBC looks each result column up in pg_attribute by the table OID and column
# number RowDescription carries, so its isNullable and isAutoIncrement are attnotnull and the column default.
KNOWN: set[str] = set()


@pytest.fixture(scope="module")
def source(pg):
    url = pg.create_database("compat_jdbc")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SOURCE_DDL)
    return url


@pytest.fixture(scope="module")
def server(source, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("compat-jdbc") / "data"
    data_dir.mkdir()
    run_bemidb("sync", "postgres", "--database-url", source, env={"BEMIDB_DATA_DIR": str(data_dir)}, check=True)
    process = start_server(data_dir, log_level="INFO")
    yield process
    process.stop()


def _run(dsn: str) -> list[str]:
    url = urlparse(dsn)
    jdbc = f"jdbc:postgresql://{url.hostname}:{url.port}{url.path}?sslmode=disable"
    done = subprocess.run(["java", "-cp", str(JAR), str(PROGRAM), jdbc, url.username or "", url.password or ""],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_pgjdbc_metadata_as_postgres(server, source):
    ours, theirs = _run(server.dsn("alice")), _run(source)
    assert any(line.startswith("columns |") for line in theirs)
    assert any(line.startswith("keywords |") and ",analyse," in line for line in theirs)
    assert "escaped | COLUMN_NAME=order_note | ORDINAL_POSITION=7" in theirs
    differ = [(a, b) for a, b in zip(ours, theirs, strict=False) if a != b]
    assert len(ours) == len(theirs) and [d for d in differ if d[0].split(" |")[0] not in KNOWN] == []
