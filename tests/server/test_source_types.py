"""Source types Iceberg cannot hold as such, served as Postgres has them: enums (declaration order, the source's
type OIDs, arrays of them), timetz with its own offset, unconstrained numeric with each value's scale. Postgres
is the oracle; on local disk and on SeaweedFS S3. A timetz table written by the old writer (an Iceberg time in
UTC) is served as before, and takes the new form at its next full sync."""

from __future__ import annotations

import time

import psycopg
import pyarrow as pa
import pytest

from bemidb.storage.types import PG_TYPE_KEY
from bemidb.storage.writer import write_table
from tests.support.commands import run_bemidb
from tests.support.synced import create_source, serve_synced

DB = "source_types"
SOURCE_DDL = """
CREATE TYPE size AS ENUM ('small', 'medium', 'large', 'x-large');
CREATE TABLE shirts (id int PRIMARY KEY, size size, sizes size[], at timetz, ats timetz[], price numeric);
INSERT INTO shirts VALUES
    (1, 'large', '{small,large}', '12:00:00.123456-05', '{12:00:00-05,01:00:00+05:30}', 1.5),
    (2, 'small', '{}', '00:00:00+00', NULL, 100),
    (3, 'x-large', '{x-large,NULL}', '23:00:00+02', '{23:59:59.5+14}', -0.25),
    (4, NULL, NULL, NULL, NULL, NULL),
    (5, 'medium', '{medium}', '10:00:00+00', '{}', 7);
CREATE TABLE no_shirts (id int PRIMARY KEY, size size, sizes size[], at timetz);
"""
QUERIES = [
    "SELECT id, size, sizes, at, ats, price FROM shirts ORDER BY id",
    "SELECT id FROM shirts WHERE size > 'medium' ORDER BY id",
    "SELECT id FROM shirts WHERE size = 'small' OR 'large' <= size ORDER BY id",
    "SELECT size, count(*) FROM shirts GROUP BY size ORDER BY size",
    "SELECT min(size), max(size), min(at), max(at), min(price), max(price) FROM shirts",
    "SELECT id, at FROM shirts ORDER BY at DESC NULLS LAST, id",
    "SELECT id FROM shirts WHERE at > '11:00:00+00' ORDER BY id",
    "SELECT id, price + 1, -price, price::text FROM shirts ORDER BY id",
    "SELECT t.typname, t.typtype, t.typcategory FROM pg_type t WHERE t.oid = 'size'::regtype",
    "SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = 'size'::regtype ORDER BY e.enumsortorder",
    "SELECT id, size, sizes, at FROM no_shirts",  # a table without data files: typed as one with them
]


@pytest.fixture(scope="module")
def source(pg):
    return create_source(pg, DB, SOURCE_DDL)


@pytest.fixture(scope="module")
def served(source, warehouse):
    yield from serve_synced(source, warehouse)


def _answer(dsn: str, sql: str, binary: bool = False) -> tuple:
    with psycopg.connect(dsn, autocommit=True) as conn:
        with conn.cursor(binary=binary) as cursor:
            cursor.execute(sql)
            res = cursor.pgresult
            described = [(res.fname(i), res.ftype(i), res.fmod(i)) for i in range(res.nfields)]
            return described, [tuple(res.get_value(r, c) for c in range(res.nfields)) for r in range(res.ntuples)]


@pytest.mark.parametrize("binary", [False, True])
def test_answers_as_postgres(source, served, binary):
    for sql in QUERIES:
        assert _answer(served.dsn(), sql, binary) == _answer(source, sql, binary), sql


def test_a_label_that_is_no_label_fails(served):
    with psycopg.connect(served.dsn(), autocommit=True) as conn, pytest.raises(psycopg.Error):
        conn.execute("SELECT id FROM shirts WHERE size < 'huge'")


def test_old_timetz_tables_served_as_before_until_a_full_sync(source, served, warehouse):
    """The old writer stored timetz converted to UTC as an Iceberg time (the offset lost): such a table keeps
    being read as time; the next full sync writes Postgres's text and the offset comes back."""
    old = pa.schema([pa.field("id", pa.int32(), nullable=False, metadata={PG_TYPE_KEY: b"integer"}),
                     pa.field("at", pa.time64("us"), metadata={PG_TYPE_KEY: b"time with time zone"})])
    rows = pa.record_batch([pa.array([1, 2], pa.int32()), pa.array([61_200_123_456, None], pa.time64("us"))],
                           schema=old)
    write_table(warehouse.catalog(), ("public", "old_shifts"), old, [rows])
    sql = "SELECT id, at FROM old_shifts ORDER BY id"
    # (on the second storage the source table exists already: its first sync wrote the new form, replaced here)
    assert _wait_for(served.dsn(), sql, lambda answer: answer[0][1][1] == 1083) == (
        [(b"id", 23, -1), (b"at", 1083, -1)], [(b"1", b"17:00:00.123456"), (b"2", None)])
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS old_shifts (id int PRIMARY KEY, at timetz)")  # both storages
        conn.execute("INSERT INTO old_shifts VALUES (1, '12:00:00.123456-05'), (2, NULL) ON CONFLICT DO NOTHING")
    run_bemidb("sync", "postgres", "--database-url", source, env=warehouse.env, check=True)
    assert _wait_for(served.dsn(), sql, lambda answer: answer[0][1][1] == 1266) == _answer(source, sql)


def _wait_for(dsn: str, sql: str, ready) -> tuple:
    """The answer once `ready(answer)` (the server refreshes its views within a second or so of a commit)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            answer = _answer(dsn, sql)
            if ready(answer) or time.monotonic() > deadline:
                return answer
        except psycopg.Error:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def _copy(dsn: str, sql: str) -> bytes:
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cursor:
        with cursor.copy(sql) as copy:
            return b"".join(bytes(chunk) for chunk in copy)


def test_copy_out_as_postgres(source, served):
    """COPY ... TO STDOUT prints the same values (unconstrained numerics with their own scale, enums, timetz)."""
    for sql in ("COPY (SELECT id, size, at, price, price::text FROM shirts ORDER BY id) TO STDOUT",
                "COPY (SELECT id, sizes, ats FROM shirts ORDER BY id) TO STDOUT WITH (FORMAT csv)"):
        assert _copy(served.dsn(), sql) == _copy(source, sql), sql


def _asyncpg_rows(conninfo: dict, sql: str) -> list:
    import asyncio

    import asyncpg

    async def main():
        conn = await asyncpg.connect(**conninfo)
        try:  # binary results: asyncpg introspects the enum, enum[] and timetz OIDs through pg_type
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(main())


def test_asyncpg_reads_enums_and_timetz(source, served):
    """asyncpg asks pg_type about an OID it does not know (the enum's): bemidb's catalog answers as Postgres."""
    from urllib.parse import urlparse

    url = urlparse(source)
    theirs = {"host": url.hostname, "port": url.port, "user": url.username, "password": url.password,
              "database": url.path.lstrip("/")}
    sql = "SELECT id, size, sizes, at, price FROM shirts ORDER BY id"
    assert _asyncpg_rows(served.conninfo(), sql) == _asyncpg_rows(theirs, sql)
