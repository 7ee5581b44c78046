"""pgcli 4.7 against the test Postgres and bemidb serving a sync of it: the queries of its completion refresher
(PGExecute's metadata methods), its time-zone handshake, and a `pgcli -c` session, compared."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import psycopg
import pytest

from tests.support.commands import run_bemidb
from tests.support.server import start_server

pgexecute = pytest.importorskip("pgcli.pgexecute")

SOURCE_DDL = """
CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(12,2) DEFAULT 0);
CREATE TABLE lines (order_id integer REFERENCES orders (id), sku text, qty int);
INSERT INTO orders (customer, total) VALUES ('ann', 10), ('bob', 20.5);
CREATE TABLE "Big Deals" ("Id" int PRIMARY KEY, note text);
"""

# PGExecute's completion metadata: method -> what differs on purpose (README, Client compatibility)
METHODS = ["search_path", "schemata", "tables", "views", "table_columns", "view_columns", "databases",
           "datatypes", "casing"]


@pytest.fixture(scope="module")
def source(pg):
    url = pg.create_database("compat_pgcli")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SOURCE_DDL)
    return url


@pytest.fixture(scope="module")
def server(source, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("compat-pgcli") / "data"
    data_dir.mkdir()
    run_bemidb("sync", "postgres", "--database-url", source, env={"BEMIDB_DATA_DIR": str(data_dir)}, check=True)
    process = start_server(data_dir, log_level="INFO")
    yield process
    process.stop()


def _metadata(dsn: str) -> dict:
    executor = pgexecute.PGExecute(dsn=dsn)
    out = {}
    for method in METHODS:
        try:
            value = getattr(executor, method)()
            out[method] = value if isinstance(value, str) else sorted(
                (v if isinstance(v, str) else tuple(v) for v in value), key=repr)
        except Exception as exc:  # noqa: BLE001 - an error is a result to compare
            out[method] = f"error: {type(exc).__name__}"
    # pgcli sets the server's zone to the local one when their names differ (it crashed on "Etc/UTC")
    executor.set_timezone("Etc/UTC")
    out["zone after set"] = executor.get_timezone()
    out["functions in public"] = sorted(f.func_name for f in executor.functions() if f.schema_name == "public")
    executor.conn.close()
    return out


_SYSTEM = ("pg_catalog", "information_schema", "pg_toast")


def _databases_free(meta: dict) -> dict:
    """The database list differs by nature (the test Postgres holds every test's database), and so do the
    system schemas' own relations and types: compared are the user schemas'."""
    def user(rows):
        return [r for r in rows if not (isinstance(r, tuple) and r and r[0] in _SYSTEM)] \
            if isinstance(rows, list) else rows
    return {k: user(v) for k, v in meta.items() if k != "databases"}


def test_completion_metadata_as_postgres(server, source):
    ours, theirs = _metadata(server.dsn("alice")), _metadata(source)
    assert ours["databases"] == ["bemidb"]
    assert _databases_free(ours) == _databases_free(theirs)


@pytest.mark.skipif(shutil.which("pgcli") is None and not os.path.exists(
    os.path.join(os.path.dirname(sys.executable), "pgcli")), reason="pgcli not installed")
def test_pgcli_command_session(server, source):
    pgcli = os.path.join(os.path.dirname(sys.executable), "pgcli")
    outputs = []
    for dsn in (server.dsn("alice"), source):
        done = subprocess.run([pgcli, dsn, "--less-chatty", "-c", "SELECT id, customer, total FROM "
                               "orders ORDER BY id", "-c", "\\dt", "-c", "SHOW TimeZone"],
                              capture_output=True, text=True, timeout=120, env={**os.environ, "TZ": "Etc/UTC",
                                                                               "HOME": os.environ.get("HOME", "/tmp")})
        cells = [[{"postgres": "OWNER", "alice": "OWNER"}.get(c.strip(), c.strip()) for c in line.split("|")]
                 for line in done.stdout.splitlines()  # table cells: widths follow the owner's name
                 if not line.startswith(("Time:", "Using local time zone", "Use `set time zone", "+", "|-"))]
        outputs.append((done.returncode, cells, done.stderr))
    assert outputs[0][0] == 0, outputs[0][2]
    assert outputs[0][:2] == outputs[1][:2], (outputs[0][1], outputs[1][1])
