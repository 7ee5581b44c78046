"""Adapters between DuckDB results and the wire encoder: RowDescription/DataRow for a result, CopyData for
COPY ... TO STDOUT, and Bind parameters in. The vectorised work lives in bemidb.server.codec.encoder/parameters;
this module maps their errors onto SQLSTATEs and takes result shapes from DuckDB's binder.
"""

from __future__ import annotations

import re

import pyarrow as pa
from duckdb import _seam

from bemidb.server.catalog import pg_types
from bemidb.server.codec import encoder, parameters
from bemidb.server.engine import check_statement
from bemidb.server.errors import FEATURE_NOT_SUPPORTED, PROTOCOL_VIOLATION, PgError

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
        if params is None:
            params = [None] * len(_seam.bind(cursor, sql).parameters)
        signature = _seam.bind(cursor, sql, values=list(params) if params else None)
        if signature.return_type != "query_result":
            return None
        varchar = cursor.sqltype("VARCHAR")
        types = [varchar if str(t) in ("UNKNOWN", '"NULL"', "NULL") else t for t in signature.types]
        return cls(_seam.arrow_schema(cursor, signature.names, types), formats, timezone, types)

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


def parameter_oids(cursor, sql: str) -> list[int]:
    """What DuckDB's binder infers for $1..$n; unknown -> text."""
    signature = _seam.bind(cursor, sql)
    oids = []
    for _name, duck_type in signature.parameters:
        if str(duck_type) == "UNKNOWN":
            oids.append(25)
            continue
        arrow_type = _seam.arrow_schema(cursor, ["p"], [duck_type]).field(0).type
        oids.append(pg_types.column_type(arrow_type)[0].oid)
    return oids


def copy_options(text: str) -> dict:
    """COPY options, new style `WITH (FORMAT csv, HEADER true, DELIMITER ',')` or old style `CSV HEADER`."""
    text = (text or "").strip()
    options: dict = {"format": "text"}
    m = re.match(r"^(?:with\s*)?\((.*)\)\s*$", text, re.I | re.S)
    if m:
        for item in m.group(1).split(","):
            parts = item.strip().split(None, 1)
            if parts:
                key = parts[0].lower()
                value = parts[1].strip().strip("'") if len(parts) > 1 else "true"
                options[key] = value.lower() if key in ("format", "header") else value
    else:
        words = re.findall(r"'[^']*'|\S+", re.sub(r"^with\b", "", text, flags=re.I))
        i = 0
        while i < len(words):
            word = words[i].lower()
            if word in ("csv", "binary"):
                options["format"] = word
            elif word == "header":
                options["header"] = "true"
            elif word in ("delimiter", "null", "quote", "escape") and i + 1 < len(words):
                i += 1
                options[word] = words[i].strip("'")
            i += 1
    if options["format"] not in ("text", "csv"):
        raise PgError(FEATURE_NOT_SUPPORTED, f"COPY format {options['format']} is not supported")
    return options
