"""DuckDB's statement-level calls the server needs beyond the public API: run a query straight into a
streaming Arrow reader, and bind a query without running it (result shape, parameter types).

They go through `duckdb._seam`, a private module of duckdb 2.0: this is the only file that touches it, so a
DuckDB upgrade that moves it changes one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa
from duckdb import _seam


def stream(cursor: duckdb.DuckDBPyConnection, sql: str, params: list | None, batch_rows: int):
    """(DuckDB column types, Arrow reader) of a started query; the reader is None for a statement without rows.
    Straight to DuckDB's streaming result: the relation API would parse and bind the query twice."""
    result = _seam.submit(cursor, sql, params or None, "stream", batch_rows)
    description = result.description
    reader = result.arrow_reader() if description else None
    return [column[1] for column in description or []], reader


@dataclass
class Shape:
    """What binding a query tells without running it."""

    returns_rows: bool
    names: list[str]
    types: list  # DuckDB types


def bind(cursor: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> Shape:
    """The result shape of `sql` (parameters unknown when `params` is None)."""
    if params is None:
        params = [None] * len(_seam.bind(cursor, sql).parameters)
    signature = _seam.bind(cursor, sql, values=list(params) if params else None)
    return Shape(signature.return_type == "query_result", list(signature.names), list(signature.types))


def parameter_types(cursor: duckdb.DuckDBPyConnection, sql: str) -> list:
    """DuckDB's inferred type of each $n ("UNKNOWN" where it cannot tell)."""
    return [duck_type for _name, duck_type in _seam.bind(cursor, sql).parameters]


def arrow_schema(cursor: duckdb.DuckDBPyConnection, names: list[str], types: list) -> pa.Schema:
    """The Arrow schema DuckDB would give columns of these types, under the names given: DuckDB's renames a
    repeated name (oid, oid_1), where Postgres and DuckDB's own results keep it (DBeaver's SELECT c.oid, c.*)."""
    schema = _seam.arrow_schema(cursor, names, types)
    return pa.schema([field.with_name(name) for field, name in zip(schema, names, strict=True)])
