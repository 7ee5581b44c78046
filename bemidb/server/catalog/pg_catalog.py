"""pg_catalog and information_schema for Postgres clients, as DuckDB tables we fill ourselves.

DuckDB's own pg_catalog describes DuckDB (its types, its internal schemas, its OIDs); clients need Postgres's.
So every relation a client reads lives in two DuckDB schemas of ours (CATALOG_SCHEMA, INFO_SCHEMA) with
Postgres 16's column names, and rewrite.py points `pg_catalog.X` / `information_schema.X` / bare catalog names
there. Rows are built in Python from the synced tables' TableInfo (SOURCE Postgres types, nullability, order)
and swapped in one DuckDB transaction by `refresh`, so a query sees the old or the new catalog, never half.

OIDs: built-in types and catalog relations keep their real Postgres OIDs; schemas, tables, indexes and row
types get an OID hashed from their name, so the same table has the same OID across restarts and servers.
Per-session values (search_path, settings, user, pid) come from DuckDB variables that SessionSettings.apply
sets on the session's cursor (see settings.py), with defaults when unset.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable

import pyarrow as pa

from bemidb.server.catalog import pg_types
from bemidb.server.catalog.columns import COLUMNS
from bemidb.server.catalog.functions import format_type, macros, type_format_rows
from bemidb.server.settings import SETTINGS
from bemidb.storage.catalog import TableInfo

CATALOG_SCHEMA = "bemidb_pg_catalog"
INFO_SCHEMA = "bemidb_information_schema"

PG_CATALOG_RELATIONS = frozenset(name for schema, name in COLUMNS if schema == "pg_catalog")
INFORMATION_SCHEMA_RELATIONS = frozenset(name for schema, name in COLUMNS if schema == "information_schema")

NS_PG_CATALOG, NS_PUBLIC, NS_INFORMATION_SCHEMA, NS_PG_TOAST = 11, 2200, 13212, 99
OWNER_OID = 10
DATABASE_OID = 16384
HEAP_AM, BTREE_AM = 2, 403
DEFAULT_COLLATION = 100
PG_CLASS_OID = 1259
_FIRST_HASHED_OID = 1 << 24  # far above what a real Postgres has used for its own objects
_HASHED_SPAN = (1 << 31) - _FIRST_HASHED_OID

# Real OIDs of catalog relations clients look up by OID (classoid columns, regclass of catalog names).
_CATALOG_OIDS = {
    "pg_type": 1247, "pg_attribute": 1249, "pg_proc": 1255, "pg_class": 1259, "pg_authid": 1260,
    "pg_auth_members": 1261, "pg_database": 1262, "pg_foreign_server": 1417, "pg_user_mapping": 1418,
    "pg_tablespace": 1213, "pg_shdepend": 1214, "pg_shdescription": 2396, "pg_aggregate": 2600,
    "pg_am": 2601, "pg_attrdef": 2604, "pg_cast": 2605, "pg_constraint": 2606, "pg_conversion": 2607,
    "pg_depend": 2608, "pg_description": 2609, "pg_index": 2610, "pg_inherits": 2611, "pg_language": 2612,
    "pg_namespace": 2615, "pg_opclass": 2616, "pg_operator": 2617, "pg_rewrite": 2618, "pg_trigger": 2620,
    "pg_sequence": 2224, "pg_foreign_data_wrapper": 2328, "pg_default_acl": 826,
    "pg_largeobject_metadata": 2995, "pg_extension": 3079, "pg_foreign_table": 3118, "pg_policy": 3256,
    "pg_partitioned_table": 3350, "pg_statistic_ext": 3381, "pg_init_privs": 3394, "pg_statistic_ext_data": 3429,
    "pg_collation": 3456, "pg_event_trigger": 3466, "pg_enum": 3501, "pg_range": 3541, "pg_transform": 3576,
    "pg_seclabel": 3596, "pg_ts_dict": 3600, "pg_ts_config": 3602, "pg_subscription": 6100,
    "pg_publication": 6104, "pg_publication_rel": 6106, "pg_publication_namespace": 6237,
}
# Catalog relations that are views in Postgres (relkind 'v'); the rest are tables.
_CATALOG_VIEWS = {"pg_roles", "pg_user", "pg_settings", "pg_tables", "pg_views", "pg_matviews", "pg_indexes",
                  "pg_stat_user_tables", "pg_stat_all_tables", "pg_statio_user_tables", "pg_stat_activity",
                  "pg_shadow", "pg_sequences", "pg_stat_database", "pg_locks", "pg_replication_slots",
                  "pg_stat_replication", "pg_available_extensions", "pg_timezone_names", "pg_prepared_statements",
                  "pg_stat_gssapi", "pg_stat_ssl", "pg_group", "pg_stats"}


_ELEMENTS: dict[int, pg_types.PgType] = {}


def _element(t: pg_types.PgType) -> pg_types.PgType:
    """pg_types.element_of, memoised: refresh calls it for every column of every table."""
    elem = _ELEMENTS.get(t.oid)
    if elem is None:
        elem = _ELEMENTS[t.oid] = pg_types.element_of(t)
    return elem


def stable_oid(kind: str, *names: str) -> int:
    """An OID for a user object that depends only on its kind and name: same on every server, every restart."""
    digest = hashlib.blake2b(f"{kind}:{'.'.join(names)}".encode(), digest_size=8).digest()
    return _FIRST_HASHED_OID + int.from_bytes(digest, "big") % _HASHED_SPAN


def namespace_oid(schema: str) -> int:
    return {"pg_catalog": NS_PG_CATALOG, "public": NS_PUBLIC, "information_schema": NS_INFORMATION_SCHEMA,
            "pg_toast": NS_PG_TOAST}.get(schema) or stable_oid("namespace", schema)


def relation_oid(schema: str, name: str) -> int:
    if schema == "pg_catalog" and name in _CATALOG_OIDS:
        return _CATALOG_OIDS[name]
    return stable_oid("relation", schema, name)


# ---------------------------------------------------------------------------------------------------------
# Column types: Postgres catalog types -> Arrow (DuckDB takes the Arrow types as they are).

# oid columns are DuckDB UINTEGER (exactly Postgres's unsigned 32-bit oid): the session describes UINTEGER
# result columns as oid / oid[], which clients such as asyncpg need to decode their own introspection.
_ARROW = {"oid": pa.uint32(), "xid": pa.uint32(), "int8": pa.int64(), "int4": pa.int32(), "int2": pa.int16(),
          "float4": pa.float32(), "float8": pa.float64(), "numeric": pa.float64(), "bool": pa.bool_(),
          "timestamptz": pa.timestamp("us", tz="UTC"), "interval": pa.month_day_nano_interval(),
          "_oid": pa.list_(pa.uint32()), "_regtype": pa.list_(pa.uint32()), "oidvector": pa.list_(pa.uint32()),
          "int2vector": pa.list_(pa.int16()), "_int2": pa.list_(pa.int16()), "_float4": pa.list_(pa.float32()),
          "_text": pa.list_(pa.string()), "_aclitem": pa.list_(pa.string()), "_char": pa.list_(pa.string())}


def _arrow_schema(relation: tuple[str, str]) -> pa.Schema:
    return pa.schema([(name, _ARROW.get(typ, pa.string())) for name, typ in COLUMNS[relation]])


def _arrow_table(relation: tuple[str, str], rows: list[dict]) -> pa.Table:
    schema = _arrow_schema(relation)
    return pa.table({f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema}, schema=schema)


def _target(relation: tuple[str, str]) -> str:
    schema = CATALOG_SCHEMA if relation[0] == "pg_catalog" else INFO_SCHEMA
    return f'{schema}."{relation[1]}"'


def _replace(cursor, relation: tuple[str, str], rows: list[dict], name: str | None = None) -> None:
    table = _arrow_table(relation, rows)
    view = f"bemidb_rows_{relation[1]}"
    target = _target(relation) if name is None else f'{CATALOG_SCHEMA}."{name}"'
    cursor.register(view, table)
    try:
        cursor.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {view}")
    finally:
        cursor.unregister(view)


# ---------------------------------------------------------------------------------------------------------
# Static rows (the same on every server): types, access methods, collations, ranges, tablespaces ...

def _type_row(t: pg_types.PgType) -> dict:
    base = _element(t).name
    collation = 950 if base == "name" else (DEFAULT_COLLATION if base in ("text", "varchar", "bpchar") else 0)
    return {"oid": t.oid, "typname": t.name, "typnamespace": NS_PG_CATALOG, "typowner": OWNER_OID,
            "typlen": t.typlen, "typbyval": t.byval, "typtype": t.typtype, "typcategory": t.category,
            "typispreferred": t.preferred, "typisdefined": True, "typdelim": t.delim, "typrelid": 0,
            "typsubscript": "array_subscript_handler" if t.is_array else "-", "typelem": t.elem,
            "typarray": t.array_oid, "typinput": t.input, "typoutput": t.output, "typreceive": t.receive or "-",
            "typsend": t.send or "-", "typmodin": "-", "typmodout": "-", "typanalyze": "-", "typalign": t.align,
            "typstorage": t.storage, "typnotnull": False, "typbasetype": 0, "typtypmod": -1, "typndims": 0,
            "typcollation": collation}


def _static_rows(database: str, user: str) -> dict[tuple[str, str], list[dict]]:
    pgc = "pg_catalog"
    return {
        (pgc, "pg_am"): [{"oid": oid, "amname": name, "amhandler": handler, "amtype": kind}
                         for oid, name, kind, handler in (
                             (HEAP_AM, "heap", "t", "heap_tableam_handler"), (BTREE_AM, "btree", "i", "bthandler"),
                             (405, "hash", "i", "hashhandler"), (783, "gist", "i", "gisthandler"),
                             (2742, "gin", "i", "ginhandler"), (3580, "brin", "i", "brinhandler"))],
        (pgc, "pg_collation"): [
            {"oid": oid, "collname": name, "collnamespace": NS_PG_CATALOG, "collowner": OWNER_OID,
             "collprovider": prov, "collisdeterministic": True, "collencoding": -1, "collcollate": coll,
             "collctype": coll} for oid, name, prov, coll in (
                (100, "default", "d", None), (950, "C", "c", "C"), (951, "POSIX", "c", "POSIX"))],
        (pgc, "pg_range"): [
            {"rngtypid": a, "rngsubtype": b, "rngmultitypid": c, "rngcollation": 0, "rngsubopc": d,
             "rngcanonical": e, "rngsubdiff": f} for a, b, c, d, e, f in (
                (3904, 23, 4451, 1978, "int4range_canonical", "int4range_subdiff"),
                (3906, 1700, 4532, 3125, "-", "numrange_subdiff"), (3908, 1114, 4533, 3128, "-", "tsrange_subdiff"),
                (3910, 1184, 4534, 3127, "-", "tstzrange_subdiff"),
                (3912, 1082, 4535, 3122, "daterange_canonical", "daterange_subdiff"),
                (3926, 20, 4536, 3124, "int8range_canonical", "int8range_subdiff"))],
        (pgc, "pg_tablespace"): [{"oid": 1663, "spcname": "pg_default", "spcowner": OWNER_OID},
                                 {"oid": 1664, "spcname": "pg_global", "spcowner": OWNER_OID}],
        (pgc, "pg_database"): [{
            "oid": DATABASE_OID, "datname": database, "datdba": OWNER_OID, "encoding": 6, "datlocprovider": "c",
            "datistemplate": False, "datallowconn": True, "datconnlimit": -1, "datfrozenxid": 722,
            "datminmxid": 1, "dattablespace": 1663, "datcollate": "C.UTF-8", "datctype": "C.UTF-8",
            "datcollversion": None, "datacl": None}],
        (pgc, "pg_extension"): [{"oid": 13_500, "extname": "plpgsql", "extowner": OWNER_OID,
                                 "extnamespace": NS_PG_CATALOG, "extrelocatable": False, "extversion": "1.0"}],
        (pgc, "pg_language"): [{"oid": oid, "lanname": name, "lanowner": OWNER_OID, "lanispl": pl,
                                "lanpltrusted": trusted, "lanplcallfoid": 0, "laninline": 0, "lanvalidator": 0}
                               for oid, name, pl, trusted in ((12, "internal", False, False),
                                                              (13, "c", False, False), (14, "sql", False, True))],
        (pgc, "pg_authid"): [{
            "oid": OWNER_OID, "rolname": user, "rolsuper": False, "rolinherit": True, "rolcreaterole": False,
            "rolcreatedb": False, "rolcanlogin": True, "rolreplication": False, "rolbypassrls": False,
            "rolconnlimit": -1, "rolpassword": None, "rolvaliduntil": None}],
        (pgc, "pg_roles"): [{
            "rolname": user, "rolsuper": False, "rolinherit": True, "rolcreaterole": False, "rolcreatedb": False,
            "rolcanlogin": True, "rolreplication": False, "rolconnlimit": -1, "rolpassword": "********",
            "rolvaliduntil": None, "rolbypassrls": False, "rolconfig": None, "oid": OWNER_OID}],
        (pgc, "pg_user"): [{"usename": user, "usesysid": OWNER_OID, "usecreatedb": False, "usesuper": False,
                            "userepl": False, "usebypassrls": False, "passwd": "********", "valuntil": None,
                            "useconfig": None}],
        (pgc, "pg_shadow"): [{"usename": user, "usesysid": OWNER_OID, "usecreatedb": False, "usesuper": False,
                              "userepl": False, "usebypassrls": False, "passwd": "********"}],
        ("information_schema", "character_sets"): [{
            "character_set_catalog": None, "character_set_schema": None, "character_set_name": "UTF8",
            "character_repertoire": "UCS", "form_of_use": "UTF8", "default_collate_catalog": database,
            "default_collate_schema": None, "default_collate_name": None}],
        ("information_schema", "enabled_roles"): [{"role_name": user}],
    }


# ---------------------------------------------------------------------------------------------------------
# Dynamic rows: namespaces, relations, attributes, types, descriptions, from the synced tables.

def _catalog_relation_rows() -> list[tuple[str, str, int, str, list[tuple[str, str]]]]:
    """(schema, name, oid, relkind, columns) of our own emulated catalog relations, so `\\d pg_class` works."""
    out = []
    for (schema, name), cols in COLUMNS.items():
        kind = "v" if schema == "information_schema" or name in _CATALOG_VIEWS else "r"
        out.append((schema, name, relation_oid(schema, name), kind, cols))
    return out


_STATIC_RELATIONS: tuple[list[dict], list[dict]] | None = None


def _static_relation_rows() -> tuple[list[dict], list[dict]]:
    global _STATIC_RELATIONS
    if _STATIC_RELATIONS is None:
        classes, attributes = [], []
        for schema, name, oid, kind, cols in _catalog_relation_rows():
            classes.append(_class_row(oid, name, namespace_oid(schema), kind, len(cols)))
            for attnum, (col, typ) in enumerate(cols, start=1):
                t = pg_types.BY_NAME.get(typ) or pg_types.BY_NAME["text"]
                attributes.append(_attribute_row(oid, attnum, col, t.oid, -1, t, False))
        _STATIC_RELATIONS = (classes, attributes)
    return _STATIC_RELATIONS


class _Builder:
    """Accumulates the rows of every dynamic relation for one refresh."""

    def __init__(self, database: str):
        self.database = database
        self.rows: dict[tuple[str, str], list[dict]] = {}
        self.extra_types: dict[str, dict] = {}
        self.defs: list[dict] = []  # bemidb_defs: oid -> definition text for pg_get_*def macros
        self.used_oids: set[int] = set()

    def add(self, relation: str, row: dict, schema: str = "pg_catalog") -> None:
        self.rows.setdefault((schema, relation), []).append(row)

    def unique(self, oid: int) -> int:
        # A hash collision (~1e-6 for thousands of tables) is resolved by probing, in sorted-name order.
        while oid in self.used_oids:
            oid += 1
        self.used_oids.add(oid)
        return oid

    def column_type(self, text: str) -> tuple[int, int, pg_types.PgType | None]:
        """(type oid, typmod, built-in type or None) for a SOURCE type text; unknown names get a pg_type row."""
        parsed = pg_types.parse_type_name(text)
        if parsed is not None:
            return parsed[0].oid, parsed[1], parsed[0]
        name = text.strip()
        is_array = name.endswith("[]")
        base = name[:-2].strip() if is_array else name
        schema, _, short = base.rpartition(".")
        key = base.lower()
        if key not in self.extra_types:
            oid = stable_oid("type", base)
            array_oid = stable_oid("type", base + "[]")
            nsp = namespace_oid(schema.strip('"')) if schema else NS_PUBLIC
            short = short.strip('"')
            row = {**_type_row(pg_types.BY_NAME["text"]), "oid": oid, "typname": short, "typnamespace": nsp,
                   "typcategory": "U", "typispreferred": False, "typarray": array_oid, "typinput": "textin",
                   "typcollation": DEFAULT_COLLATION}
            array_row = {**_type_row(pg_types.BY_NAME["_text"]), "oid": array_oid, "typname": "_" + short,
                         "typnamespace": nsp, "typelem": oid, "typarray": 0}
            self.extra_types[key] = row
            self.extra_types[key + "[]"] = array_row
        row = self.extra_types[key + ("[]" if is_array else "")]
        return row["oid"], -1, None


def _attribute_row(relid: int, attnum: int, name: str, type_oid: int, mod: int, t: pg_types.PgType | None,
                   notnull: bool) -> dict:
    t = t or pg_types.BY_NAME["text"]
    collatable = _element(t).name in ("text", "varchar", "bpchar")
    return {"attrelid": relid, "attname": name, "atttypid": type_oid, "attstattarget": -1, "attlen": t.typlen,
            "attnum": attnum, "attndims": 1 if t.is_array else 0, "attcacheoff": -1, "atttypmod": mod,
            "attbyval": t.byval, "attalign": t.align, "attstorage": t.storage, "attcompression": "",
            "attnotnull": notnull, "atthasdef": False, "atthasmissing": False, "attidentity": "",
            "attgenerated": "", "attisdropped": False, "attislocal": True, "attinhcount": 0,
            "attcollation": DEFAULT_COLLATION if collatable else 0, "attacl": None, "attoptions": None,
            "attfdwoptions": None, "attmissingval": None}


def _class_row(oid: int, name: str, nsp: int, kind: str, natts: int, reltype: int = 0,
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


def _info_column_row(database: str, schema: str, table: str, position: int, name: str, type_oid: int,
                     mod: int, t: pg_types.PgType | None, nullable: bool, udt_name: str) -> dict:
    """information_schema.columns the way Postgres derives it from the type and typmod."""
    elem = _element(t) if t else None
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


def _build(database: str, tables: Iterable[TableInfo]) -> _Builder:
    b = _Builder(database)
    tables = sorted(tables, key=lambda t: (t.schema, t.name))
    schemas = ["pg_catalog", "public", "information_schema", "pg_toast"]
    schemas += sorted({t.schema for t in tables} - set(schemas))
    for schema in schemas:
        b.add("pg_namespace", {"oid": b.unique(namespace_oid(schema)), "nspname": schema,
                               "nspowner": OWNER_OID, "nspacl": None})
        if schema not in ("pg_toast",):
            b.add("schemata", {"catalog_name": database, "schema_name": schema, "schema_owner": "bemidb",
                               "default_character_set_catalog": None, "default_character_set_schema": None,
                               "default_character_set_name": None, "sql_path": None}, "information_schema")

    # Our catalog relations first: their OIDs are fixed or hashed from fixed names (rows built once).
    static_classes, static_attributes = _static_relation_rows()
    b.used_oids.update(row["oid"] for row in static_classes)
    b.rows.setdefault(("pg_catalog", "pg_class"), []).extend(static_classes)
    b.rows.setdefault(("pg_catalog", "pg_attribute"), []).extend(static_attributes)

    for info in tables:
        nsp = namespace_oid(info.schema)
        kind = "m" if info.source == "matview" else "r"
        oid = b.unique(relation_oid(info.schema, info.name))
        rowtype = b.unique(stable_oid("rowtype", info.schema, info.name))
        pk = tuple(getattr(info, "primary_key", ()) or ())
        b.add("pg_class", _class_row(oid, info.name, nsp, kind, len(info.columns), rowtype, has_index=bool(pk)))
        b.add("pg_type", {**_type_row(pg_types.BY_NAME["record"]), "oid": rowtype, "typname": info.name,
                          "typnamespace": nsp, "typtype": "c", "typcategory": "C", "typrelid": oid,
                          "typinput": "record_in", "typoutput": "record_out", "typreceive": "record_recv",
                          "typsend": "record_send", "typarray": 0, "typalign": "d", "typstorage": "x"}
              if "record" in pg_types.BY_NAME else {"oid": rowtype, "typname": info.name, "typnamespace": nsp,
                                                    "typtype": "c", "typrelid": oid})
        if info.comment:
            b.add("pg_description", {"objoid": oid, "classoid": PG_CLASS_OID, "objsubid": 0,
                                     "description": info.comment})
        table_type = "BASE TABLE"
        b.add("tables", {"table_catalog": database, "table_schema": info.schema, "table_name": info.name,
                         "table_type": table_type, "self_referencing_column_name": None, "reference_generation":
                         None, "user_defined_type_catalog": None, "user_defined_type_schema": None,
                         "user_defined_type_name": None, "is_insertable_into": "NO", "is_typed": "NO",
                         "commit_action": None}, "information_schema")
        for attnum, col in enumerate(info.columns, start=1):
            type_oid, mod, t = b.column_type(col.pg_type)
            udt = t.name if t else next(r["typname"] for r in b.extra_types.values() if r["oid"] == type_oid)
            b.add("pg_attribute", _attribute_row(oid, attnum, col.name, type_oid, mod, t, not col.nullable))
            b.add("columns", _info_column_row(database, info.schema, info.name, attnum, col.name, type_oid, mod,
                                              t, col.nullable, udt), "information_schema")
            if col.comment:
                b.add("pg_description", {"objoid": oid, "classoid": PG_CLASS_OID, "objsubid": attnum,
                                         "description": col.comment})
        if pk:
            _add_primary_key(b, info, oid, nsp, pk)
        stat = {"relid": oid, "schemaname": info.schema, "relname": info.name, "seq_scan": 0, "seq_tup_read": 0,
                "idx_scan": 0 if pk else None, "idx_tup_fetch": 0 if pk else None, "n_tup_ins": 0, "n_tup_upd": 0,
                "n_tup_del": 0, "n_tup_hot_upd": 0, "n_live_tup": 0, "n_dead_tup": 0, "n_mod_since_analyze": 0,
                "n_ins_since_vacuum": 0, "vacuum_count": 0, "autovacuum_count": 0, "analyze_count": 0,
                "autoanalyze_count": 0, "n_tup_newpage_upd": 0}
        b.add("pg_stat_user_tables", stat)
        b.add("pg_stat_all_tables", stat)
        b.add("pg_statio_user_tables", {"relid": oid, "schemaname": info.schema, "relname": info.name,
                                        "heap_blks_read": 0, "heap_blks_hit": 0})
        if kind == "r":
            b.add("pg_tables", {"schemaname": info.schema, "tablename": info.name, "tableowner": "bemidb",
                                "tablespace": None, "hasindexes": bool(pk), "hasrules": False,
                                "hastriggers": False, "rowsecurity": False})
        else:
            definition = getattr(info, "definition", None) or ""
            b.defs.append({"oid": oid, "def": definition})
            b.add("pg_matviews", {"schemaname": info.schema, "matviewname": info.name, "matviewowner": "bemidb",
                                  "tablespace": None, "hasindexes": False, "ispopulated": True,
                                  "definition": definition})
    for row in b.extra_types.values():
        b.add("pg_type", row)
    return b


def _add_primary_key(b: _Builder, info: TableInfo, relid: int, nsp: int, pk: tuple[str, ...]) -> None:
    names = [c.name for c in info.columns]
    keys = [names.index(k) + 1 for k in pk if k in names]
    if not keys:
        return
    index_name = f"{info.name}_pkey"
    index_oid = b.unique(stable_oid("index", info.schema, index_name))
    con_oid = b.unique(stable_oid("constraint", info.schema, info.name, index_name))
    cols = ", ".join(_quote_ident(k) for k in pk)
    b.add("pg_class", _class_row(index_oid, index_name, nsp, "i", len(keys)))
    b.add("pg_index", {"indexrelid": index_oid, "indrelid": relid, "indnatts": len(keys), "indnkeyatts": len(keys),
                       "indisunique": True, "indnullsnotdistinct": False, "indisprimary": True,
                       "indisexclusion": False, "indimmediate": True, "indisclustered": False, "indisvalid": True,
                       "indcheckxmin": False, "indisready": True, "indislive": True, "indisreplident": False,
                       "indkey": keys, "indcollation": [0] * len(keys), "indclass": [0] * len(keys),
                       "indoption": [0] * len(keys), "indexprs": None, "indpred": None})
    b.add("pg_constraint", {"oid": con_oid, "conname": index_name, "connamespace": nsp, "contype": "p",
                            "condeferrable": False, "condeferred": False, "convalidated": True, "conrelid": relid,
                            "contypid": 0, "conindid": index_oid, "conparentid": 0, "confrelid": 0,
                            "confupdtype": " ", "confdeltype": " ", "confmatchtype": " ", "conislocal": True,
                            "coninhcount": 0, "connoinherit": True, "conkey": keys})
    for position, attnum in enumerate(keys, start=1):
        b.add("pg_attribute", _attribute_row(index_oid, position, names[attnum - 1], 0, -1, None, False))
    b.defs.append({"oid": con_oid, "def": f"PRIMARY KEY ({cols})"})
    b.defs.append({"oid": index_oid, "def": f"CREATE UNIQUE INDEX {_quote_ident(index_name)} ON "
                                            f"{_quote_ident(info.schema)}.{_quote_ident(info.name)} "
                                            f"USING btree ({cols})"})
    b.add("pg_indexes", {"schemaname": info.schema, "tablename": info.name, "indexname": index_name,
                         "tablespace": None, "indexdef": b.defs[-1]["def"]})
    base = {"constraint_catalog": b.database, "constraint_schema": info.schema, "constraint_name": index_name,
            "table_catalog": b.database, "table_schema": info.schema, "table_name": info.name}
    b.add("table_constraints", {**base, "constraint_type": "PRIMARY KEY", "is_deferrable": "NO",
                                "initially_deferred": "NO", "enforced": "YES", "nulls_distinct": None},
          "information_schema")
    for position, name in enumerate(pk, start=1):
        b.add("key_column_usage", {**base, "column_name": name, "ordinal_position": position,
                                   "position_in_unique_constraint": None}, "information_schema")


_PLAIN_IDENT = re.compile(r"^[a-z_][a-z0-9_$]*$")


def _quote_ident(name: str) -> str:
    return name if _PLAIN_IDENT.match(name) else '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------------------------------------------------
# Public API.

_ROLE_COLUMNS = {("pg_catalog", "pg_authid"): "rolname", ("pg_catalog", "pg_roles"): "rolname",
                 ("pg_catalog", "pg_user"): "usename", ("pg_catalog", "pg_shadow"): "usename",
                 ("information_schema", "enabled_roles"): "role_name"}

_SESSION_VIEWS = {
    # Per-session values read from the variables SessionSettings.apply sets (defaults when unset).
    "pg_settings": """SELECT d.name, coalesce(getvariable('bemidb_gucs')[lower(d.name)], d.setting) AS setting,
        NULL::VARCHAR AS unit, d.category, d.short_desc, NULL::VARCHAR AS extra_desc,
        CASE WHEN d.readonly THEN 'internal' ELSE 'user' END AS context, d.vartype, 'default' AS source,
        NULL::VARCHAR AS min_val, NULL::VARCHAR AS max_val, NULL::VARCHAR[] AS enumvals, d.setting AS boot_val,
        d.setting AS reset_val, NULL::VARCHAR AS sourcefile, NULL::INTEGER AS sourceline, false AS pending_restart
        FROM {s}.bemidb_settings d""",
    "pg_stat_activity": """SELECT {db_oid}::BIGINT AS datid, '{db}' AS datname,
        {s}.pg_backend_pid() AS pid, NULL::INTEGER AS leader_pid, {owner}::BIGINT AS usesysid,
        {s}.bemidb_user() AS usename, coalesce(getvariable('bemidb_gucs')['application_name'], '')
        AS application_name, NULL::VARCHAR AS client_addr, NULL::VARCHAR AS client_hostname,
        NULL::INTEGER AS client_port, {s}.pg_postmaster_start_time() AS backend_start,
        NULL::TIMESTAMPTZ AS xact_start, now() AS query_start, now() AS state_change,
        NULL::VARCHAR AS wait_event_type, NULL::VARCHAR AS wait_event, 'active' AS state,
        NULL::BIGINT AS backend_xid, NULL::BIGINT AS backend_xmin, NULL::BIGINT AS query_id, '' AS query,
        'client backend' AS backend_type""",
}


def install(con, database: str = "bemidb", user: str = "bemidb") -> None:
    """Create the catalog schemas, static rows, functions and per-session views. Once, at server boot."""
    cursor = con.cursor()
    try:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {CATALOG_SCHEMA}")
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {INFO_SCHEMA}")
        static = _static_rows(database, user)
        for relation in COLUMNS:
            if relation[1] in _SESSION_VIEWS:
                continue
            if relation in _ROLE_COLUMNS:  # the role is whoever logged in: a view over the static row
                _replace(cursor, relation, static[relation], f"bemidb_static_{relation[1]}")
                continue
            _replace(cursor, relation, static.get(relation, []))
        cursor.execute(f"CREATE OR REPLACE TABLE {CATALOG_SCHEMA}.bemidb_settings AS SELECT * FROM (VALUES "
                       + ", ".join("(" + ", ".join(_sql_literal(v) for v in (
                           s.name, s.default, s.category, s.description, s.vartype, s.read_only)) + ")"
                           for s in SETTINGS.values())
                       + ") AS t(name, setting, category, short_desc, vartype, readonly)")
        cursor.execute(f"CREATE OR REPLACE TABLE {CATALOG_SCHEMA}.bemidb_defs (oid BIGINT, def VARCHAR)")
        _replace_type_format(cursor, [])
        _build_lookup(cursor)
        _create_in_dependency_order(cursor, macros(database, user, CATALOG_SCHEMA, OWNER_OID))
        for relation, column in _ROLE_COLUMNS.items():
            cursor.execute(f'CREATE OR REPLACE VIEW {_target(relation)} AS SELECT * REPLACE '
                           f'({CATALOG_SCHEMA}.bemidb_user() AS {column}) FROM '
                           f'{CATALOG_SCHEMA}."bemidb_static_{relation[1]}"')
        for name, body in _SESSION_VIEWS.items():
            sql = body.format(s=CATALOG_SCHEMA, db=database.replace("'", "''"), db_oid=DATABASE_OID,
                              owner=OWNER_OID)
            cursor.execute(f'CREATE OR REPLACE VIEW {CATALOG_SCHEMA}."{name}" AS {sql}')
        cursor.execute(f"CREATE OR REPLACE TABLE {CATALOG_SCHEMA}.bemidb_database AS SELECT "
                       f"{_sql_literal(database)} AS name")
    finally:
        cursor.close()
    refresh(con, [])


def _create_in_dependency_order(cursor, statements: list[str]) -> None:
    """Macros refer to each other; DuckDB binds them at creation, so retry until each one's callees exist."""
    import duckdb

    pending = list(statements)
    while pending:
        failed = []
        for statement in pending:
            try:
                cursor.execute(statement)
            except duckdb.CatalogException:
                failed.append(statement)
        if len(failed) == len(pending):
            cursor.execute(failed[0])  # raises the real error
        pending = failed


