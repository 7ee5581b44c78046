"""Adapters between DuckDB results and the wire encoder: RowDescription/DataRow for a result, CopyData for
COPY ... TO STDOUT, and Bind parameters in. The vectorised work lives in bemidb.server.codec.encoder/parameters;
this module maps their errors onto SQLSTATEs and takes result shapes from DuckDB's binder.
"""

from __future__ import annotations

import dataclasses

import duckdb
import pyarrow as pa

from bemidb.server import duckdb_calls, source_types
from bemidb.server.catalog import oids, pg_types
from bemidb.server.codec import encoder, parameters
from bemidb.server.engine import check_statement
from bemidb.server.errors import PROTOCOL_VIOLATION, PgError
from bemidb.server.protocol import source_values
from bemidb.server.sql import column_origins, enum_comparisons, typed_rewrites
from bemidb.server.sql.parameter_types import quantified_probe

# UINTEGER is Postgres's oid (the pg_catalog emulation stores OIDs so); asyncpg needs oid[] to introspect.
_OID_HINTS = {"UINTEGER": "oid", "UINTEGER[]": "oid[]"}


def _hint(hints: list, i: int):
    return hints[i] if i < len(hints) else None


_NUMERIC_OIDS = (1700, 1231)


def _postgres_typmods(fields: list, described: list) -> list:
    """Postgres gives a result column a typmod only when it is a table column or a cast to a sized type: a
    computed numeric is numeric without (p,s), whatever DECIMAL width DuckDB computed it in."""
    out = []
    for i, f in enumerate(fields):
        origin = described[i] if i < len(described) else None
        parsed = pg_types.parse_type_name(origin[0]) if origin else None
        if parsed is not None and parsed[0].oid == f.type_oid:
            f = dataclasses.replace(f, typmod=parsed[1])
        elif parsed is not None and parsed[0].name == "int8" and f.type_oid == 1700 and f.format == 0:
            # sum(integer) is HUGEINT in DuckDB, bigint in Postgres: the same digits in text
            f = dataclasses.replace(f, type_oid=20, typlen=8, typmod=-1)
        elif f.type_oid in _NUMERIC_OIDS:
            f = dataclasses.replace(f, typmod=-1)
        out.append(f)
    return out


class TableColumns:
    """The synced table columns a query's result columns are (sql/column_origins.py), resolved against the
    tables being served and the session's search_path once per described result (never per row)."""

    def __init__(self, origins: tuple, engine, search_path: list[str]):
        self.origins, self.engine, self.search_path = origins, engine, search_path
        self.enums: dict[str, dict] = {}  # the enum types of the tables looked up (source type text -> OIDs)

    def resolve(self, count: int) -> list:
        if not self.origins:
            return [None] * count
        return column_origins.resolve(self.origins, self._lookup, count)

    def _lookup(self, schema: str, table: str):
        catalog = oids.catalog_relation(schema, table)  # pg_class.relname is name, relkind "char" ...
        if catalog is not None:
            return catalog
        for candidate in ([schema] if schema else [*self.search_path, "public"]):
            info = self.engine.table(candidate, table)
            if info is not None:
                enums = info.enums
                self.enums.update(enums)
                columns = {c.name: (i + 1, _typed_text(c.pg_type, enums)) for i, c in enumerate(info.columns)}
                return oids.relation_oid(candidate, table), columns
        return None


def _typed_text(pg_type: str, enums: dict) -> str:
    """An enum column's type text carries its labels (sql/enum_comparisons.py compares in their order)."""
    if pg_type == "numeric":  # no (p,s): each value printed with its own scale
        return column_origins.UnconstrainedNumeric(pg_type)
    enum = source_types.enum_of(pg_type, enums) if enums and not pg_type.endswith("]") else None
    return enum_comparisons.EnumTypeText(pg_type, enum["labels"]) if enum else pg_type


def typed_plan(plan, statement: str, engine, search_path: list[str]):
    """The plan with the rewrites its operands' types call for (sql/typed_rewrites.py), resolved against the
    tables being served: a lookup per such node, nothing when there is none."""
    if not getattr(plan, "typed_args", ()):
        return plan
    return typed_rewrites.specialize(plan, statement, TableColumns((), engine, search_path)._lookup)


def _numeric_text(encoder_: encoder.DataRowEncoder, described: list) -> None:
    """Exact numeric results arrive as Postgres's text (typed_rewrites.py): described as numeric, the
    text written as is (binary: parsed per value, these are aggregate rows)."""
    numeric = pg_types.BY_OID[1700]
    for i, d in enumerate(described):
        field = encoder_.schema.field(i)
        if d and d[0] == "numeric" and pa.types.is_string(field.type):
            fmt = encoder_.columns[i][2]
            encoder_.columns[i] = (numeric, -1, fmt)
            encoder_.fields[i] = dataclasses.replace(encoder_.fields[i], type_oid=1700, typlen=-1, typmod=-1)


