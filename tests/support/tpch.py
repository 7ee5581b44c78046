"""TPC-H tables written straight into a bemidb warehouse (local disk or S3), without a Postgres in between.

The generated CSV files (bench/tpch/generate.py, cached per scale factor) are read by DuckDB with the kit's
DDL and committed with bemidb's own Iceberg writer, so the files are exactly what `bemidb sync` writes.
Small target files give the big tables several files each: concurrent readers then share files and footers.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from bemidb import config
from bemidb.storage.catalog import open_catalog
from bemidb.storage.writer import write_table
from bench.tpch.generate import TABLES, generate
from bench.tpch.load import schema_sql

QUERIES = Path(__file__).resolve().parent.parent.parent / "bench" / "tpch" / "queries"


def tpch_queries() -> dict[str, str]:
    return {f.stem: f.read_text() for f in sorted(QUERIES.glob("q*.sql"))}


def write_tpch(env: dict[str, str], sf: float = 0.1, target_file_size: int = 4 << 20) -> dict[str, int]:
    """Write the TPC-H tables at scale factor sf into the warehouse `env` names; returns rows per table."""
    csv_dir = generate(sf)
    catalog = open_catalog(config.resolve(None, config.STORAGE, env=env))
    con = duckdb.connect()
    con.execute(schema_sql(char_as_varchar=True))
    counts = {}
    for table in TABLES:
        con.execute(f"COPY {table} FROM '{csv_dir / (table + '.csv')}' (FORMAT csv, DELIMITER '|', HEADER false)")
        arrow = con.table(table).to_arrow_table()
        write_table(catalog, ("public", table), arrow.schema, arrow.to_batches(max_chunksize=50_000),
                    target_file_size=target_file_size)
        counts[table] = arrow.num_rows
    con.close()
    return counts


def wrong_answers(conn, names: list[str], queries: dict[str, str], expected: dict[str, list]) -> list[str]:
    """Run the named queries on one connection; a line per error (with its SQLSTATE) or wrong answer."""
    import psycopg

    from bench.tpch.compare import difference

    problems = []
    for name in names:
        try:
            rows = conn.execute(queries[name]).fetchall()
        except psycopg.Error as exc:
            problems.append(f"{name}: {exc.sqlstate} {str(exc).splitlines()[0]}")
            continue
        diff = difference(rows, expected[name])
        if diff is not None:
            problems.append(f"{name}: wrong answer: {diff}")
    return problems
