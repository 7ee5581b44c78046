"""node-postgres (pg 8) and pg-cursor against the test Postgres and bemidb serving a sync of it, compared:
parameters sent as node-postgres sends them (untyped arrays, uuid and date text), a cursor read in pages.
Needs node and the npm packages (installed into a temporary directory once; skipped when npm cannot)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.clients.test_parameters import SOURCE_DDL
from tests.support.commands import run_bemidb
from tests.support.server import start_server

SCRIPT = Path(__file__).parent / "node" / "clients.js"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None, reason="no node")]


@pytest.fixture(scope="module")
def node_modules(tmp_path_factory):
    where = tmp_path_factory.mktemp("node-clients")
    done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "pg@8", "pg-cursor@2"], cwd=where,
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


def _run(node_modules: Path, dsn: str) -> dict:
    done = subprocess.run(["node", str(SCRIPT), dsn.replace("?sslmode=disable", "")], capture_output=True,
                          text=True, timeout=120, env={"NODE_PATH": str(node_modules), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_node_postgres_as_postgres(server, source, node_modules):
    ours, theirs = _run(node_modules, server.dsn("alice")), _run(node_modules, source)
    assert theirs["cursor"] == [list(range(1, 11)), list(range(11, 21)), list(range(21, 26))]
    assert ours == theirs