def _replace_type_format(cursor, extra: list[dict]) -> None:
    table = pa.table(list(zip(*type_format_rows(extra), strict=True)),
                     names=["oid", "plain", "pre", "post", "mod_kind", "suffix"])
    cursor.register("bemidb_rows_type_format", table)
    try:
        cursor.execute(f"CREATE OR REPLACE TABLE {CATALOG_SCHEMA}.bemidb_type_format AS "
                       "SELECT * FROM bemidb_rows_type_format")
    finally:
        cursor.unregister("bemidb_rows_type_format")


def _sql_literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "'" + str(value).replace("'", "''") + "'"


_DYNAMIC = [("pg_catalog", n) for n in ("pg_namespace", "pg_class", "pg_attribute", "pg_type", "pg_description",
                                        "pg_index", "pg_constraint", "pg_tables", "pg_matviews", "pg_indexes",
                                        "pg_stat_user_tables", "pg_stat_all_tables", "pg_statio_user_tables")]
_DYNAMIC += [("information_schema", n) for n in ("schemata", "tables", "columns", "table_constraints",
                                                  "key_column_usage")]


def refresh(con, tables: list[TableInfo]) -> None:
    """Swap in the catalog rows for this set of synced tables (and materialized views), atomically."""
    database = con.execute(f"SELECT name FROM {CATALOG_SCHEMA}.bemidb_database").fetchone()[0] \
        if _has_table(con, "bemidb_database") else "bemidb"
    built = _build(database, tables)
    built.rows.setdefault(("pg_catalog", "pg_type"), []).extend(_type_row(t) for t in pg_types.ALL_TYPES)
    cursor = con.cursor()
    try:
        cursor.execute("BEGIN TRANSACTION")
        try:
            for relation in _DYNAMIC:
                _replace(cursor, relation, built.rows.get(relation, []))
            defs = pa.table({"oid": pa.array([d["oid"] for d in built.defs], pa.uint32()),
                             "def": pa.array([d["def"] for d in built.defs], pa.string())})
            cursor.register("bemidb_rows_defs", defs)
            cursor.execute(f"CREATE OR REPLACE TABLE {CATALOG_SCHEMA}.bemidb_defs AS SELECT * FROM bemidb_rows_defs")
            cursor.unregister("bemidb_rows_defs")
            _replace_type_format(cursor, list(built.extra_types.values()))
            _build_lookup(cursor)
            cursor.execute("COMMIT")
        except Exception:
            cursor.execute("ROLLBACK")
            raise
    finally:
        cursor.close()


