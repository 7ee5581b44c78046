"""pg_catalog and information_schema for Postgres clients, as DuckDB tables we fill ourselves.

DuckDB's own pg_catalog describes DuckDB (its types, its internal schemas, its OIDs); clients need Postgres's.
So every relation a client reads lives in two DuckDB schemas of ours (CATALOG_SCHEMA, INFO_SCHEMA) with
Postgres 16's column names, and rewrite.py points `pg_catalog.X` / `information_schema.X` / bare catalog names
there. Rows are built in Python from the synced tables' TableInfo (SOURCE Postgres types, nullability, order)
and swapped in one DuckDB transaction by `refresh`, so a query sees the old or the new catalog, never half.

The rows come from static_rows.py (the same everywhere) and table_rows.py (per synced table); their OIDs from
oids.py. Per-session values (search_path, settings, user, pid) come from DuckDB variables that
SessionSettings.apply (sql/session_settings.py) sets on the session's cursor, with defaults when unset.
"""

from __future__ import annotations

import json

import pyarrow as pa

from bemidb.quoting import quote_ident_if_needed, quote_literal
from bemidb.server.catalog import pg_types
from bemidb.server.catalog.columns import COLUMNS
from bemidb.server.catalog.functions import macros, type_format_rows
from bemidb.server.catalog.functions_extra import extra_macros
from bemidb.server.catalog.oids import CATALOG_SCHEMA, DATABASE_OID, INFO_SCHEMA, OWNER_OID
from bemidb.server.catalog.row_shapes import type_row
from bemidb.server.catalog.static_rows import static_rows
from bemidb.server.catalog.table_rows import build_rows
from bemidb.server.settings import SETTINGS
from bemidb.storage.catalog import TableInfo

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
# Public API.

_ROLE_COLUMNS = {("pg_catalog", "pg_authid"): "rolname", ("pg_catalog", "pg_roles"): "rolname",
                 ("pg_catalog", "pg_user"): "usename", ("pg_catalog", "pg_shadow"): "usename",
                 ("information_schema", "enabled_roles"): "role_name"}

# The DuckDB type of the variable protocol/cursors.py publishes the session's open cursors in.
CURSOR_LIST = "STRUCT(name VARCHAR, statement VARCHAR, is_holdable BOOLEAN, is_binary BOOLEAN, created DOUBLE)[]"

