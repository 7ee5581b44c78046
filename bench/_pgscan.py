"""Runs INSIDE the TPC-H venv (duckdb 1.5.5 + its postgres_scanner extension), never imported by bemidb.

    python _pgscan.py [--bemidb-layout] DSN OUT_DIR TABLE [TABLE ...]  ->  OUT_DIR/<table>.parquet

The extraction peer of `bemidb sync postgres`: DuckDB's postgres_scanner copying the same tables to Parquet,
zstd, DuckDB's own writer.

With --bemidb-layout (PYTHONPATH = the repo; the venv also has bemidb's pyarrow and pyiceberg pins): the same
scanner's Arrow batches written by pyarrow in bemidb's layout (`bemidb.storage.layout`, its row-group size),
the encode overlapped in a second thread. That is the most a sync could gain by pinning duckdb 1.5.5 and
reading through the peer's own binary-COPY decoder: no Iceberg commit, no catalog, no exact-type plans.
"""

import json
import os
import queue
import sys
import threading

import duckdb
import duckdb_extension_postgres_scanner


def connect(dsn: str):
    extension = os.path.join(os.path.dirname(duckdb_extension_postgres_scanner.__file__),
                             "extensions", "v1.5.5", "postgres_scanner.duckdb_extension")
    con = duckdb.connect(config={"allow_unsigned_extensions": True})
    con.execute(f"LOAD '{extension}'")
    con.execute(f"ATTACH '{dsn}' AS pg (TYPE postgres, READ_ONLY)")
    return con


def copy_with_duckdb(con, table: str, path: str) -> None:
    con.execute(f"COPY (SELECT * FROM pg.public.{table}) TO '{path}' (FORMAT parquet, COMPRESSION zstd)")


def copy_in_bemidb_layout(con, table: str, path: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bemidb.storage import layout
    from bemidb.storage.catalog import PROP_PRIMARY_KEY
    from bemidb.storage.writer import ROW_GROUP_ROWS

    key = [r[0] for r in con.execute(
        "SELECT * FROM postgres_query('pg', 'SELECT a.attname::text FROM pg_index i JOIN pg_attribute a "
        f"ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indisprimary "
        f"AND i.indrelid = ''public.{table}''::regclass')").fetchall()]
    properties = {PROP_PRIMARY_KEY: json.dumps(key)}
    batches: queue.Queue = queue.Queue(maxsize=4)

    failed: list[BaseException] = []

    def encode() -> None:
        try:
            write_groups()
        except BaseException as exc:  # noqa: BLE001 - raised in the reading thread; drained so it never blocks
            failed.append(exc)
            while batches.get() is not None:
                pass

    def write_groups() -> None:
        writer, pending, rows = None, [], 0
        while True:
            batch = batches.get()
            if batch is not None:
                pending.append(batch)
                rows += batch.num_rows
            if pending and (batch is None or rows >= ROW_GROUP_ROWS):
                group = pa.Table.from_batches(pending)
                pending, rows = [], 0
                if writer is None:
                    writer = pq.ParquetWriter(path, group.schema,
                                              **layout.parquet_options(group, properties, ROW_GROUP_ROWS))
                writer.write_table(group, row_group_size=group.num_rows)
            if batch is None:
                if writer is not None:
                    writer.close()
                return

    encoder = threading.Thread(target=encode)
    encoder.start()
    try:
        for batch in con.execute(f"SELECT * FROM pg.public.{table}").fetch_record_batch(ROW_GROUP_ROWS):
            batches.put(batch)
    finally:
        batches.put(None)
        encoder.join()
    if failed:
        raise failed[0]


def main(args: list[str]) -> None:
    copy = copy_with_duckdb
    if args[0] == "--bemidb-layout":
        copy, args = copy_in_bemidb_layout, args[1:]
    dsn, out_dir, tables = args[0], args[1], args[2:]
    con = connect(dsn)
    for table in tables:
        copy(con, table, os.path.join(out_dir, f"{table}.parquet"))


if __name__ == "__main__":
    main(sys.argv[1:])
