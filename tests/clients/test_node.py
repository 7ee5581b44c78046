"""node-postgres (pg 8) and pg-cursor, postgres.js 3, pg-query-stream 4 and knex 3 (pg driver) against the test
Postgres and bemidb serving a sync of it, compared: parameters sent as each client sends them, values and types as
the client sees them, error SQLSTATEs, cursors and streams read in pages, knex's schema introspection.
Needs node and the npm packages (installed into a temporary directory once; skipped when npm cannot)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.clients.test_parameters import SOURCE_DDL as PEOPLE_DDL
from tests.support.commands import run_bemidb
from tests.support.server import start_server

SCRIPT = Path(__file__).parent / "node" / "clients.js"
DRIVERS = Path(__file__).parent / "node" / "drivers.js"
PACKAGES = ["pg@8", "pg-cursor@2", "pg-query-stream@4", "postgres@3", "knex@3"]
# One table of every type the issue names, for postgres.js, pg-query-stream and knex.
SOURCE_DDL = PEOPLE_DDL + """
CREATE TABLE kinds (id integer PRIMARY KEY, amount numeric(12,3), label text NOT NULL DEFAULT 'x',
    at timestamptz, day date, doc jsonb, uid uuid, ok boolean, nums integer[], words text[], code varchar(20),
    n serial);
INSERT INTO kinds VALUES
    (1, 12.5, 'one', '2024-01-02 03:04:05.123456+00', '2024-01-02', '{"a": [1, 2], "b": null}',
     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', true, '{1,2,3}', '{x,"y z"}', 'c1'),
    (2, -0.001, 'two', '1999-12-31 23:59:59+00', '1999-12-31', '[1, "two", {"c": 3.5}]',
     'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', false, '{}', '{}', NULL),
    (3, NULL, 'three', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'c3');
"""
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None, reason="no node")]


@pytest.fixture(scope="module")
def node_modules(tmp_path_factory):
    where = tmp_path_factory.mktemp("node-clients")
    done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", *PACKAGES], cwd=where,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.skip(f"npm install failed: {done.stderr.strip().splitlines()[-1:]}")
    return where / "node_modules"


@pytest.fixture(scope="module")
def source(pg):
    url = pg.create_database("compat_node")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SOURCE_DDL)
    return url


@pytest.fixture(scope="module")
def server(source, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("compat-node") / "data"
    data_dir.mkdir()
    run_bemidb("sync", "postgres", "--database-url", source, env={"BEMIDB_DATA_DIR": str(data_dir)}, check=True)
    process = start_server(data_dir, log_level="INFO")
    yield process
    process.stop()


def _run(node_modules: Path, dsn: str, script: Path = SCRIPT) -> dict:
    done = subprocess.run(["node", str(script), dsn.replace("?sslmode=disable", "")], capture_output=True,
                          text=True, timeout=120, env={"NODE_PATH": str(node_modules), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_node_postgres_as_postgres(server, source, node_modules):
    ours, theirs = _run(node_modules, server.dsn("alice")), _run(node_modules, source)
    assert theirs["cursor"] == [list(range(1, 11)), list(range(11, 21)), list(range(21, 26))]
    assert ours == theirs


@pytest.fixture(scope="module")
def drivers(server, source, node_modules):
    """drivers.js's answers: (bemidb's, Postgres's)."""
    return _run(node_modules, server.dsn("alice"), DRIVERS), _run(node_modules, source, DRIVERS)


def _same(ours: dict, theirs: dict, client: str) -> None:
    for call, answer in theirs[client].items():
        assert ours[client][call] == answer, (client, call)


def test_postgres_js_as_postgres(drivers):
    ours, theirs = drivers
    # the calls ran on Postgres as meant: typed rows, both errors, a cursor in pages
    assert theirs["postgres.js"]["simple"]["columns"][5] == ["doc", 3802]
    assert theirs["postgres.js"]["error"] == {"error": "42703"}
    assert theirs["postgres.js"]["error array type"] == {"error": "42883"}
    assert theirs["postgres.js"]["parameter jsonb untyped"] == [[["id", ["number", 1]]]]
    assert theirs["postgres.js"]["cursor"] == [list(range(1, 11)), list(range(11, 21)), list(range(21, 26))]
    _same(ours, theirs, "postgres.js")


def test_pg_query_stream_as_postgres(drivers):
    ours, theirs = drivers
    assert theirs["pg-query-stream"]["error"] == {"error": "22012"}
    assert theirs["pg-query-stream"]["many rows"] == [1000, 1, 1000]
    assert len(theirs["pg-query-stream"]["parameters"]) == 2
    _same(ours, theirs, "pg-query-stream")


def test_knex_as_postgres(drivers):
    ours, theirs = drivers
    assert theirs["knex"]["hasTable"] == [True, False] and theirs["knex"]["hasColumn"] == [True, False]
    assert theirs["knex"]["columnInfo"]["n"]["defaultValue"].startswith("nextval(")
    assert len(theirs["knex"]["stream"]) == 3
    _same(ours, theirs, "knex")
