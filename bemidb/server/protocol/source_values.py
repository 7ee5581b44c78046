"""Result values the source type shapes after DuckDB computed them (rows of one result, vectorised): char(n)
blank-padded, unconstrained numerics with their own scale, inet::text with its prefix length, arrays of enums
with the enum's element OID in binary. Chosen once per described result from its columns' origins
(sql/column_origins.py), for DataRows (`for_rows`) and for COPY ... TO STDOUT (`for_copy`)."""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bemidb.server import source_types
from bemidb.server.catalog import pg_types
from bemidb.server.codec import encoder, numeric_scale
from bemidb.server.codec.arrow_bytes import overwrite_at
from bemidb.server.codec.binary_format import to_binary
from bemidb.server.sql import column_origins


@dataclass
class Reshape:
    pads: dict[int, int] = field(default_factory=dict)  # column -> char(n) width
    trims: dict[int, int] = field(default_factory=dict)  # column -> 1: numeric binary, 0: text
    inets: list[int] = field(default_factory=list)
    enum_arrays: dict[int, int] = field(default_factory=dict)  # column -> enum OID (binary arrays)

    def __bool__(self) -> bool:
        return bool(self.pads or self.trims or self.inets or self.enum_arrays)

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if not self:
            return batch
        columns = list(batch.columns)
        for i, width in self.pads.items():
            columns[i] = pc.utf8_rpad(columns[i], width=width, padding=" ")
        for i, fmt in self.trims.items():
            columns[i] = numeric_scale.trimmed_binary(columns[i]) if fmt else numeric_scale.trimmed_text(columns[i])
        for i in self.inets:  # inet::text: a host address with its /32 or /128
            text = columns[i]
            host = pc.invert(pc.match_substring(text, "/"))
            width = pc.if_else(pc.match_substring(text, ":"), "/128", "/32")
            columns[i] = pc.if_else(host, pc.binary_join_element_wise(text, width, ""), text)
        for i, oid in self.enum_arrays.items():  # array header: ndim, has_null, element OID at byte 8
            sent = to_binary(columns[i], pg_types.BY_NAME["_text"])
            oid_bytes = np.frombuffer(struct.pack(">I", oid), np.uint8)
            columns[i] = overwrite_at(sent, 8, np.broadcast_to(oid_bytes, (len(sent), 4)))
        return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def for_rows(encoder_: encoder.DataRowEncoder, described: list, schema: pa.Schema, enums: dict) -> Reshape:
    """What DataRows of this result need; the encoder's columns are set to pass the prepared values through."""
    strings = {i for i, f in enumerate(schema) if pa.types.is_string(f.type)}
    pads = {i: f.typmod - 4 for i, f in enumerate(encoder_.fields)
            if f.type_oid == 1042 and f.typmod > 4 and i in strings}  # char(n): stored without its blanks
    pads.update(_padded(described, strings))
    return Reshape(pads, _trimmed(encoder_, described, schema), _inets(described, strings),
                   _enum_oids(encoder_, described, enums) if enums else {})


def for_copy(described: list, schema: pa.Schema) -> Reshape:
    """What COPY (query) TO STDOUT's text needs (its values are all text)."""
    strings = {i for i, f in enumerate(schema) if pa.types.is_string(f.type)}
    pads = {}
    for i, d in enumerate(described):
        parsed = pg_types.parse_type_name(d[0]) if d and i in strings else None
        if parsed is not None and parsed[0].name == "bpchar" and parsed[1] > 4:
            pads[i] = parsed[1] - 4
    pads.update(_padded(described, strings))
    trims = {i: 0 for i, d in enumerate(described) if d and isinstance(d[0], column_origins.UnconstrainedNumeric)
             and (i in strings or pa.types.is_decimal(schema.field(i).type))}
    return Reshape(pads, trims, _inets(described, strings))


def _padded(described: list, strings: set) -> dict[int, int]:
    return {i: d[0].width for i, d in enumerate(described)
            if d and isinstance(d[0], column_origins.PaddedChar) and i in strings}


def _inets(described: list, strings: set) -> list[int]:
    return [i for i, d in enumerate(described) if d and isinstance(d[0], column_origins.InetText) and i in strings]


def _enum_oids(encoder_: encoder.DataRowEncoder, described: list, enums: dict) -> dict[int, int]:
    """A source enum column (DuckDB ENUM, sent as its label's text, which is also Postgres's binary form of an
    enum) is described with the source's enum type OID, as Postgres describes it. Returns {column: enum OID}
    of the arrays sent in binary, whose element OID is then set in each value."""
    relabeled: dict[int, int] = {}
    for i, d in enumerate(described):
        enum = source_types.enum_of(d[0], enums) if d else None
        if enum is None or not enum.get("oid"):
            continue
        is_array = d[0].endswith("[]")
        oid = int(enum.get("array_oid") or 0) if is_array else int(enum["oid"])
        if not oid:
            continue
        encoder_.fields[i] = dataclasses.replace(encoder_.fields[i], type_oid=oid, typlen=-1 if is_array else 4,
                                                 typmod=-1)
        t, mod, fmt = encoder_.columns[i]
        if is_array and fmt and t.name == "_text":  # the element OID inside each binary array
            relabeled[i] = int(enum["oid"])
            encoder_.columns[i] = (pg_types.BY_NAME["bytea"], mod, fmt)
    return relabeled


def _trimmed(encoder_: encoder.DataRowEncoder, described: list, schema: pa.Schema) -> dict[int, int]:
    """{column: 1 numeric binary, 0 text} of the results that are an unconstrained numeric column's values (or
    their ::text): written with each value's own scale (codec/numeric_scale.py), the wire values passed through."""
    out = {}
    for i, d in enumerate(described):
        if not d or not isinstance(d[0], column_origins.UnconstrainedNumeric):
            continue
        arrow_type = schema.field(i).type
        t, mod, fmt = encoder_.columns[i]
        if pa.types.is_decimal(arrow_type) and t.name == "numeric":
            encoder_.columns[i] = (pg_types.BY_NAME["bytea" if fmt else "text"], mod, fmt)
            out[i] = fmt
        elif pa.types.is_string(arrow_type) and t.name in ("text", "varchar"):
            out[i] = 0  # ::text: trimmed text, in either format
    return out