class ResultEncoder:
    """RowDescription + DataRows of one result, in the formats the client asked for."""

    def __init__(self, schema: pa.Schema, formats: list[int], timezone: str = "UTC", duck_types=(),
                 origins: TableColumns | None = None):
        # DuckDB's column types are the hints that tell JSON and UUID apart from text (Arrow says string).
        hints = [str(t) if str(t) in ("JSON", "UUID") else _OID_HINTS.get(str(t)) for t in duck_types]
        sources: list = []
        described: list = []
        if origins is not None:  # a synced table's column: described with its source type, as Postgres does
            described = origins.resolve(len(schema))
            hints = [d[0] if d else _hint(hints, i) for i, d in enumerate(described)]
            sources = [(d[1], d[2]) if d else None for d in described]
        try:
            self.encoder = encoder.DataRowEncoder(schema, formats, timezone, hints, sources=sources)
        except ValueError as exc:  # wrong number of result formats
            raise PgError(PROTOCOL_VIOLATION, str(exc)) from None
        _numeric_text(self.encoder, described)
        self.reshape = source_values.for_rows(self.encoder, described, schema,
                                              origins.enums if origins is not None else {})
        self.encoder.fields = _postgres_typmods(self.encoder.fields, described)
        self._described: tuple | None = None  # (the fields, their RowDescription)

    @classmethod
    def from_schema(cls, schema: pa.Schema, formats: list[int], timezone: str = "UTC",
                    duck_types=(), origins: TableColumns | None = None) -> ResultEncoder:
        return cls(schema, formats, timezone, duck_types, origins)

    @classmethod
    def from_bind(cls, cursor, sql: str, params: list | None, formats: list[int],
                  timezone: str = "UTC", origins: TableColumns | None = None) -> ResultEncoder | None:
        """The result shape of `sql` from DuckDB's binder, without running it."""
        check_statement(cursor, sql)
        shape = duckdb_calls.bind(cursor, sql, params)
        if not shape.returns_rows:
            return None
        varchar = cursor.sqltype("VARCHAR")
        types = [varchar if str(t) in ("UNKNOWN", '"NULL"', "NULL") else t for t in shape.types]
        return cls(duckdb_calls.arrow_schema(cursor, shape.names, types), formats, timezone, types, origins)

    @classmethod
    def text_columns(cls, names: list[str], formats: list[int]) -> ResultEncoder:
        return cls(pa.schema([pa.field(n, pa.string()) for n in names]), formats)

    def row_description(self) -> bytes:
        """The 'T' message; built once (a prepared statement's encoder describes each of its runs)."""
        fields = self.encoder.fields
        if self._described is None or self._described[0] is not fields:
            self._described = (fields, encoder.row_description(fields))
        return self._described[1]

    def data_rows(self, batch: pa.RecordBatch):
        """DataRow bytes of `batch`, in bounded chunks."""
        return self.encoder.encode_chunks(self.reshape.apply(batch))

    def text_rows(self, rows: list[tuple]) -> bytes:
        schema = self.encoder.schema
        batch = pa.RecordBatch.from_pylist([dict(zip(schema.names, row, strict=True)) for row in rows],
                                           schema=schema)
        return self.encoder.encode(batch)


class _CopyEncoder:
    def __init__(self, options: dict, timezone: str, origins: TableColumns | None = None):
        self.origins = origins
        self.reshape: source_values.Reshape | None = None
        self.format = options.get("format", "text")
        self.want_header = self.format == "csv" and options.get("header") in ("true", "on", "1")
        self.delimiter = options.get("delimiter")
        self.null = options.get("null")
        self.timezone = timezone

    def encode(self, batch: pa.RecordBatch) -> bytes:
        header, self.want_header = self.want_header, False
        if self.reshape is None:  # the source columns' values as Postgres prints them (resolved once)
            described = self.origins.resolve(len(batch.schema)) if self.origins is not None else []
            self.reshape = source_values.for_copy(described, batch.schema)
        batch = self.reshape.apply(batch)
        return encoder.copy_out(batch, self.format, header, self.delimiter, self.null, self.timezone)


def copy_encoder(options: dict, timezone: str, origins: TableColumns | None = None) -> _CopyEncoder:
    return _CopyEncoder(options, timezone, origins)


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
