"""Parameter types inferred from context (Parse without types), as ParameterDescription reports them, and the
values strict drivers then send (binary uuid, arrays, dates with zones), compared with the test Postgres."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal

import asyncpg
import psycopg
import pytest

from tests.support.commands import run_bemidb
from tests.support.server import start_server

SOURCE_DDL = """
CREATE TABLE people (id bigint PRIMARY KEY, small smallint, name text NOT NULL, code varchar(10),
    uid uuid, born date, seen timestamptz, at timestamp, price numeric(10,2), ratio double precision,
    flag boolean, tags text[]);
INSERT INTO people VALUES
    (1, 1, 'ann', 'a', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1990-06-01', '2024-01-02 03:04:05+00',
     '2024-01-02 03:04:05', 1.50, 0.5, true, '{x,y}'),
    (2, 2, 'bob', 'b', 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', '1985-12-31', '2024-02-03 04:05:06+00',
     '2024-02-03 04:05:06', 2.25, 1.5, false, '{z}'),
    (3, 3, 'cy', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
"""

# Each is Parsed unnamed without types; Postgres's ParameterDescription is the oracle.
DESCRIBED = [
    "SELECT id FROM people WHERE name = ANY($1)",
    "SELECT id FROM people WHERE id = ANY($1)",
    "SELECT id FROM people WHERE uid = ANY($1)",
    "SELECT id FROM people WHERE name <> ALL($1)",
    "SELECT id FROM people WHERE uid = $1",
    "SELECT id FROM people WHERE $1 = uid",
    "SELECT id FROM people WHERE id IN ($1, $2)",
    "SELECT id FROM people WHERE uid IN ($1)",
    "SELECT id FROM people WHERE name LIKE $1",
    "SELECT id FROM people WHERE name ILIKE $1",
    "SELECT id FROM people WHERE code LIKE $1",
    "SELECT id FROM people WHERE born = $1",
    "SELECT id FROM people WHERE seen > $1",
    "SELECT id FROM people WHERE at <= $1",
    "SELECT id FROM people WHERE price = $1",
    "SELECT id FROM people WHERE ratio < $1",
    "SELECT id FROM people WHERE small = $1",
    "SELECT id FROM people WHERE flag = $1",
    "SELECT id FROM people WHERE id BETWEEN $1 AND $2",
    "SELECT id FROM people WHERE p.name = $1" .replace("p.", "people."),
    "SELECT id FROM people p WHERE p.uid = $1",
    "SELECT id FROM people ORDER BY id LIMIT $1 OFFSET $2",
    "SELECT $1::int, $2::uuid, $3::date[]",
    "SELECT upper($1)",
    "SELECT coalesce(name, $1) FROM people",
    "SELECT id FROM people WHERE tags @> $1",
    "SELECT id FROM people WHERE $1 = ANY(tags)",
    "SELECT $1",
]


@pytest.fixture(scope="module")
def source(pg):
    url = pg.create_database("compat_parameters")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SOURCE_DDL)
    return url


@pytest.fixture(scope="module")
def server(source, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("compat-parameters") / "data"
    data_dir.mkdir()
    run_bemidb("sync", "postgres", "--database-url", source, env={"BEMIDB_DATA_DIR": str(data_dir)}, check=True)
    process = start_server(data_dir, log_level="INFO")
    yield process
    process.stop()


def _described(dsn: str) -> dict[str, object]:
    out = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for sql in DESCRIBED:
            result = conn.pgconn.prepare(b"", sql.encode())
            error = result.error_field(psycopg.pq.DiagnosticField.SQLSTATE)
            if error:
                out[sql] = error
                continue
            described = conn.pgconn.describe_prepared(b"")
            out[sql] = [described.param_type(i) for i in range(described.nparams)]
    return out


# Differences kept on purpose, with the reason (README, Client compatibility).
KNOWN_DIFFERENCES = {
    "SELECT id FROM people WHERE small = $1": "Iceberg has no 2-byte integer: a synced smallint is an int",
}


def test_parameter_description_as_postgres(server, source):
    ours, theirs = _described(server.dsn("alice")), _described(source)
    assert {k for k, v in ours.items() if v != theirs[k]} == set(KNOWN_DIFFERENCES)


async def _asyncpg_calls(dsn: str) -> list:
    conn = await asyncpg.connect(dsn)
    try:
        a = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
        return [
            await conn.fetch("SELECT id FROM people WHERE name = ANY($1) ORDER BY id", ["ann", "cy"]),
            await conn.fetch("SELECT id FROM people WHERE uid = $1", a),
            await conn.fetch("SELECT id FROM people WHERE uid = ANY($1)", [a]),
            await conn.fetch("SELECT id FROM people WHERE id IN ($1, $2) ORDER BY id", 1, 3),
            await conn.fetch("SELECT id FROM people WHERE born < $1 ORDER BY id", dt.date(1990, 1, 1)),
            await conn.fetch("SELECT id FROM people WHERE seen >= $1 ORDER BY id",
                             dt.datetime(2024, 2, 1, tzinfo=dt.UTC)),
            await conn.fetch("SELECT id FROM people WHERE name LIKE $1", "a%"),
            await conn.fetch("SELECT id FROM people ORDER BY id LIMIT $1", 2),
            # binary input of every type these columns map to
            await conn.fetch("SELECT id FROM people WHERE price = $1", Decimal("1.50")),
            await conn.fetch("SELECT id FROM people WHERE ratio < $1 ORDER BY id", 1.0),
            await conn.fetch("SELECT id FROM people WHERE flag = $1", False),
            await conn.fetch("SELECT id FROM people WHERE at <= $1 ORDER BY id", dt.datetime(2024, 1, 31)),
            await conn.fetch("SELECT id FROM people WHERE small = $1", 2),
            await conn.fetch("SELECT id FROM people WHERE code = $1", "b"),
            await conn.fetch("SELECT $1::bytea, $2::interval, $3::time, $4::jsonb::text, $5::int2[]", b"\x00\xff",
                             dt.timedelta(days=1, seconds=5), dt.time(3, 4, 5), '{"a": 1}', [1, 2]),
        ]
    finally:
        await conn.close()


def test_asyncpg_sends_what_the_description_asks(server, source):
    ours = asyncio.run(_asyncpg_calls(server.dsn("alice")))
    theirs = asyncio.run(_asyncpg_calls(source))
    assert [[tuple(r) for r in rows] for rows in ours] == [[tuple(r) for r in rows] for rows in theirs]


def test_psycopg_untyped_lists_and_text_input(server, source):
    calls = [
        ("SELECT id FROM people WHERE name = ANY(%s) ORDER BY id", (["ann", "bob"],)),
        ("SELECT id FROM people WHERE uid = %s", (uuid.UUID("b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12"),)),
        # PgJDBC's setDate sends a date with a zone suffix; Postgres's input syntax takes it
        ("SELECT id FROM people WHERE born = %s::date", ("1990-06-01 +00",)),
        ("SELECT id FROM people WHERE born < %s::date ORDER BY id", ("infinity",)),
        ("SELECT %s::date < '0001-01-01'::date, %s::timestamptz", ("0044-03-15 BC", "2024-01-02 03:04:05 UTC")),
        ("SELECT %s::timestamp, %s::date", ("2024-01-02 03:04:05+02", "epoch")),
    ]
    results = []
    for dsn in (server.dsn("alice"), source):
        with psycopg.connect(dsn, autocommit=True) as conn:
            results.append([conn.execute(sql, args).fetchall() for sql, args in calls])
    assert results[0] == results[1]
