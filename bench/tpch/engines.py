"""The three ways one TPC-H query is timed: bemidb's wire, DuckDB in-process, Postgres itself.

Each engine's `run(sql)` returns an Outcome: wall seconds from sending the query to holding every row as
Python values (the same work a client does on each side), the rows, or the error / timeout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psycopg
from psycopg import errors

POSTGRES_TIMEOUT_S = 300


@dataclass
class Outcome:
    seconds: float | None = None
    rows: list | None = None
    error: str | None = None
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timed_out


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


class WireEngine:
    """(1) bemidb serve, through the Postgres wire protocol with psycopg, as any client would."""

    def __init__(self, dsn: str):
        self.conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)

    def run(self, sql: str) -> Outcome:
        start = time.perf_counter()
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql)
                rows = cur.fetchall()
        except psycopg.Error as exc:
            return Outcome(error=_one_line(exc))
        return Outcome(time.perf_counter() - start, rows)

    def close(self) -> None:
        self.conn.close()


def iceberg_parquet_files(data_dir: Path) -> dict[str, list[str]]:
    """table name -> the Parquet files of its current snapshot, exactly what bemidb serves (pyiceberg plan)."""
    from bemidb.config import Config
    from bemidb.storage.catalog import open_catalog

    catalog = open_catalog(Config({"data_dir": str(data_dir)}))
    files = {}
    for (namespace, *_rest) in catalog.list_namespaces():
        for identifier in catalog.list_tables(namespace):
            table = catalog.load_table(identifier)
            files[identifier[-1]] = [task.file.file_path.removeprefix("file://")
                                     for task in table.scan().plan_files()]
    return files


class DuckDBEngine:
    """(2) DuckDB in this process over the very same Parquet files: the limit of bemidb's own engine."""

    def __init__(self, files: dict[str, list[str]]):
        self.conn = duckdb.connect()
        for table, paths in files.items():
            listing = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
            self.conn.execute(f'CREATE VIEW "{table}" AS SELECT * FROM read_parquet([{listing}])')

    def run(self, sql: str) -> Outcome:
        start = time.perf_counter()
        try:
            rows = self.conn.execute(sql).fetchall()
        except duckdb.Error as exc:
            return Outcome(error=_one_line(exc))
        return Outcome(time.perf_counter() - start, rows)

    def close(self) -> None:
        self.conn.close()


class PostgresEngine:
    """(3) Postgres itself on the source database, statement_timeout 300 s (a timeout is reported as such)."""

    def __init__(self, url: str, timeout_s: int = POSTGRES_TIMEOUT_S):
        self.conn = psycopg.connect(url, autocommit=True)
        self.conn.execute(f"SET statement_timeout = '{int(timeout_s)}s'")

    def run(self, sql: str) -> Outcome:
        start = time.perf_counter()
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql)
                rows = cur.fetchall()
        except errors.QueryCanceled:
            return Outcome(time.perf_counter() - start, timed_out=True)
        except psycopg.Error as exc:
            return Outcome(error=_one_line(exc))
        return Outcome(time.perf_counter() - start, rows)

    def close(self) -> None:
        self.conn.close()