_SESSION_VIEWS = {
    # Per-session values read from the variables SessionSettings.apply sets (defaults when unset).
    "pg_settings": """SELECT d.name, coalesce(getvariable('bemidb_gucs')[lower(d.name)], d.setting) AS setting,
        NULL::VARCHAR AS unit, d.category, d.short_desc, NULL::VARCHAR AS extra_desc,
        CASE WHEN d.readonly THEN 'internal' ELSE 'user' END AS context, d.vartype, 'default' AS source,
        NULL::VARCHAR AS min_val, NULL::VARCHAR AS max_val, NULL::VARCHAR[] AS enumvals, d.setting AS boot_val,
        d.setting AS reset_val, NULL::VARCHAR AS sourcefile, NULL::INTEGER AS sourceline, false AS pending_restart
        FROM {s}.bemidb_settings d""",
    # The session's DECLAREd cursors (protocol/cursors.py publishes them).
    "pg_cursors": """SELECT u.c.name AS name, u.c.statement AS statement, u.c.is_holdable AS is_holdable,
        u.c.is_binary AS is_binary, false AS is_scrollable, to_timestamp(u.c.created) AS creation_time
        FROM (SELECT unnest(coalesce(getvariable('bemidb_cursors')::{cursor_list}, []::{cursor_list})) AS c) AS u""",
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
        static = static_rows(database, user)
        for relation in COLUMNS:
            if relation[1] in _SESSION_VIEWS:
                continue
            if relation in _ROLE_COLUMNS:  # the role is whoever logged in: a view over the static row
                _replace(cursor, relation, static[relation], f"bemidb_static_{relation[1]}")
                continue
            _replace(cursor, relation, static.get(relation, []))
        cursor.execute(f"CREATE OR REPLACE TABLE {CATALOG_SCHEMA}.bemidb_settings AS SELECT * FROM (VALUES "
                       + ", ".join("(" + ", ".join(quote_literal(v) for v in (
                           s.name, s.default, s.category, s.description, s.vartype, s.read_only)) + ")"
                           for s in SETTINGS.values())
                       + ") AS t(name, setting, category, short_desc, vartype, readonly)")
        cursor.execute(f"CREATE OR REPLACE TABLE {CATALOG_SCHEMA}.bemidb_defs (oid BIGINT, def VARCHAR)")
        cursor.execute(f"CREATE OR REPLACE TABLE {CATALOG_SCHEMA}.bemidb_index_columns (indexrelid UINTEGER, "
                       "attnum INTEGER, def VARCHAR)")
        _replace_type_format(cursor, [])
        _build_lookup(cursor)
        _replace_sync_status(cursor, [])
        _create_in_dependency_order(cursor, macros(database, user, CATALOG_SCHEMA, OWNER_OID))
        _create_in_dependency_order(cursor, extra_macros(CATALOG_SCHEMA))  # replaces a few stand-ins above
        for relation, column in _ROLE_COLUMNS.items():
            cursor.execute(f'CREATE OR REPLACE VIEW {_target(relation)} AS SELECT * REPLACE '
                           f'({CATALOG_SCHEMA}.bemidb_user() AS {column}) FROM '
                           f'{CATALOG_SCHEMA}."bemidb_static_{relation[1]}"')
        for name, body in _SESSION_VIEWS.items():
            sql = body.format(s=CATALOG_SCHEMA, db=database.replace("'", "''"), db_oid=DATABASE_OID,
                              owner=OWNER_OID, cursor_list=CURSOR_LIST)
            cursor.execute(f'CREATE OR REPLACE VIEW {CATALOG_SCHEMA}."{name}" AS {sql}')
        cursor.execute(f"CREATE OR REPLACE TABLE {CATALOG_SCHEMA}.bemidb_database AS SELECT "
                       f"{quote_literal(database)} AS name")
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


def _quoted_type_name(row: dict) -> dict:
    """format_type prints a type name as an identifier: "Mixed Case", not Mixed Case (arrays keep their _)."""
    name = row["typname"]
    if name.startswith("_") and row.get("typelem"):
        return {**row, "typname": "_" + quote_ident_if_needed(name[1:])}
    return {**row, "typname": quote_ident_if_needed(name)}


def _replace_type_format(cursor, extra: list[dict]) -> None:
    table = pa.table(list(zip(*type_format_rows([_quoted_type_name(r) for r in extra]), strict=True)),
                     names=["oid", "plain", "pre", "post", "mod_kind", "suffix"])
    cursor.register("bemidb_rows_type_format", table)
    try:
        cursor.execute(f"CREATE OR REPLACE TABLE {CATALOG_SCHEMA}.bemidb_type_format AS "
                       "SELECT * FROM bemidb_rows_type_format")
    finally:
        cursor.unregister("bemidb_rows_type_format")




_DYNAMIC = [("pg_catalog", n) for n in ("pg_namespace", "pg_class", "pg_attribute", "pg_attrdef", "pg_type",
                                        "pg_description",
                                        "pg_index", "pg_constraint", "pg_tables", "pg_matviews", "pg_indexes",
                                        "pg_stat_user_tables", "pg_stat_all_tables", "pg_statio_user_tables", "pg_enum")]
_DYNAMIC += [("information_schema", n) for n in ("schemata", "tables", "columns", "table_constraints",
                                                  "key_column_usage")]


def refresh(con, tables: list[TableInfo]) -> None:
    """Swap in the catalog rows for this set of synced tables (and materialized views), atomically."""
    database = con.execute(f"SELECT name FROM {CATALOG_SCHEMA}.bemidb_database").fetchone()[0] \
        if _has_table(con, "bemidb_database") else "bemidb"
    built = build_rows(database, tables)
    built.rows.setdefault(("pg_catalog", "pg_type"), []).extend(type_row(t) for t in pg_types.ALL_TYPES)
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
            # pg_get_indexdef(index, column, pretty): one definition per index column (a name or an expression)
            columns = pa.table({"indexrelid": pa.array([c[0] for c in built.index_columns], pa.uint32()),
                                "attnum": pa.array([c[1] for c in built.index_columns], pa.int32()),
                                "def": pa.array([c[2] for c in built.index_columns], pa.string())})
            cursor.register("bemidb_rows_index_columns", columns)
            cursor.execute(f"CREATE OR REPLACE TABLE {CATALOG_SCHEMA}.bemidb_index_columns AS "
                           "SELECT * FROM bemidb_rows_index_columns")
            cursor.unregister("bemidb_rows_index_columns")
            _replace_type_format(cursor, list(built.extra_types.values()))
            _build_lookup(cursor)
            _replace_sync_status(cursor, tables)
            cursor.execute("COMMIT")
        except Exception:
            cursor.execute("ROLLBACK")
            raise
    finally:
        cursor.close()


def _replace_sync_status(cursor, tables: list[TableInfo]) -> None:
    """What `bemidb_last_synced_at()` returns: each table's last sync, its mode and, for CDC, the source LSN."""
    status = pa.table({
        "schema_name": pa.array([t.schema for t in tables], pa.string()),
        "table_name": pa.array([t.name for t in tables], pa.string()),
        "last_synced_at": pa.array([t.synced_at for t in tables], pa.string()),
        "sync_mode": pa.array([t.sync_mode or None for t in tables], pa.string()),
        "source_lsn": pa.array([t.source_lsn for t in tables], pa.string())})
    cursor.register("bemidb_rows_sync_status", status)
    cursor.execute(f"CREATE OR REPLACE TABLE {CATALOG_SCHEMA}.bemidb_sync_status AS SELECT schema_name, "
                   "table_name, CAST(last_synced_at AS TIMESTAMPTZ) AS last_synced_at, sync_mode, source_lsn "
                   "FROM bemidb_rows_sync_status ORDER BY schema_name, table_name")
    cursor.unregister("bemidb_rows_sync_status")


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
    filled = set(static_rows("x", "x")) | set(_DYNAMIC) | set(_ROLE_COLUMNS)
    filled |= {("pg_catalog", n) for n in _SESSION_VIEWS}
    return frozenset(name for schema, name in COLUMNS if schema == "pg_catalog" and (schema, name) not in filled)


ALWAYS_EMPTY = _always_empty()
