"""Load the generated TPC-H CSV files into a Postgres database: dss.ddl tables, primary keys only, COPY."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg

from bench.tpch.generate import TABLES

SCHEMA = Path(__file__).resolve().parent / "schema.sql"
CHUNK = 1 << 20


def schema_sql(char_as_varchar: bool = False) -> str:
    """dss.ddl; char_as_varchar declares char(n) columns varchar(n) (same data, no blank-padding semantics)."""
    ddl = SCHEMA.read_text()
    return re.sub(r"\bchar\((\d+)\)", r"varchar(\1)", ddl) if char_as_varchar else ddl


def load(database_url: str, csv_dir: Path, char_as_varchar: bool = False) -> dict[str, int]:
    """Create the tables and COPY each CSV in; returns the row count per table."""
    counts = {}
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(schema_sql(char_as_varchar))
        for table in TABLES:
            with conn.cursor() as cur:
                with cur.copy(f"COPY {table} FROM STDIN WITH (FORMAT csv, DELIMITER '|')") as copy, \
                        open(csv_dir / f"{table}.csv", "rb") as source:
                    while chunk := source.read(CHUNK):
                        copy.write(chunk)
            counts[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        conn.execute("VACUUM ANALYZE")  # what any DBA would have: fresh planner statistics, visibility map
    return counts
