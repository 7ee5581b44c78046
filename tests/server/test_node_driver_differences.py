"""What postgres.js, pg-query-stream and knex showed differing, checked without node (the slow test_node.py runs
the clients): text[]/uuid[]::text printed as Postgres's array_out prints them, division by zero as 22012 and a
comparison of mismatched types as 42883, a parameter declared jsonb at Parse used in `doc @> $1`. On local disk
and on SeaweedFS S3; Postgres is the oracle."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.types.json import Json, Jsonb

from tests.support.synced import create_source, serve_synced

DB = "node_driver_differences"
SOURCE_DDL = r"""
CREATE TABLE lists (id int PRIMARY KEY, words text[], uids uuid[], doc jsonb);
INSERT INTO lists VALUES
    (1, '{x,"y z"}', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}', '{"a": [1, 2], "b": null}'),
    (2, ARRAY['', NULL, 'null', 'NULL', 'q"x', E'b\\c', '{', '}', 'a,b', E'tab\tx', '[1]', 'é'], '{}', '[1, 2]'),
    (3, '{}', NULL, '{"a": [2]}'),
    (4, NULL, NULL, NULL);
"""
VALUES = [
    "SELECT id, words::text, uids::text FROM lists ORDER BY id",
    "SELECT id, CAST(words AS text) AS w, words::varchar AS v FROM lists ORDER BY id",
    "SELECT ARRAY['a', 'b c']::text, '{}'::text[]::text, NULL::text[]::text",
    "SELECT '{1,2}'::int[]::text, 'x'::text::text, 1.5::float8::text",
]
ERRORS = ["SELECT 1/0", "SELECT 7 % 0", "SELECT id / 0 FROM lists", "SELECT 1 FROM lists WHERE id = ANY(ARRAY['1'])"]


@pytest.fixture(scope="module")
def source(pg):
    return create_source(pg, DB, SOURCE_DDL)


@pytest.fixture(scope="module")
def served(source, warehouse):
    yield from serve_synced(source, warehouse)


def _rows(dsn: str, sql: str) -> tuple:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(sql)
        return [(d.name, d.type_code) for d in cursor.description], cursor.fetchall()


def _sqlstate(dsn: str, sql: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as caught:
            conn.execute(sql)
    return caught.value.sqlstate


def test_array_text_and_sqlstates_as_postgres(source, served):
    for sql in VALUES:
        assert _rows(served.dsn(), sql) == _rows(source, sql), sql
    theirs = {sql: _sqlstate(source, sql) for sql in ERRORS}
    assert set(theirs.values()) == {"22012", "42883"}
    assert {sql: _sqlstate(served.dsn(), sql) for sql in ERRORS} == theirs


def test_parameter_declared_jsonb_is_jsonb(source, served):
    """psycopg's Jsonb/Json send the OID at Parse, as postgres.js's sql.json does: @> is jsonb containment."""
    calls = [("SELECT id FROM lists WHERE doc @> %s ORDER BY id", [Jsonb({"a": [2]})]),
             ("SELECT id FROM lists WHERE doc @> %s ORDER BY id", [Jsonb({"a": [1]})]),
             ("SELECT id, %s::text AS t FROM lists WHERE doc @> %s ORDER BY id", ["x", Jsonb({"b": None})]),
             ("SELECT %s AS j, %s AS k", [Json({"k": 1}), Jsonb([1])])]

    def answers(dsn):
        with psycopg.connect(dsn, autocommit=True) as conn:
            out = []
            for sql, params in calls:
                cursor = conn.execute(sql, params, prepare=True)
                out.append(([(d.name, d.type_code) for d in cursor.description], cursor.fetchall()))
            return out

    theirs = answers(source)
    assert theirs[0][1] == [(1,), (3,)]
    assert answers(served.dsn()) == theirs
