"""psqlODBC 13 (the driver under Tableau, Power BI and Excel) through pyodbc, against the test Postgres and
bemidb serving a sync of it: catalog calls, parameters, and UseDeclareFetch=1 (how Tableau reads big results:
every query through DECLARE/FETCH), compared."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from urllib.parse import urlparse

import psycopg
import pytest

from tests.support.commands import run_bemidb
from tests.support.server import start_server

pyodbc = pytest.importorskip("pyodbc")
pytestmark = pytest.mark.skipif("PostgreSQL Unicode" not in pyodbc.drivers(),
                                reason="psqlODBC not installed (apt-get install odbc-postgresql unixodbc)")

SOURCE_DDL = """
CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(12,2) DEFAULT 0,
    placed date, note varchar(40));
INSERT INTO orders (customer, total, placed) SELECT 'c' || (g % 9), g * 1.5, '2024-01-01'::date + g
    FROM generate_series(1, 700) g;
"""


@pytest.fixture(scope="module")
def source(pg):
    url = pg.create_database("compat_odbc")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SOURCE_DDL)
    return url


@pytest.fixture(scope="module")
def server(source, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("compat-odbc") / "data"
    data_dir.mkdir()
    run_bemidb("sync", "postgres", "--database-url", source, env={"BEMIDB_DATA_DIR": str(data_dir)}, check=True)
    process = start_server(data_dir, log_level="INFO")
    yield process
    process.stop()


def _connect(dsn: str, declare_fetch: bool):
    url = urlparse(dsn)
    return pyodbc.connect(f"DRIVER={{PostgreSQL Unicode}};SERVER={url.hostname};PORT={url.port};"
                          f"DATABASE={url.path.lstrip('/')};UID={url.username};PWD={url.password or ''};"
                          f"SSLmode=disable;UseDeclareFetch={int(declare_fetch)};Fetch=100", autocommit=False)


def _calls(dsn: str, declare_fetch: bool) -> dict:
    out = {}
    with _connect(dsn, declare_fetch) as conn:
        cur = conn.cursor()
        out["tables"] = [tuple(r)[1:4] for r in cur.tables(schema="public", tableType="TABLE")]
        out["columns"] = [(r.column_name, r.type_name, r.column_size, r.decimal_digits, r.nullable, r.column_def)
                          for r in cur.columns(table="orders", schema="public")]
        out["primary key"] = [tuple(r)[3:] for r in cur.primaryKeys("orders", schema="public")]
        for run in range(3):  # the same statement prepared again and again (psqlODBC reuses plan names)
            rows = cur.execute("SELECT id, customer, total, placed FROM orders WHERE placed >= ? AND customer = ? "
                               "ORDER BY id", dt.date(2024, 6, 1), f"c{run}").fetchall()
            out[f"query {run}"] = [tuple(r) for r in rows]
        # SQLDescribeCol: nullability from pg_attribute.attnotnull by RowDescription's table OID and column
        cur.execute("SELECT o.id, o.customer AS who, o.total, s.note, o.id * 2 AS twice, 'x' AS lit FROM orders o "
                    "JOIN (SELECT id, note FROM orders) s ON s.id = o.id WHERE o.id < 0")
        out["describe"] = [(d[0], d[1], d[3], d[4], d[5], d[6]) for d in cur.description]
        out["big"] = [tuple(r) for r in cur.execute("SELECT id, total FROM orders ORDER BY id").fetchall()]
        conn.rollback()
    return out


@pytest.mark.parametrize("declare_fetch", [False, True], ids=["plain", "UseDeclareFetch"])
def test_psqlodbc_as_postgres(server, source, declare_fetch):
    ours, theirs = _calls(server.dsn("alice"), declare_fetch), _calls(source, declare_fetch)
    assert len(theirs["big"]) == 700 and theirs["big"][0] == (1, Decimal("1.50"))
    assert ours == theirs
