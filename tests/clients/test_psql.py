"""psql's backslash commands against bemidb, compared with what psql prints for the same tables in the source
Postgres: a table with every common type is synced with `bemidb sync postgres`, then described by both."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.support.synced import create_source, serve_synced

SOURCE_DDL = """
CREATE TABLE everything (
    id bigint NOT NULL,
    small smallint,
    normal integer NOT NULL,
    price numeric(10,2),
    free_numeric numeric,
    ratio real,
    precise double precision,
    flag boolean,
    note text,
    code varchar(20),
    day date,
    at_time time without time zone,
    stamp timestamp without time zone,
    stamp_tz timestamp with time zone,
    span interval,
    uid uuid,
    doc json,
    docb jsonb,
    raw bytea,
    tags text[],
    numbers integer[]
);
INSERT INTO everything VALUES (1, 2, 3, 4.50, 5.5, 1.5, 2.25, true, 'hello', 'c1', '2024-01-02', '03:04:05',
    '2024-01-02 03:04:05', '2024-01-02 03:04:05+00', '1 day', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    '{"a": 1}', '{"b": [1, 2]}', '\\x00ff', '{x,y}', '{1,2}');
CREATE TABLE second_one (a integer, b text NOT NULL);
COMMENT ON TABLE second_one IS 'the second table';
"""


@pytest.fixture(scope="module")
def source(pg):
    return create_source(pg, "compat_psql", SOURCE_DDL)


@pytest.fixture(scope="module")
def server(source, warehouse):
    """Synced and served from local disk, then from S3."""
    yield from serve_synced(source, warehouse)


def psql(dsn: str, command: str, password: str | None = None) -> str:
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = password
    result = subprocess.run(["psql", dsn, "-X", "-c", command], capture_output=True, text=True, timeout=60,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr, result.stderr
    return result.stdout


def _column_block(output: str) -> list[str]:
    """The column table of `\\d` output (header line to the first blank line), owner-neutral."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("Column"))
    block = []
    for line in lines[start:]:
        if not line.strip() or line.startswith(("Indexes:", "Access method:")):
            break
        block.append(line)
    return block


def test_describe_table_matches_postgres(server, source, pg):
    ours = psql(server.dsn("alice"), r"\d everything")
    theirs = psql(source, r"\d everything")
    assert 'Table "public.everything"' in ours
    assert _column_block(ours) == _column_block(theirs)


def test_describe_plus_shows_comment_and_types(server, source):
    ours = psql(server.dsn("alice"), r"\d+ everything")
    theirs = psql(source, r"\d+ everything")
    strip = [re.split(r"\s*\|\s*", line)[:5] for line in _column_block(ours)]
    expected = [re.split(r"\s*\|\s*", line)[:5] for line in _column_block(theirs)]
    assert strip == expected


def test_list_tables_and_schemas(server, source):
    listing = psql(server.dsn("alice"), r"\dt")
    names = re.findall(r"^\s*public\s*\|\s*(\w+)\s*\|\s*table", listing, re.M)
    assert names == ["everything", "second_one"]
    schemas = psql(server.dsn("alice"), r"\dn")
    assert re.search(r"^\s*public\s*\|", schemas, re.M)
    assert "bemidb_pg_catalog" not in schemas and "main" not in schemas.split()
    described = psql(server.dsn("alice"), r"\dt+ second_one")
    assert "the second table" in described
    assert "second_one" in psql(server.dsn("alice"), r"\dt public.*")


def test_list_databases_views_functions(server, source):
    databases = psql(server.dsn("alice"), r"\l")
    assert re.search(r"^\s*bemidb\s*\|\s*alice\s*\|\s*UTF8", databases, re.M)
    assert re.search(r"^\s*public\s*\|\s*alice\s*$", psql(server.dsn("alice"), r"\dn"), re.M)
    for command in (r"\dv", r"\dm", r"\df"):  # the source has none of these either
        assert psql(server.dsn("alice"), command) == psql(source, command)


def test_describe_catalog_relation(server):
    out = psql(server.dsn("alice"), r"\d pg_catalog.pg_class")
    assert re.search(r"^\s*relname\s*\|\s*name\s*\|", out, re.M)


def test_expanded_and_timing(server):
    out = subprocess.run(["psql", server.dsn("alice"), "-X", "-c", r"\x on", "-c", "\\timing on", "-c",
                          "SELECT id, note FROM everything"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert re.search(r"^id\s*\|\s*1$", out.stdout, re.M)
    assert re.search(r"^note\s*\|\s*hello$", out.stdout, re.M)
    assert "Time:" in out.stdout
