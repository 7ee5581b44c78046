"""Python clients' catalog introspection against bemidb, compared with the source Postgres:
SQLAlchemy's inspector (psycopg and pg8000 dialects), pandas.read_sql, asyncpg's type introspection."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.support.synced import create_source, serve_synced

SOURCE_DDL = """
CREATE TABLE everything (
    id bigint PRIMARY KEY, small smallint, normal integer NOT NULL, price numeric(10,2), free_numeric numeric,
    ratio real, precise double precision, flag boolean, note text, code varchar(20), day date,
    at_time time, stamp timestamp, stamp_tz timestamptz, span interval, uid uuid, doc json, docb jsonb,
    raw bytea, tags text[], numbers integer[]
);
INSERT INTO everything VALUES (1, 2, 3, 4.50, 5.5, 1.5, 2.25, true, 'hello', 'c1', '2024-01-02', '03:04:05',
    '2024-01-02 03:04:05', '2024-01-02 03:04:05+00', '1 day', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    '{"a": 1}', '{"b": [1, 2]}', '\\x00ff', '{x,y}', '{1,2}');
CREATE TABLE second_one (a integer, b text NOT NULL, PRIMARY KEY (b, a));
"""


@pytest.fixture(scope="module")
def source(pg):
    return create_source(pg, "compat_python", SOURCE_DDL)


@pytest.fixture(scope="module")
def server(source, warehouse):
    """Synced and served from local disk, then from S3."""
    yield from serve_synced(source, warehouse)


def _engine(url: str, driver: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", f"postgresql+{driver}://", 1).replace(
        "?sslmode=disable", ""))


def _columns(inspector: sa.Inspector, table: str) -> list[tuple]:
    return [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table, schema="public")]


@pytest.mark.parametrize("driver", ["psycopg", "pg8000"])
def test_sqlalchemy_inspector_matches_postgres(server, source, driver):
    ours = sa.inspect(_engine(server.dsn("alice"), driver))
    theirs = sa.inspect(_engine(source, driver))
    assert "public" in ours.get_schema_names()
    assert not any(s.startswith("bemidb") for s in ours.get_schema_names())
    assert sorted(ours.get_table_names(schema="public")) == ["everything", "second_one"]
    assert ours.has_table("everything", schema="public") and not ours.has_table("nope", schema="public")
    for table in ("everything", "second_one"):
        assert _columns(ours, table) == _columns(theirs, table)
        assert ours.get_pk_constraint(table, schema="public")["constrained_columns"] == \
            theirs.get_pk_constraint(table, schema="public")["constrained_columns"]
        assert ours.get_foreign_keys(table, schema="public") == []
        assert ours.get_indexes(table, schema="public") == theirs.get_indexes(table, schema="public")
    assert ours.get_pk_constraint("second_one", schema="public")["constrained_columns"] == ["b", "a"]
    assert ours.get_view_names(schema="public") == []


def test_sqlalchemy_table_reflection_and_query(server):
    engine = _engine(server.dsn("alice"), "psycopg")
    table = sa.Table("everything", sa.MetaData(), autoload_with=engine, schema="public")
    with engine.connect() as conn:
        row = conn.execute(sa.select(table.c.id, table.c.price, table.c.tags).where(table.c.id == 1)).one()
    assert row == (1, Decimal("4.50"), ["x", "y"])


def test_pandas_read_sql(server, source):
    pd = pytest.importorskip("pandas")
    query = "SELECT id, normal, price, note, day, tags FROM everything ORDER BY id"
    ours = pd.read_sql(query, _engine(server.dsn("alice"), "psycopg"))
    theirs = pd.read_sql(query, _engine(source, "psycopg"))
    assert list(ours.columns) == list(theirs.columns)
    assert ours.astype(str).values.tolist() == theirs.astype(str).values.tolist()
    tables = pd.read_sql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                         "ORDER BY 1", _engine(server.dsn("alice"), "psycopg"))
    assert tables["table_name"].tolist() == ["everything", "second_one"]


def test_asyncpg_introspection_of_json_arrays_numeric(server, source):
    asyncpg = pytest.importorskip("asyncpg")
    query = "SELECT doc, docb, tags, numbers, price, uid FROM everything WHERE id = $1"

    async def fetch(dsn: str):
        conn = await asyncpg.connect(dsn.replace("?sslmode=disable", ""), ssl=False)
        try:
            await conn.set_type_codec("json", encoder=str, decoder=str, schema="pg_catalog")
            types = await conn.fetch("SELECT t.oid, t.typname, t.typtype, t.typelem, t.typarray "
                                     "FROM pg_catalog.pg_type t WHERE t.typname = ANY($1::text[]) ORDER BY 1",
                                     ["int4", "_text", "numeric", "jsonb"])
            row = await conn.fetchrow(query, 1)
            # "char" columns (typtype) come back as bytes from Postgres, as text from bemidb
            return [tuple(v.decode() if isinstance(v, bytes) else v for v in t) for t in types], dict(row)
        finally:
            await conn.close()

    ours_types, ours_row = asyncio.run(fetch(server.dsn("alice")))
    theirs_types, theirs_row = asyncio.run(fetch(source))
    assert ours_types == theirs_types
    assert ours_row["tags"] == ["x", "y"] and ours_row["numbers"] == [1, 2]
    assert ours_row["price"] == Decimal("4.50")
    assert str(ours_row["uid"]) == str(theirs_row["uid"])
