"""The one table of Postgres built-in types, and how Arrow/DuckDB result types map onto them.

Rows come from a real PostgreSQL 15 `pg_type` (pg_catalog base, pseudo, range and multirange types);
array types are derived from their element rows exactly as Postgres defines them (`_name`, category A,
array_in/array_out). The pg_catalog emulation, RowDescription and Bind parameter decoding all read this
table, so a client sees one consistent set of OIDs everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class PgType:
    oid: int
    name: str  # pg_type.typname: int4, _int4, varchar, timestamptz ...
    typlen: int  # bytes, -1 varlena, -2 cstring
    category: str  # typcategory: B bool, N numeric, S string, D datetime, T timespan, A array, U user, ...
    elem: int  # typelem: element OID for arrays (and name/point-like fixed arrays), else 0
    array_oid: int  # typarray: OID of the array of this type, 0 when none
    input: str  # typinput function name
    output: str
    receive: str  # "" when the type has no binary I/O (pseudo types)
    send: str
    align: str  # typalign: c, s, i, d
    storage: str  # typstorage: p, x, m, e
    typtype: str  # b base, p pseudo, r range, m multirange
    byval: bool
    preferred: bool  # typispreferred
    delim: str = ","  # typdelim (";" only for box)

    @property
    def is_array(self) -> bool:
        return self.category == "A" and self.input == "array_in"


# (oid, typname, typlen, typcategory, typelem, typarray, typinput, typoutput, typreceive, typsend,
#  flags = typalign + typstorage + typtype [+ "v" byval] [+ "p" preferred] [+ ";" delimiter])
_BASE_ROWS = (
    (16, "bool", 1, "B", 0, 1000, "boolin", "boolout", "boolrecv", "boolsend", "cpbvp"),
    (17, "bytea", -1, "U", 0, 1001, "byteain", "byteaout", "bytearecv", "byteasend", "ixb"),
    (18, "char", 1, "Z", 0, 1002, "charin", "charout", "charrecv", "charsend", "cpbv"),
    (19, "name", 64, "S", 18, 1003, "namein", "nameout", "namerecv", "namesend", "cpb"),
    (20, "int8", 8, "N", 0, 1016, "int8in", "int8out", "int8recv", "int8send", "dpbv"),
    (21, "int2", 2, "N", 0, 1005, "int2in", "int2out", "int2recv", "int2send", "spbv"),
    (22, "int2vector", -1, "A", 21, 1006, "int2vectorin", "int2vectorout", "int2vectorrecv", "int2vectorsend", "ipb"),
    (23, "int4", 4, "N", 0, 1007, "int4in", "int4out", "int4recv", "int4send", "ipbv"),
    (24, "regproc", 4, "N", 0, 1008, "regprocin", "regprocout", "regprocrecv", "regprocsend", "ipbv"),
    (25, "text", -1, "S", 0, 1009, "textin", "textout", "textrecv", "textsend", "ixbp"),
    (26, "oid", 4, "N", 0, 1028, "oidin", "oidout", "oidrecv", "oidsend", "ipbvp"),
    (27, "tid", 6, "U", 0, 1010, "tidin", "tidout", "tidrecv", "tidsend", "spb"),
    (28, "xid", 4, "U", 0, 1011, "xidin", "xidout", "xidrecv", "xidsend", "ipbv"),
    (29, "cid", 4, "U", 0, 1012, "cidin", "cidout", "cidrecv", "cidsend", "ipbv"),
    (30, "oidvector", -1, "A", 26, 1013, "oidvectorin", "oidvectorout", "oidvectorrecv", "oidvectorsend", "ipb"),
    (114, "json", -1, "U", 0, 199, "json_in", "json_out", "json_recv", "json_send", "ixb"),
    (142, "xml", -1, "U", 0, 143, "xml_in", "xml_out", "xml_recv", "xml_send", "ixb"),
    (194, "pg_node_tree", -1, "Z", 0, 0, "pg_node_tree_in", "pg_node_tree_out", "pg_node_tree_recv",
     "pg_node_tree_send", "ixb"),  # pg_attrdef.adbin, pg_class.relpartbound ...: text here
    (269, "table_am_handler", 4, "P", 0, 0, "table_am_handler_in", "table_am_handler_out", "", "", "ippv"),
    (325, "index_am_handler", 4, "P", 0, 0, "index_am_handler_in", "index_am_handler_out", "", "", "ippv"),
    (600, "point", 16, "G", 701, 1017, "point_in", "point_out", "point_recv", "point_send", "dpb"),
    (601, "lseg", 32, "G", 600, 1018, "lseg_in", "lseg_out", "lseg_recv", "lseg_send", "dpb"),
    (602, "path", -1, "G", 0, 1019, "path_in", "path_out", "path_recv", "path_send", "dxb"),
    (603, "box", 32, "G", 600, 1020, "box_in", "box_out", "box_recv", "box_send", "dpb;"),
    (604, "polygon", -1, "G", 0, 1027, "poly_in", "poly_out", "poly_recv", "poly_send", "dxb"),
    (628, "line", 24, "G", 701, 629, "line_in", "line_out", "line_recv", "line_send", "dpb"),
    (650, "cidr", -1, "I", 0, 651, "cidr_in", "cidr_out", "cidr_recv", "cidr_send", "imb"),
    (700, "float4", 4, "N", 0, 1021, "float4in", "float4out", "float4recv", "float4send", "ipbv"),
    (701, "float8", 8, "N", 0, 1022, "float8in", "float8out", "float8recv", "float8send", "dpbvp"),
    (705, "unknown", -2, "X", 0, 0, "unknownin", "unknownout", "unknownrecv", "unknownsend", "cpp"),
    (718, "circle", 24, "G", 0, 719, "circle_in", "circle_out", "circle_recv", "circle_send", "dpb"),
    (774, "macaddr8", 8, "U", 0, 775, "macaddr8_in", "macaddr8_out", "macaddr8_recv", "macaddr8_send", "ipb"),
    (790, "money", 8, "N", 0, 791, "cash_in", "cash_out", "cash_recv", "cash_send", "dpbv"),
    (829, "macaddr", 6, "U", 0, 1040, "macaddr_in", "macaddr_out", "macaddr_recv", "macaddr_send", "ipb"),
    (869, "inet", -1, "I", 0, 1041, "inet_in", "inet_out", "inet_recv", "inet_send", "imbp"),
    (1033, "aclitem", 12, "U", 0, 1034, "aclitemin", "aclitemout", "", "", "ipb"),
    (1042, "bpchar", -1, "S", 0, 1014, "bpcharin", "bpcharout", "bpcharrecv", "bpcharsend", "ixb"),
    (1043, "varchar", -1, "S", 0, 1015, "varcharin", "varcharout", "varcharrecv", "varcharsend", "ixb"),
    (1082, "date", 4, "D", 0, 1182, "date_in", "date_out", "date_recv", "date_send", "ipbv"),
    (1083, "time", 8, "D", 0, 1183, "time_in", "time_out", "time_recv", "time_send", "dpbv"),
    (1114, "timestamp", 8, "D", 0, 1115, "timestamp_in", "timestamp_out", "timestamp_recv", "timestamp_send", "dpbv"),
    (1184, "timestamptz", 8, "D", 0, 1185, "timestamptz_in", "timestamptz_out", "timestamptz_recv", "timestamptz_send", "dpbvp"),
    (1186, "interval", 16, "T", 0, 1187, "interval_in", "interval_out", "interval_recv", "interval_send", "dpbp"),
    (1266, "timetz", 12, "D", 0, 1270, "timetz_in", "timetz_out", "timetz_recv", "timetz_send", "dpb"),
    (1560, "bit", -1, "V", 0, 1561, "bit_in", "bit_out", "bit_recv", "bit_send", "ixb"),
    (1562, "varbit", -1, "V", 0, 1563, "varbit_in", "varbit_out", "varbit_recv", "varbit_send", "ixbp"),
    (1700, "numeric", -1, "N", 0, 1231, "numeric_in", "numeric_out", "numeric_recv", "numeric_send", "imb"),
    (1790, "refcursor", -1, "U", 0, 2201, "textin", "textout", "textrecv", "textsend", "ixb"),
    (2202, "regprocedure", 4, "N", 0, 2207, "regprocedurein", "regprocedureout", "regprocedurerecv", "regproceduresend", "ipbv"),
    (2203, "regoper", 4, "N", 0, 2208, "regoperin", "regoperout", "regoperrecv", "regopersend", "ipbv"),
    (2204, "regoperator", 4, "N", 0, 2209, "regoperatorin", "regoperatorout", "regoperatorrecv", "regoperatorsend", "ipbv"),
    (2205, "regclass", 4, "N", 0, 2210, "regclassin", "regclassout", "regclassrecv", "regclasssend", "ipbv"),
    (2206, "regtype", 4, "N", 0, 2211, "regtypein", "regtypeout", "regtyperecv", "regtypesend", "ipbv"),
    (2249, "record", -1, "P", 0, 2287, "record_in", "record_out", "record_recv", "record_send", "dxp"),
    (2275, "cstring", -2, "P", 0, 1263, "cstring_in", "cstring_out", "cstring_recv", "cstring_send", "cpp"),
    (2276, "any", 4, "P", 0, 0, "any_in", "any_out", "", "", "ippv"),
    (2277, "anyarray", -1, "P", 0, 0, "anyarray_in", "anyarray_out", "anyarray_recv", "anyarray_send", "dxp"),
    (2278, "void", 4, "P", 0, 0, "void_in", "void_out", "void_recv", "void_send", "ippv"),
    (2279, "trigger", 4, "P", 0, 0, "trigger_in", "trigger_out", "", "", "ippv"),
    (2280, "language_handler", 4, "P", 0, 0, "language_handler_in", "language_handler_out", "", "", "ippv"),
    (2281, "internal", 8, "P", 0, 0, "internal_in", "internal_out", "", "", "dppv"),
    (2283, "anyelement", 4, "P", 0, 0, "anyelement_in", "anyelement_out", "", "", "ippv"),
    (2776, "anynonarray", 4, "P", 0, 0, "anynonarray_in", "anynonarray_out", "", "", "ippv"),
    (2950, "uuid", 16, "U", 0, 2951, "uuid_in", "uuid_out", "uuid_recv", "uuid_send", "cpb"),
    (2970, "txid_snapshot", -1, "U", 0, 2949, "txid_snapshot_in", "txid_snapshot_out", "txid_snapshot_recv", "txid_snapshot_send", "dxb"),
    (3115, "fdw_handler", 4, "P", 0, 0, "fdw_handler_in", "fdw_handler_out", "", "", "ippv"),
    (3220, "pg_lsn", 8, "U", 0, 3221, "pg_lsn_in", "pg_lsn_out", "pg_lsn_recv", "pg_lsn_send", "dpbv"),
    (3310, "tsm_handler", 4, "P", 0, 0, "tsm_handler_in", "tsm_handler_out", "", "", "ippv"),
    (3500, "anyenum", 4, "P", 0, 0, "anyenum_in", "anyenum_out", "", "", "ippv"),
    (3614, "tsvector", -1, "U", 0, 3643, "tsvectorin", "tsvectorout", "tsvectorrecv", "tsvectorsend", "ixb"),
    (3615, "tsquery", -1, "U", 0, 3645, "tsqueryin", "tsqueryout", "tsqueryrecv", "tsquerysend", "ipb"),
    (3642, "gtsvector", -1, "U", 0, 3644, "gtsvectorin", "gtsvectorout", "", "", "ipb"),
    (3734, "regconfig", 4, "N", 0, 3735, "regconfigin", "regconfigout", "regconfigrecv", "regconfigsend", "ipbv"),
    (3769, "regdictionary", 4, "N", 0, 3770, "regdictionaryin", "regdictionaryout", "regdictionaryrecv", "regdictionarysend", "ipbv"),
    (3802, "jsonb", -1, "U", 0, 3807, "jsonb_in", "jsonb_out", "jsonb_recv", "jsonb_send", "ixb"),
    (3831, "anyrange", -1, "P", 0, 0, "anyrange_in", "anyrange_out", "", "", "dxp"),
    (3838, "event_trigger", 4, "P", 0, 0, "event_trigger_in", "event_trigger_out", "", "", "ippv"),
    (3904, "int4range", -1, "R", 0, 3905, "range_in", "range_out", "range_recv", "range_send", "ixr"),
    (3906, "numrange", -1, "R", 0, 3907, "range_in", "range_out", "range_recv", "range_send", "ixr"),
    (3908, "tsrange", -1, "R", 0, 3909, "range_in", "range_out", "range_recv", "range_send", "dxr"),
    (3910, "tstzrange", -1, "R", 0, 3911, "range_in", "range_out", "range_recv", "range_send", "dxr"),
    (3912, "daterange", -1, "R", 0, 3913, "range_in", "range_out", "range_recv", "range_send", "ixr"),
    (3926, "int8range", -1, "R", 0, 3927, "range_in", "range_out", "range_recv", "range_send", "dxr"),
    (4072, "jsonpath", -1, "U", 0, 4073, "jsonpath_in", "jsonpath_out", "jsonpath_recv", "jsonpath_send", "ixb"),
    (4089, "regnamespace", 4, "N", 0, 4090, "regnamespacein", "regnamespaceout", "regnamespacerecv", "regnamespacesend", "ipbv"),
    (4096, "regrole", 4, "N", 0, 4097, "regrolein", "regroleout", "regrolerecv", "regrolesend", "ipbv"),
    (4191, "regcollation", 4, "N", 0, 4192, "regcollationin", "regcollationout", "regcollationrecv", "regcollationsend", "ipbv"),
    (4451, "int4multirange", -1, "R", 0, 6150, "multirange_in", "multirange_out", "multirange_recv", "multirange_send", "ixm"),
    (4532, "nummultirange", -1, "R", 0, 6151, "multirange_in", "multirange_out", "multirange_recv", "multirange_send", "ixm"),
    (4533, "tsmultirange", -1, "R", 0, 6152, "multirange_in", "multirange_out", "multirange_recv", "multirange_send", "dxm"),
    (4534, "tstzmultirange", -1, "R", 0, 6153, "multirange_in", "multirange_out", "multirange_recv", "multirange_send", "dxm"),
    (4535, "datemultirange", -1, "R", 0, 6155, "multirange_in", "multirange_out", "multirange_recv", "multirange_send", "ixm"),
    (4536, "int8multirange", -1, "R", 0, 6157, "multirange_in", "multirange_out", "multirange_recv", "multirange_send", "dxm"),
    (4537, "anymultirange", -1, "P", 0, 0, "anymultirange_in", "anymultirange_out", "", "", "dxp"),
    (4538, "anycompatiblemultirange", -1, "P", 0, 0, "anycompatiblemultirange_in", "anycompatiblemultirange_out", "", "", "dxp"),
    (5069, "xid8", 8, "U", 0, 271, "xid8in", "xid8out", "xid8recv", "xid8send", "dpbv"),
    (5077, "anycompatible", 4, "P", 0, 0, "anycompatible_in", "anycompatible_out", "", "", "ippv"),
    (5078, "anycompatiblearray", -1, "P", 0, 0, "anycompatiblearray_in", "anycompatiblearray_out", "anycompatiblearray_recv", "anycompatiblearray_send", "dxp"),
    (5079, "anycompatiblenonarray", 4, "P", 0, 0, "anycompatiblenonarray_in", "anycompatiblenonarray_out", "", "", "ippv"),
    (5080, "anycompatiblerange", -1, "P", 0, 0, "anycompatiblerange_in", "anycompatiblerange_out", "", "", "dxp"),

)


def _base(row: tuple) -> PgType:
    oid, name, typlen, cat, elem, arr, inp, out, rcv, snd, flags = row
    return PgType(oid, name, typlen, cat, elem, arr, inp, out, rcv, snd, flags[0], flags[1], flags[2],
                  byval="v" in flags[3:], preferred="p" in flags[3:], delim=";" if ";" in flags else ",")


def _array_of(elem: PgType) -> PgType:
    # Every Postgres array type: varlena, category A, array_in/out/recv/send, int or double alignment.
    return PgType(elem.array_oid, "_" + elem.name, -1, "A", elem.oid, 0, "array_in", "array_out", "array_recv",
                  "array_send", "d" if elem.align == "d" else "i", "x", "b", byval=False, preferred=False,
                  delim=elem.delim)


BASE_TYPES: tuple[PgType, ...] = tuple(_base(r) for r in _BASE_ROWS)
ARRAY_TYPES: tuple[PgType, ...] = tuple(_array_of(t) for t in BASE_TYPES if t.array_oid)
ALL_TYPES: tuple[PgType, ...] = tuple(sorted(BASE_TYPES + ARRAY_TYPES, key=lambda t: t.oid))

BY_OID: dict[int, PgType] = {t.oid: t for t in ALL_TYPES}
BY_NAME: dict[str, PgType] = {t.name: t for t in ALL_TYPES}

# SQL spellings (Postgres and DuckDB) -> typname.
ALIASES: dict[str, str] = {
    "boolean": "bool", "logical": "bool",
    "smallint": "int2", "int2": "int2", "short": "int2", "tinyint": "int2", "utinyint": "int2",
    "integer": "int4", "int": "int4", "signed": "int4", "usmallint": "int4",
    "bigint": "int8", "long": "int8", "uinteger": "int8",
    "ubigint": "numeric", "hugeint": "numeric", "uhugeint": "numeric", "decimal": "numeric",
    "real": "float4", "float": "float4",  # DuckDB FLOAT is 4 bytes (Postgres "float" alone is float8: rarely typed)
    "double precision": "float8", "double": "float8",
    "character varying": "varchar", "string": "text", "char": "bpchar", "character": "bpchar",
    "nchar": "bpchar", "blob": "bytea", "bytes": "bytea", "binary": "bytea", "varbinary": "bytea",
    "timestamp without time zone": "timestamp", "datetime": "timestamp", "timestamp_us": "timestamp",
    "timestamp_s": "timestamp", "timestamp_ms": "timestamp", "timestamp_ns": "timestamp",
    "timestamp with time zone": "timestamptz",
    "time without time zone": "time", "time with time zone": "timetz",
    "bit varying": "varbit", "bitstring": "bit",
    "null": "text", "\"char\"": "char",
}

_TYPE_TEXT = re.compile(r"^\s*(?P<name>[a-z_][a-z0-9_ \"]*?)\s*(?:\((?P<args>[^)]*)\))?\s*"
                        r"(?P<rest>(?:with(?:out)? time zone)?)\s*(?P<array>(?:\[\d*\])*)\s*$")


def lookup(name_or_oid: str | int) -> PgType | None:
    """A type by OID, typname, or SQL spelling (`integer`, `character varying(20)`, `int4[]`, `_text`)."""
    if isinstance(name_or_oid, int):
        return BY_OID.get(name_or_oid)
    parsed = parse_type_name(name_or_oid)
    return parsed[0] if parsed else None


def parse_type_name(text: str) -> tuple[PgType, int] | None:
    """SQL type text -> (type, typmod); typmod -1 when unconstrained. None for an unknown name."""
    if text.strip().lower() in ('"char"', 'pg_catalog."char"'):  # the 1-byte internal type, not char(1)
        return BY_NAME["char"], -1
    m = _TYPE_TEXT.match(text.lower())
    if not m:
        return None
    name = " ".join(m.group("name").split())
    if m.group("rest"):
        name = f"{name} {m.group('rest')}"
    name = ALIASES.get(name, name)
    base = BY_NAME.get(name)
    if base is None:
        return None
    args = [a.strip() for a in (m.group("args") or "").split(",") if a.strip()]
    try:
        mod = typmod(base.name, *(int(a) for a in args)) if args else -1
    except ValueError:
        mod = -1
    if m.group("array") and base.array_oid:
        return BY_OID[base.array_oid], mod
    return base, mod


def typmod(typname: str, *args: int) -> int:
    """pg_attribute.atttypmod for a declared type: numeric(p,s) ((p<<16)|s)+4, varchar/bpchar(n) n+4,
    time/timestamp/interval(p) p, bit/varbit(n) n; everything else -1."""
    if not args:
        return -1
    if typname in ("numeric", "_numeric"):
        precision, scale = args[0], args[1] if len(args) > 1 else 0
        return ((precision << 16) | (scale & 0xFFFF)) + 4
    if typname in ("varchar", "bpchar", "_varchar", "_bpchar"):
        return args[0] + 4
    if typname in ("time", "timetz", "timestamp", "timestamptz", "interval", "bit", "varbit",
                   "_time", "_timetz", "_timestamp", "_timestamptz", "_interval", "_bit", "_varbit"):
        return args[0]
    return -1


def array_of(t: PgType) -> PgType:
    """The array type holding `t` (arrays of arrays are the same array type in Postgres)."""
    if t.is_array:
        return t
    return BY_OID[t.array_oid] if t.array_oid else BY_NAME["_text"]


def element_of(t: PgType) -> PgType:
    return BY_OID[t.elem] if t.is_array else t


# DuckDB types Arrow only carries as opaque bytes (type_name -> typname); the encoder decodes them.
_OPAQUE = {"hugeint": "numeric", "uhugeint": "numeric", "bignum": "numeric", "varint": "numeric",
           "time_tz": "timetz", "bit": "varbit"}


# Arrow type -> Postgres type, for types where the Arrow type alone decides.
def _arrow_base(arrow_type: pa.DataType) -> PgType:
    t = arrow_type
    if pa.types.is_dictionary(t):
        return _arrow_base(t.value_type)
    if pa.types.is_boolean(t):
        return BY_NAME["bool"]
    if pa.types.is_integer(t):
        # Widen unsigned types so every value fits the Postgres type the client parses it into.
        if t.bit_width <= 16 and (pa.types.is_signed_integer(t) or t.bit_width == 8):
            return BY_NAME["int2"]
        if t.bit_width == 16 or (t.bit_width == 32 and pa.types.is_signed_integer(t)):
            return BY_NAME["int4"]
        if t.bit_width == 32:
            # Postgres's oid IS an unsigned 32-bit integer: DuckDB UINTEGER columns (the catalog's OIDs)
            # are described as oid / oid[] as Postgres does, which asyncpg's type introspection needs.
            return BY_NAME["oid"]
        if pa.types.is_signed_integer(t):
            return BY_NAME["int8"]
        return BY_NAME["numeric"]  # uint64
    if pa.types.is_floating(t):
        return BY_NAME["float8"] if t.bit_width == 64 else BY_NAME["float4"]
    if pa.types.is_decimal(t):
        return BY_NAME["numeric"]
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return BY_NAME["text"]
    if isinstance(t, pa.BaseExtensionType):
        # DuckDB with arrow_lossless_conversion: uuid/json extension types and "opaque" DuckDB types.
        if t.extension_name == "arrow.uuid":
            return BY_NAME["uuid"]
        if t.extension_name == "arrow.json":
            return BY_NAME["json"]
        if t.extension_name == "arrow.bool8":
            return BY_NAME["bool"]
        if t.extension_name == "arrow.opaque":
            return BY_NAME[_OPAQUE.get(getattr(t, "type_name", ""), "text")]
        return _arrow_base(t.storage_type)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t) \
            or pa.types.is_binary_view(t):
        return BY_NAME["bytea"]
    if pa.types.is_date(t):
        return BY_NAME["date"]
    if pa.types.is_time(t):
        return BY_NAME["time"]
    if pa.types.is_timestamp(t):
        return BY_NAME["timestamptz"] if t.tz else BY_NAME["timestamp"]
    if pa.types.is_duration(t) or pa.types.is_interval(t):
        return BY_NAME["interval"]
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t) \
            or pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
        return array_of(_arrow_base(t.value_type))
    if pa.types.is_struct(t) or pa.types.is_map(t) or pa.types.is_union(t):
        return BY_NAME["json"]  # sent as JSON text: clients can read it, nothing crashes
    return BY_NAME["text"]  # null type and anything unforeseen: text


def column_type(arrow_type: pa.DataType, pg_type_hint: str | None = None) -> tuple[PgType, int]:
    """(Postgres type, typmod) of a result column of `arrow_type`.

    `pg_type_hint` is the column's declared type when known: a Postgres spelling from the source
    (`numeric(10,2)`, `varchar(20)`, `jsonb`, `uuid[]`, `int2`) or a DuckDB type name (`UUID`, `JSON`).
    It is honoured only when the Arrow values can be written as that type; otherwise the Arrow type decides.
    """
    base = _arrow_base(arrow_type)
    leaf = arrow_type
    while hasattr(leaf, "value_type") and not pa.types.is_dictionary(leaf) and not pa.types.is_map(leaf):
        leaf = leaf.value_type  # arrays carry their element's typmod, as in Postgres
    mod = typmod("numeric", leaf.precision, leaf.scale) if pa.types.is_decimal(leaf) else -1
    if pg_type_hint:
        parsed = parse_type_name(pg_type_hint)
        if parsed is not None and _hint_fits(parsed[0], base):
            hinted, hinted_mod = parsed
            return hinted, hinted_mod if hinted_mod != -1 or hinted.oid != base.oid else mod
    return base, mod


# Types whose text form arrives from DuckDB as a plain string.
_TEXTUAL = {"text", "varchar", "bpchar", "name", "json", "jsonb", "xml", "uuid", "inet", "cidr", "macaddr",
            "macaddr8", "money", "bit", "varbit", "char", "tsvector", "tsquery", "jsonpath", "point", "line",
            "lseg", "box", "path", "polygon", "circle", "int4range", "int8range", "numrange", "daterange",
            "tsrange", "tstzrange", "regclass", "regtype", "regproc", "regnamespace", "regrole", "tid",
            "int2vector", "oidvector", "aclitem", "pg_lsn", "txid_snapshot", "refcursor", "pg_node_tree",
            "interval", "timetz"}  # stored as Postgres's own text by the syncer
# Integer-valued types: an integer column may be declared as any of them (the encoder range-checks).
_INTEGER = {"int2", "int4", "int8", "oid", "xid", "cid", "regclass", "regtype", "regproc", "regnamespace",
            "regrole", "regprocedure", "regoper", "regoperator", "regconfig", "regdictionary", "regcollation",
            "xid8"}


def _hint_fits(hinted: PgType, base: PgType) -> bool:
    """Can values that Arrow holds as `base` honestly be described as `hinted`?"""
    if hinted.oid == base.oid:
        return True
    if hinted.name in ("int2vector", "oidvector"):  # the catalog's vectors are lists of integers here
        return base.is_array and element_of(base).name in _INTEGER
    if hinted.is_array != base.is_array:
        return False
    if hinted.is_array:
        return _hint_fits(element_of(hinted), element_of(base))
    if base.name == "text":
        return hinted.name in _TEXTUAL
    if base.name in ("int2", "int4", "int8", "oid"):
        return hinted.name in _INTEGER or hinted.name == "numeric"
    if base.name == "float4":
        return hinted.name == "float8"
    if base.name == "bytea":
        return hinted.name == "uuid"
    if base.name == "json":  # JSON text (DuckDB's JSON, an Arrow extension with lossless conversion)
        return hinted.name in _TEXTUAL
    return False
