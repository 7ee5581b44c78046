"""Where the emulated catalog lives in DuckDB, and the OIDs of catalog objects.

Built-in types and catalog relations keep their real Postgres OIDs; schemas, tables, indexes and row types get
an OID hashed from their name, so the same table has the same OID across restarts and servers.
"""

from __future__ import annotations

import hashlib

from bemidb.server.catalog.columns import COLUMNS

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
CATALOG_VIEWS = {"pg_roles", "pg_user", "pg_settings", "pg_tables", "pg_views", "pg_matviews", "pg_indexes",
                  "pg_stat_user_tables", "pg_stat_all_tables", "pg_statio_user_tables", "pg_stat_activity",
                  "pg_shadow", "pg_sequences", "pg_stat_database", "pg_locks", "pg_replication_slots",
                  "pg_stat_replication", "pg_available_extensions", "pg_timezone_names", "pg_prepared_statements",
                  "pg_stat_gssapi", "pg_stat_ssl", "pg_group", "pg_stats"}


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


# Catalog column types RowDescription cannot name from our DuckDB tables: "char" (char alone is char(1)), and
# the statistics types, sent as text by us.
_DESCRIBED_AS = {"char": '"char"', "pg_ndistinct": "text", "pg_dependencies": "text",
                 "pg_mcv_list": "text", "_pg_statistic": "text"}


def catalog_relation(schema: str, name: str) -> tuple[int, dict[str, tuple[int, str]]] | None:
    """(OID, {column: (attnum, type)}) of an emulated catalog relation, for RowDescription to describe its
    columns as Postgres does (name, "char", int2vector ... instead of text). `schema` '' is a bare name:
    pg_catalog, which is first on every search_path."""
    schema = schema or "pg_catalog"
    columns = COLUMNS.get((schema, name)) if schema in ("pg_catalog", "information_schema") else None
    if columns is None:
        return None
    return relation_oid(schema, name), {column: (attnum, _DESCRIBED_AS.get(typ, typ))
                                        for attnum, (column, typ) in enumerate(columns, start=1)}
