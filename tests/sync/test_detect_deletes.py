"""`--incremental ... --detect-deletes`: where logical replication is not available, a cursor sync removes the
rows whose primary key left the source, in the same commit. Real Postgres, real CLI, compared with the source."""

from __future__ import annotations

import psycopg
import pytest

from bemidb.config import Config
from bemidb.storage.catalog import open_catalog
from tests.support.commands import run_bemidb


def _sync(url, data_dir, *args):
    result = run_bemidb("sync", "postgres", "--database-url", url, "--data-dir", str(data_dir), *args)
    assert result.returncode == 0, result.stderr
    return result


def _rows(data_dir, name):
    table = open_catalog(Config({"data_dir": str(data_dir)})).load_table(("public", name))
    return sorted(table.scan().to_arrow().to_pylist(), key=lambda r: tuple(r.values()))


def _source(url, sql):
    with psycopg.connect(url) as conn:
        cur = conn.execute(sql)
        names = [d.name for d in cur.description]
        return sorted((dict(zip(names, row, strict=True)) for row in cur.fetchall()), key=lambda r: tuple(r.values()))


@pytest.mark.parametrize("key", ["id", "region, id"])
def test_deleted_source_rows_are_removed_with_the_new_ones(pg, data_dir, key):
    url = pg.create_database("detect_deletes_" + key.replace(", ", "_"))
    pg.execute(url.rsplit("/", 1)[1], f"""
        CREATE TABLE orders (id int, region text, seq int NOT NULL, note text, PRIMARY KEY ({key}));
        INSERT INTO orders SELECT g, 'r' || (g % 3), g, 'n' FROM generate_series(1, 500) g""")
    cursor = ("--incremental", "public.orders:seq")
    _sync(url, data_dir, *cursor)
    pg.execute(url.rsplit("/", 1)[1], """
        DELETE FROM orders WHERE id % 50 = 0;
        INSERT INTO orders SELECT g, 'r' || (g % 3), g, 'new' FROM generate_series(501, 520) g;
        UPDATE orders SET seq = seq + 1000, note = 'upd' WHERE id = 7""")
    _sync(url, data_dir, *cursor)  # without the flag the deleted rows stay (the cursor cannot see them)
    assert len(_rows(data_dir, "orders")) == 520
    pg.execute(url.rsplit("/", 1)[1], "DELETE FROM orders WHERE id = 501")
    _sync(url, data_dir, *cursor, "--detect-deletes")
    assert _rows(data_dir, "orders") == _source(url, "SELECT * FROM orders")
    _sync(url, data_dir, *cursor, "--detect-deletes")  # nothing deleted since: nothing changes
    assert _rows(data_dir, "orders") == _source(url, "SELECT * FROM orders")


def test_bemidb_sync_mode_and_cursor_columns_settings_are_accepted(pg, data_dir):
    """BemiDB's SOURCE_POSTGRES_SYNC_MODE=INCREMENTAL with SOURCE_POSTGRES_CURSOR_COLUMNS (schema.table=column)."""
    url = pg.create_database("bemidb_settings_alias")
    pg.execute("bemidb_settings_alias", "CREATE TABLE ev (id int PRIMARY KEY, seq int NOT NULL);"
                                        "INSERT INTO ev SELECT g, g FROM generate_series(1, 10) g")
    env = {"SOURCE_POSTGRES_SYNC_MODE": "INCREMENTAL", "SOURCE_POSTGRES_CURSOR_COLUMNS": "public.ev=seq"}
    args = ("sync", "postgres", "--database-url", url, "--data-dir", str(data_dir))
    assert run_bemidb(*args, env=env).returncode == 0
    table = open_catalog(Config({"data_dir": str(data_dir)})).load_table(("public", "ev"))
    assert table.properties["bemidb.cursor-column"] == "seq" and table.properties["bemidb.cursor-value"] == "10"
    bad = run_bemidb(*args, env={"SOURCE_POSTGRES_SYNC_MODE": "INCREMENTAL"})
    assert bad.returncode == 2 and "needs cursor columns" in bad.stderr
    wrong = run_bemidb(*args, env={"SOURCE_POSTGRES_CURSOR_COLUMNS": "public.ev:seq"})
    assert wrong.returncode == 2 and "SOURCE_POSTGRES_CURSOR_COLUMNS" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
