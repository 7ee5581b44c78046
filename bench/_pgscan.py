"""Runs INSIDE the TPC-H venv (duckdb 1.5.5 + its postgres_scanner extension), never imported by bemidb.

    python _pgscan.py DSN OUT_DIR TABLE [TABLE ...]  ->  OUT_DIR/<table>.parquet, zstd, DuckDB's own writer

The extraction peer of `bemidb sync postgres`: DuckDB's postgres_scanner copying the same tables to Parquet.
"""

import os
import sys

import duckdb
import duckdb_extension_postgres_scanner


def main(dsn: str, out_dir: str, tables: list[str]) -> None:
    extension = os.path.join(os.path.dirname(duckdb_extension_postgres_scanner.__file__),
                             "extensions", "v1.5.5", "postgres_scanner.duckdb_extension")
    con = duckdb.connect(config={"allow_unsigned_extensions": True})
    con.execute(f"LOAD '{extension}'")
    con.execute(f"ATTACH '{dsn}' AS pg (TYPE postgres, READ_ONLY)")
    for table in tables:
        path = os.path.join(out_dir, f"{table}.parquet")
        con.execute(f"COPY (SELECT * FROM pg.public.{table}) TO '{path}' (FORMAT parquet, COMPRESSION zstd)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
