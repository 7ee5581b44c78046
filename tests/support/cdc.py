"""Helpers of the CDC tests: run the CLI in CDC mode, read a table back, ask the source (the oracle), and a
fresh source database per test whose replication slots are dropped with it."""

from __future__ import annotations

import signal

import psycopg
import pytest

from bemidb.config import Config
from bemidb.storage.catalog import open_catalog
from tests.support.commands import popen_bemidb, run_bemidb


def cdc(url, data_dir, *args, schema="public", env=None):
    result = run_bemidb("sync", "postgres", "--sync-mode", "cdc", "--database-url", url, "--data-dir",
                        str(data_dir), "--schema", schema, *args, env=env)
    assert result.returncode == 0, result.stderr
    return result


def full(url, data_dir, schema, *args):
    result = run_bemidb("sync", "postgres", "--database-url", url, "--data-dir", str(data_dir), "--schema", schema,
                        *args)
    assert result.returncode == 0, result.stderr
    return result


def table(data_dir, name, schema="public"):
    return open_catalog(Config({"data_dir": str(data_dir)})).load_table((schema, name))


def rows(data_dir, name, schema="public", key="id"):
    return sorted(table(data_dir, name, schema).scan().to_arrow().to_pylist(), key=lambda r: r[key])


def source_rows(url, sql):
    with psycopg.connect(url) as conn:
        cur = conn.execute(sql)
        names = [d.name for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@pytest.fixture(name="source")
def cdc_source(pg, request):
    """`source(sql)` runs SQL in a fresh database of the shared cluster; `source.url` is its URL."""
    url = pg.create_database("cdc_" + request.node.name.lower()[:40])

    def execute(sql, *params):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql, params or None)

    execute.url = url
    yield execute
    # A slot left behind holds WAL for the whole shared cluster: drop it with the database.
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        for (slot,) in conn.execute("SELECT slot_name FROM pg_replication_slots WHERE database = %s",
                                    (url.rsplit("/", 1)[1],)).fetchall():
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))


def killed_at(url, data_dir, point, env=None):
    """A CDC run SIGKILLed exactly at `point` (it says where it waits: see bemidb/sync/cdc_control.py pause)."""
    process = popen_bemidb("sync", "postgres", "--sync-mode", "cdc", "--database-url", url, "--data-dir",
                           str(data_dir), env={**(env or {}), "BEMIDB_CDC_PAUSE_AT": point})
    lines = []
    for line in process.stderr:
        lines.append(line.decode(errors="replace"))
        if f"paused at {point}" in lines[-1]:
            break
    else:
        raise AssertionError(f"the run never reached {point}:\n{''.join(lines)}")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def slot_position(url):
    return source_rows(url, "SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots")[0]["lsn"]
