"""A source database in the test Postgres, synced by a real `bemidb sync postgres` and served by a real
`bemidb serve`: the setup of every client test that compares bemidb with the source."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg

from tests.support.commands import run_bemidb
from tests.support.server import ServerProcess, start_server


def create_source(pg, name: str, ddl: str) -> str:
    """A fresh database `name` in the test Postgres holding `ddl`; its URL."""
    url = pg.create_database(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ddl)
    return url


def serve_synced(source: str, warehouse) -> Iterator[ServerProcess]:
    """Sync `source` into the warehouse (local disk or S3), serve it, stop the server afterwards."""
    run_bemidb("sync", "postgres", "--database-url", source, env=warehouse.env, check=True)
    process = start_server(warehouse.data_dir, env=warehouse.env, log_level="INFO")
    try:
        yield process
    finally:
        process.stop()