def _build_lookup(cursor) -> None:
    """One row of maps (oid -> name, namespace, type format, definition, description) the macros read."""
    s = CATALOG_SCHEMA
    cursor.execute(f"""CREATE OR REPLACE TABLE {s}.bemidb_lookup AS SELECT
        (SELECT map(list(c.oid), list(n.nspname)) FROM {s}.pg_class c JOIN {s}.pg_namespace n
            ON n.oid = c.relnamespace) AS rel_nsp,
        (SELECT map(list(c.oid), list(c.relname)) FROM {s}.pg_class c) AS rel_name,
        (SELECT map(list(n.oid), list(n.nspname)) FROM {s}.pg_namespace n) AS nsp_name,
        (SELECT map(list(t.oid), list(n.nspname)) FROM {s}.pg_type t JOIN {s}.pg_namespace n
            ON n.oid = t.typnamespace) AS type_nsp,
        (SELECT map(list(f.oid::UINTEGER), list(struct_pack(plain := f.plain, pre := f.pre, post := f.post,
            kind := f.mod_kind, suffix := f.suffix))) FROM {s}.bemidb_type_format f) AS type_fmt,
        (SELECT map(list(d.oid), list(d.def)) FROM {s}.bemidb_defs d) AS defs,
        (SELECT map(list(d.objoid::UBIGINT * 4096 + d.objsubid::UBIGINT), list(d.description))
            FROM {s}.pg_description d) AS descr""")


def _has_table(con, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
                            [CATALOG_SCHEMA, name]).fetchone()[0])


def describe(tables: list[TableInfo]) -> str:
    """A JSON summary (schema.table -> [(column, type, nullable)]) for logs and debugging."""
    return json.dumps({f"{t.schema}.{t.name}": [(c.name, c.pg_type, c.nullable) for c in t.columns]
                       for t in tables})


def _always_empty() -> frozenset[str]:
    """pg_catalog relations that never have a row here (no defaults, policies, triggers, inheritance ...)."""
    filled = set(_static_rows("x", "x")) | set(_DYNAMIC) | set(_ROLE_COLUMNS)
    filled |= {("pg_catalog", n) for n in _SESSION_VIEWS}
    return frozenset(name for schema, name in COLUMNS if schema == "pg_catalog" and (schema, name) not in filled)


ALWAYS_EMPTY = _always_empty()
