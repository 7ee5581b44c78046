"""Materialized views through a real server and real clients: create, query, list, refresh, drop, errors."""

from __future__ import annotations

import psycopg
import pyarrow as pa
import pytest

from bemidb.storage.catalog import PROP_MATVIEW_DEFINITION, PROP_SOURCE
from bemidb.storage.writer import write_table
from tests.support.server import start_server


def _catalog(warehouse):
    return warehouse.catalog()


def _write_orders(warehouse, rows):
    schema = pa.schema([pa.field("id", pa.int64(), metadata={b"pg_type": b"bigint"}),
                        pa.field("amount", pa.decimal128(10, 2), metadata={b"pg_type": b"numeric(10,2)"}),
                        pa.field("kind", pa.string(), metadata={b"pg_type": b"text"})])
    write_table(_catalog(warehouse), ("public", "orders"), schema, [pa.RecordBatch.from_pylist(rows, schema)])


@pytest.fixture(scope="module")
def env(warehouse):
    """A server on local disk, then on S3: matviews are written where the tables live."""
    from decimal import Decimal

    _write_orders(warehouse, [{"id": 1, "amount": Decimal("10.50"), "kind": "a"},
                             {"id": 2, "amount": Decimal("5.25"), "kind": "b"},
                             {"id": 3, "amount": Decimal("1.00"), "kind": "a"}])
    server = start_server(warehouse.data_dir, env=warehouse.env, log_level="INFO")
    yield server, warehouse
    server.stop()


def test_create_query_refresh_drop(env):
    server, warehouse = env
    from decimal import Decimal

    with psycopg.connect(server.dsn("alice"), autocommit=True) as conn:
        cur = conn.execute("CREATE MATERIALIZED VIEW totals AS SELECT kind, sum(amount) AS total, count(*) AS n "
                           "FROM orders GROUP BY kind")
        assert cur.statusmessage == "SELECT 2"
        rows = conn.execute("SELECT kind, total, n FROM totals ORDER BY kind").fetchall()
        assert rows == [("a", Decimal("11.50"), 2), ("b", Decimal("5.25"), 1)]
        listed = conn.execute("SELECT schemaname, matviewname, definition FROM pg_matviews").fetchall()
        assert listed == [("public", "totals", "SELECT kind, sum(amount) AS total, count(*) AS n FROM orders "
                                               "GROUP BY kind")]
        relkind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'totals'").fetchone()[0]
        assert relkind == "m"
        columns = conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                               "WHERE table_name = 'totals' ORDER BY ordinal_position").fetchall()
        assert columns == [("kind", "text"), ("total", "numeric"), ("n", "bigint")]

        # New source data, then REFRESH: the view follows, atomically.
        _write_orders(warehouse, [{"id": 4, "amount": Decimal("2.00"), "kind": "c"}])
        assert conn.execute("REFRESH MATERIALIZED VIEW totals").statusmessage == "REFRESH MATERIALIZED VIEW"
        assert conn.execute("SELECT kind, n FROM totals").fetchall() == [("c", 1)]

        with pytest.raises(psycopg.Error) as exists:
            conn.execute("CREATE MATERIALIZED VIEW totals AS SELECT 1 AS x")
        assert exists.value.sqlstate == "42P07"
        conn.execute("CREATE MATERIALIZED VIEW IF NOT EXISTS totals AS SELECT 1 AS x")  # notice, no error
        with pytest.raises(psycopg.Error) as not_matview:
            conn.execute("REFRESH MATERIALIZED VIEW orders")
        assert not_matview.value.sqlstate == "42809"
        with pytest.raises(psycopg.Error) as bad_query:
            conn.execute("CREATE MATERIALIZED VIEW broken AS SELECT nope FROM orders")
        assert bad_query.value.sqlstate == "42703"

        assert conn.execute("ALTER MATERIALIZED VIEW totals RENAME TO sums").statusmessage == \
            "ALTER MATERIALIZED VIEW"
        assert conn.execute("SELECT kind, n FROM sums").fetchall() == [("c", 1)]
        assert conn.execute("SELECT matviewname FROM pg_matviews").fetchall() == [("sums",)]
        conn.execute("ALTER MATERIALIZED VIEW sums RENAME TO totals")
        assert conn.execute("DROP MATERIALIZED VIEW totals").statusmessage == "DROP MATERIALIZED VIEW"
        assert conn.execute("SELECT count(*) FROM pg_matviews").fetchone()[0] == 0
        with pytest.raises(psycopg.Error) as gone:
            conn.execute("SELECT * FROM totals")
        assert gone.value.sqlstate == "42P01"
        conn.execute("DROP MATERIALIZED VIEW IF EXISTS totals")
        with pytest.raises(psycopg.Error) as missing:
            conn.execute("DROP MATERIALIZED VIEW totals")
        assert missing.value.sqlstate == "42P01"
    # Nothing stored was lost: the source table is intact.
    table = _catalog(warehouse).load_table(("public", "orders"))
    assert table.properties.get(PROP_SOURCE) != "matview" and PROP_MATVIEW_DEFINITION not in table.properties


def test_matview_in_schema_seen_by_another_session(env):
    server, _ = env
    with psycopg.connect(server.dsn("alice"), autocommit=True) as first, \
            psycopg.connect(server.dsn("bob"), autocommit=True) as second:
        first.execute("CREATE MATERIALIZED VIEW reports.big AS SELECT id FROM orders WHERE id > 0")
        assert second.execute("SELECT count(*) FROM reports.big").fetchone()[0] >= 1
        first.execute("DROP MATERIALIZED VIEW reports.big")
