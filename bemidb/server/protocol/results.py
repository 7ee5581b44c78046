"""Adapters between DuckDB results and the wire encoder: RowDescription/DataRow for a result, CopyData for
COPY ... TO STDOUT, and Bind parameters in. The vectorised work lives in bemidb.server.codec.encoder/parameters;
this module maps their errors onto SQLSTATEs and takes result shapes from DuckDB's binder.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from bemidb.server import duckdb_calls
from bemidb.server.catalog import pg_types
from bemidb.server.codec import encoder, parameters
from bemidb.server.engine import check_statement
from bemidb.server.errors import PROTOCOL_VIOLATION, PgError
from bemidb.server.sql.parameter_types import quantified_probe

# UINTEGER is Postgres's oid (the pg_catalog emulation stores OIDs so); asyncpg needs oid[] to introspect.
_OID_HINTS = {"UINTEGER": "oid", "UINTEGER[]": "oid[]"}


class ResultEncoder:
    """RowDescription + DataRows of one result, in the formats the client asked for."""

    def __init__(self, schema: pa.Schema, formats: list[int], timezone: str = "UTC", duck_types=()):
        # DuckDB's column types are the hints that tell JSON and UUID apart from text (Arrow says string).
        hints = [str(t) if str(t) in ("JSON", "UUID") else _OID_HINTS.get(str(t)) for t in duck_types]
        try:
            self.encoder = encoder.DataRowEncoder(schema, formats, timezone, hints)
        except ValueError as exc:  # wrong number of result formats
            raise PgError(PROTOCOL_VIOLATION, str(exc)) from None

    @classmethod
    def from_schema(cls, schema: pa.Schema, formats: list[int], timezone: str = "UTC",
                    duck_types=()) -> ResultEncoder:
        return cls(schema, formats, timezone, duck_types)

    @classmethod
    def from_bind(cls, cursor, sql: str, params: list | None, formats: list[int],
                  timezone: str = "UTC") -> ResultEncoder | None:
        """The result shape of `sql` from DuckDB's binder, without running it."""
        check_statement(cursor, sql)
        shape = duckdb_calls.bind(cursor, sql, params)
        if not shape.returns_rows:
            return None
        varchar = cursor.sqltype("VARCHAR")
        types = [varchar if str(t) in ("UNKNOWN", '"NULL"', "NULL") else t for t in shape.types]
        return cls(duckdb_calls.arrow_schema(cursor, shape.names, types), formats, timezone, types)

    @classmethod
    def text_columns(cls, names: list[str], formats: list[int]) -> ResultEncoder:
        return cls(pa.schema([pa.field(n, pa.string()) for n in names]), formats)

    def row_description(self) -> bytes:
        return encoder.row_description(self.encoder.fields)

    def data_rows(self, batch: pa.RecordBatch):
        """DataRow bytes of `batch`, in bounded chunks."""
        return self.encoder.encode_chunks(batch)

    def text_rows(self, rows: list[tuple]) -> bytes:
        schema = self.encoder.schema
        batch = pa.RecordBatch.from_pylist([dict(zip(schema.names, row, strict=True)) for row in rows],
                                           schema=schema)
        return self.encoder.encode(batch)


class _CopyEncoder:
    def __init__(self, options: dict, timezone: str):
        self.format = options.get("format", "text")
        self.want_header = self.format == "csv" and options.get("header") in ("true", "on", "1")
        self.delimiter = options.get("delimiter")
        self.null = options.get("null")
        self.timezone = timezone

    def encode(self, batch: pa.RecordBatch) -> bytes:
        header, self.want_header = self.want_header, False
        return encoder.copy_out(batch, self.format, header, self.delimiter, self.null, self.timezone)


def copy_encoder(options: dict, timezone: str) -> _CopyEncoder:
    return _CopyEncoder(options, timezone)


def decode_parameters(values: list, formats: list[int], oids: list[int]) -> list:
    try:
        formats = encoder.result_formats(formats, len(values))
    except ValueError as exc:
        raise PgError(PROTOCOL_VIOLATION, str(exc)) from None
    out = []
    for value, fmt, oid in zip(values, formats, oids, strict=True):
        try:
            out.append(parameters.decode_parameter(value, oid, fmt))
        except ValueError as exc:
            raise PgError("22P03" if fmt else "22P02", str(exc)) from None
    return out


# DuckDB types whose Arrow form (a string) would lose what Postgres calls them.
_DUCK_OIDS = {"UUID": 2950, "UUID[]": 2951, "JSON": 114, "JSON[]": 199}


def _oid_of(cursor, duck_type) -> int:
    name = str(duck_type)
    if name == "UNKNOWN":
        return 25
    if name in _DUCK_OIDS:
        return _DUCK_OIDS[name]
    arrow_type = duckdb_calls.arrow_schema(cursor, ["p"], [duck_type]).field(0).type
    return pg_types.column_type(arrow_type)[0].oid


def parameter_oids(cursor, sql: str) -> list[int]:
    """What DuckDB's binder infers for $1..$n; `col = ANY($n)` an array of col's type (probed); unknown -> text."""
    duck_types = duckdb_calls.parameter_types(cursor, sql)
    oids = [_oid_of(cursor, t) for t in duck_types]
    unknown = {i for i, t in enumerate(duck_types) if str(t) == "UNKNOWN"}
    probe = quantified_probe(sql) if unknown else None
    if probe is not None:
        probe_sql, arrays = probe
        try:
            probed = duckdb_calls.parameter_types(cursor, probe_sql)
        except duckdb.Error:  # the probe is a guess; the query's own errors come from the real bind
            probed = []
        for index in sorted(unknown & arrays):
            if index < len(probed) and str(probed[index]) != "UNKNOWN":
                element = pg_types.BY_OID.get(_oid_of(cursor, probed[index]))
                if element is not None and element.array_oid:
                    oids[index] = element.array_oid
    return oids
