"""One row of a catalog relation, shaped as Postgres 16 fills it: pg_type, pg_class, pg_attribute and
information_schema.columns rows, shared by the static rows and the per-table rows."""

from __future__ import annotations

from bemidb.server.catalog import pg_types
from bemidb.server.catalog.functions import format_type
from bemidb.server.catalog.oids import BTREE_AM, DEFAULT_COLLATION, HEAP_AM, NS_PG_CATALOG, OWNER_OID

_ELEMENTS: dict[int, pg_types.PgType] = {}


def element_type(t: pg_types.PgType) -> pg_types.PgType:
    """pg_types.element_of, memoised: refresh calls it for every column of every table."""
    elem = _ELEMENTS.get(t.oid)
    if elem is None:
        elem = _ELEMENTS[t.oid] = pg_types.element_of(t)
    return elem


def attribute_row(relid: int, attnum: int, name: str, type_oid: int, mod: int, t: pg_types.PgType | None,
                   notnull: bool) -> dict:
    t = t or pg_types.BY_NAME["text"]
    collatable = element_type(t).name in ("text", "varchar", "bpchar")
    return {"attrelid": relid, "attname": name, "atttypid": type_oid, "attstattarget": -1, "attlen": t.typlen,
            "attnum": attnum, "attndims": 1 if t.is_array else 0, "attcacheoff": -1, "atttypmod": mod,
            "attbyval": t.byval, "attalign": t.align, "attstorage": t.storage, "attcompression": "",
            "attnotnull": notnull, "atthasdef": False, "atthasmissing": False, "attidentity": "",
            "attgenerated": "", "attisdropped": False, "attislocal": True, "attinhcount": 0,
            "attcollation": DEFAULT_COLLATION if collatable else 0, "attacl": None, "attoptions": None,
            "attfdwoptions": None, "attmissingval": None}


def class_row(oid: int, name: str, nsp: int, kind: str, natts: int, reltype: int = 0,
               has_index: bool = False) -> dict:
    return {"oid": oid, "relname": name, "relnamespace": nsp, "reltype": reltype, "reloftype": 0,
            "relowner": OWNER_OID, "relam": HEAP_AM if kind in ("r", "m") else (BTREE_AM if kind == "i" else 0),
            "relfilenode": oid if kind in ("r", "m", "i") else 0, "reltablespace": 0, "relpages": 0,
            "reltuples": -1.0, "relallvisible": 0, "reltoastrelid": 0, "relhasindex": has_index,
            "relisshared": False, "relpersistence": "p", "relkind": kind, "relnatts": natts, "relchecks": 0,
            "relhasrules": False, "relhastriggers": False, "relhassubclass": False, "relrowsecurity": False,
            "relforcerowsecurity": False, "relispopulated": True, "relreplident": "d" if kind != "v" else "n",
            "relispartition": False, "relrewrite": 0, "relfrozenxid": 0, "relminmxid": 0, "relacl": None,
            "reloptions": None, "relpartbound": None}


def info_column_row(database: str, schema: str, table: str, position: int, name: str, type_oid: int,
                     mod: int, t: pg_types.PgType | None, nullable: bool, udt_name: str) -> dict:
    """information_schema.columns the way Postgres derives it from the type and typmod."""
    elem = element_type(t) if t else None
    if t is None:
        data_type = "ARRAY" if udt_name.startswith("_") else "USER-DEFINED"
    elif t.is_array:
        data_type = "ARRAY"
    else:
        data_type = format_type(t, -1) if t.name != "bpchar" else "character"
    base = elem.name if elem is not None and not (t and t.is_array) else None
    char_len = mod - 4 if base in ("varchar", "bpchar") and mod >= 0 else None
    precision = radix = scale = dt_precision = None
    if base in ("int2", "int4", "int8"):
        precision, radix, scale = {"int2": 16, "int4": 32, "int8": 64}[base], 2, 0
    elif base in ("float4", "float8"):
        precision, radix = {"float4": 24, "float8": 53}[base], 2
    elif base == "numeric":
        radix = 10
        if mod >= 0:
            precision, scale = ((mod - 4) >> 16) & 0xFFFF, (mod - 4) & 0xFFFF
    if base in ("date",):
        dt_precision = 0
    elif base in ("time", "timetz", "timestamp", "timestamptz", "interval"):
        dt_precision = mod if mod >= 0 else 6
    return {"table_catalog": database, "table_schema": schema, "table_name": table, "column_name": name,
            "ordinal_position": position, "column_default": None, "is_nullable": "YES" if nullable else "NO",
            "data_type": data_type, "character_maximum_length": char_len,
            "character_octet_length": (char_len * 4 if char_len else (1073741824 if base in (
                "text", "varchar", "bpchar") else None)),
            "numeric_precision": precision, "numeric_precision_radix": radix, "numeric_scale": scale,
            "datetime_precision": dt_precision, "interval_type": None, "interval_precision": None,
            "character_set_catalog": None, "character_set_schema": None, "character_set_name": None,
            "collation_catalog": None, "collation_schema": None, "collation_name": None,
            "domain_catalog": None, "domain_schema": None, "domain_name": None,
            "udt_catalog": database, "udt_schema": "pg_catalog", "udt_name": udt_name, "scope_catalog": None,
            "scope_schema": None, "scope_name": None, "maximum_cardinality": None, "dtd_identifier": str(position),
            "is_self_referencing": "NO", "is_identity": "NO", "identity_generation": None,
            "identity_start": None, "identity_increment": None, "identity_maximum": None,
            "identity_minimum": None, "identity_cycle": "NO", "is_generated": "NEVER", "generation_expression": None,
            "is_updatable": "NO"}


def type_row(t: pg_types.PgType) -> dict:
    base = element_type(t).name
    collation = 950 if base == "name" else (DEFAULT_COLLATION if base in ("text", "varchar", "bpchar") else 0)
    return {"oid": t.oid, "typname": t.name, "typnamespace": NS_PG_CATALOG, "typowner": OWNER_OID,
            "typlen": t.typlen, "typbyval": t.byval, "typtype": t.typtype, "typcategory": t.category,
            "typispreferred": t.preferred, "typisdefined": True, "typdelim": t.delim, "typrelid": 0,
            "typsubscript": "array_subscript_handler" if t.is_array else "-", "typelem": t.elem,
            "typarray": t.array_oid, "typinput": t.input, "typoutput": t.output, "typreceive": t.receive or "-",
            "typsend": t.send or "-", "typmodin": "-", "typmodout": "-", "typanalyze": "-", "typalign": t.align,
            "typstorage": t.storage, "typnotnull": False, "typbasetype": 0, "typtypmod": -1, "typndims": 0,
            "typcollation": collation}
