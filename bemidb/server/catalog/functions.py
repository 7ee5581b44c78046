"""Postgres's functions for clients (format_type, pg_get_userbyid, has_*_privilege, ...) as DuckDB macros,
and the Postgres spellings of type names they print. pg_catalog.py installs them; rewrite.py qualifies calls.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable

from bemidb.server.catalog import pg_types
from bemidb.server.catalog.numeric_macros import numeric_macros
from bemidb.server.settings import SERVER_VERSION, SETTINGS

# ---------------------------------------------------------------------------------------------------------
# Postgres type text: format_type() and information_schema's spellings, in Python (rows) and SQL (macro).

_SQL_NAMES = {"bool": "boolean", "int2": "smallint", "int4": "integer", "int8": "bigint", "float4": "real",
              "float8": "double precision", "varchar": "character varying", "timestamp":
              "timestamp without time zone", "timestamptz": "timestamp with time zone",
              "time": "time without time zone", "timetz": "time with time zone", "varbit": "bit varying",
              "char": '"char"'}
# How a typmod is printed: numeric(p,s); length (n) from typmod-4; precision (p) as is.
_MOD_KIND = {"numeric": "numeric", "varchar": "len", "bpchar": "len", "bit": "prec", "varbit": "prec",
             "timestamp": "prec", "timestamptz": "prec", "time": "prec", "timetz": "prec", "interval": "prec"}


def _format_parts(t: pg_types.PgType) -> tuple[str, str, str, str]:
    """(plain name, name before the modifier, text after it, modifier kind) for a non-array type."""
    plain = _SQL_NAMES.get(t.name, t.name)
    if t.name == "bpchar":
        return "bpchar", "character", "", "len"
    kind = _MOD_KIND.get(t.name, "none")
    if t.name in ("timestamp", "timestamptz", "time", "timetz"):
        head, _, tail = plain.partition(" ")
        return plain, head, " " + tail, kind
    return plain, plain, "", kind


def _apply_mod(pre: str, post: str, kind: str, mod: int) -> str:
    if kind == "numeric":
        return f"{pre}({((mod - 4) >> 16) & 0xFFFF},{(mod - 4) & 0xFFFF}){post}"
    if kind == "len":
        return f"{pre}({mod - 4}){post}"
    return f"{pre}({mod}){post}"


def format_type(t: pg_types.PgType, mod: int = -1) -> str:
    """Postgres format_type(oid, typmod) for a built-in type."""
    elem, suffix = (pg_types.element_of(t), "[]") if t.is_array else (t, "")
    plain, pre, post, kind = _format_parts(elem)
    if mod is None or mod < 0 or kind == "none":
        return plain + suffix
    return _apply_mod(pre, post, kind, mod) + suffix


# ---------------------------------------------------------------------------------------------------------
# Functions (DuckDB macros in CATALOG_SCHEMA; rewrite.py qualifies calls to them).

def macros(database: str, user: str, s: str, owner_oid: int) -> list[str]:
    """CREATE MACRO statements for the functions Postgres clients call, in schema `s`."""
    guc = "getvariable('bemidb_gucs')"
    path = "coalesce(getvariable('bemidb_search_path'), ['public'])"
    version = (f"PostgreSQL {SERVER_VERSION} (bemidb) on x86_64-pc-linux-gnu, compiled by bemidb, 64-bit")
    defaults = ", ".join(f"'{k}': '{v.default.replace(chr(39), chr(39) * 2)}'" for k, v in SETTINGS.items())
    db = database.replace("'", "''")
    usr = user.replace("'", "''")
    started = _dt.datetime.now(_dt.UTC).isoformat()
    return [
        f"CREATE OR REPLACE MACRO {s}.bemidb_setting_defaults() AS MAP {{{defaults}}}",
        f"CREATE OR REPLACE MACRO {s}.current_setting(name) AS coalesce({guc}[lower(name)], "
        f"{s}.bemidb_setting_defaults()[lower(name)], error('unrecognized configuration parameter \"' || name "
        "|| '\"'))::VARCHAR, (name, missing_ok) AS coalesce("
        f"{guc}[lower(name)], {s}.bemidb_setting_defaults()[lower(name)], CASE WHEN missing_ok THEN NULL ELSE "
        "error('unrecognized configuration parameter \"' || name || '\"') END)::VARCHAR",
        f"CREATE OR REPLACE MACRO {s}.set_config(name, value, is_local) AS value::VARCHAR",
        f"CREATE OR REPLACE MACRO {s}.version() AS '{version}'",
        f"CREATE OR REPLACE MACRO {s}.current_database() AS '{db}'",
        f"CREATE OR REPLACE MACRO {s}.bemidb_user() AS coalesce(getvariable('bemidb_user'), '{usr}')",
        # The search_path schemas that exist, as SessionSettings.apply computed them (no subquery: JDBC
        # passes current_schemas() to generate_series, and table functions refuse subqueries).
        f"CREATE OR REPLACE MACRO {s}.bemidb_existing_path() AS coalesce(getvariable('bemidb_existing_path'), "
        "['public'])::VARCHAR[]",
        f"CREATE OR REPLACE MACRO {s}.current_schema() AS {s}.bemidb_existing_path()[1]",
        f"CREATE OR REPLACE MACRO {s}.current_schemas(implicit) AS CASE WHEN implicit THEN "
        f"list_prepend('pg_catalog', {s}.bemidb_existing_path()) ELSE {s}.bemidb_existing_path() END",
        f"CREATE OR REPLACE MACRO {s}.pg_backend_pid() AS coalesce(getvariable('bemidb_pid'), 0)::INTEGER",
        f"CREATE OR REPLACE MACRO {s}.pg_get_userbyid(roleid) AS CASE WHEN roleid = {owner_oid} THEN "
        f"{s}.bemidb_user() ELSE 'unknown (OID=' || roleid || ')' END",
        f"CREATE OR REPLACE MACRO {s}.pg_encoding_to_char(enc) AS CASE WHEN enc = 6 THEN 'UTF8' "
        "WHEN enc = 0 THEN 'SQL_ASCII' ELSE '' END",
        f"CREATE OR REPLACE MACRO {s}.pg_char_to_encoding(name) AS CASE WHEN upper(name) IN ('UTF8', 'UTF-8') "
        "THEN 6 ELSE -1 END",
        f"CREATE OR REPLACE MACRO {s}.pg_is_in_recovery() AS false",
        # "Data as of" for dashboards: each table's last sync, mode and (CDC) source LSN (pg_catalog.refresh).
        f"CREATE OR REPLACE MACRO {s}.bemidb_last_synced_at() AS TABLE SELECT * FROM {s}.bemidb_sync_status",
        f"CREATE OR REPLACE MACRO {s}.pg_postmaster_start_time() AS TIMESTAMPTZ '{started}'",
        f"CREATE OR REPLACE MACRO {s}.pg_conf_load_time() AS TIMESTAMPTZ '{started}'",
        f"CREATE OR REPLACE MACRO {s}.pg_function_is_visible(funcoid) AS true",
        f"CREATE OR REPLACE MACRO {s}.pg_is_other_temp_schema(nspoid) AS false",
        # information_schema._pg_expandarray: one (x, n) row per element (JDBC's getPrimaryKeys)
        f"CREATE OR REPLACE MACRO {s}._pg_expandarray(arr) AS unnest(list_transform(list_zip(arr, "
        "generate_series(1, len(arr))), lambda p: struct_pack(x := p[1], n := p[2])))",
        f"CREATE OR REPLACE MACRO {s}.pg_my_temp_schema() AS 0::UINTEGER",
        f"CREATE OR REPLACE MACRO {s}.shobj_description(objoid, catalog) AS NULL::VARCHAR",
        f"CREATE OR REPLACE MACRO {s}.pg_get_expr(expr, relid) AS NULL::VARCHAR, "
        "(expr, relid, pretty) AS NULL::VARCHAR",
        f"CREATE OR REPLACE MACRO {s}.pg_get_function_result(funcoid) AS NULL::VARCHAR",
        f"CREATE OR REPLACE MACRO {s}.pg_get_function_arguments(funcoid) AS NULL::VARCHAR",
        f"CREATE OR REPLACE MACRO {s}.pg_get_function_identity_arguments(funcoid) AS NULL::VARCHAR",
        f"CREATE OR REPLACE MACRO {s}.pg_get_partkeydef(reloid) AS NULL::VARCHAR",
        f"CREATE OR REPLACE MACRO {s}.pg_get_triggerdef(trigoid) AS NULL::VARCHAR, (trigoid, pretty) AS "
        "NULL::VARCHAR",
        f"CREATE OR REPLACE MACRO {s}.pg_get_serial_sequence(tbl, col) AS NULL::VARCHAR",
        f"CREATE OR REPLACE MACRO {s}.pg_get_statisticsobjdef_columns(oid) AS NULL::VARCHAR",
        f"CREATE OR REPLACE MACRO {s}.pg_relation_is_publishable(rel) AS false",
        f"CREATE OR REPLACE MACRO {s}.pg_tablespace_location(spcoid) AS ''",
        # Sizes: the data lives in Iceberg files, not in relation forks; Postgres reports 0 for empty ones.
        f"CREATE OR REPLACE MACRO {s}.pg_total_relation_size(rel) AS 0::BIGINT",
        f"CREATE OR REPLACE MACRO {s}.pg_relation_size(rel) AS 0::BIGINT, (rel, fork) AS 0::BIGINT",
        f"CREATE OR REPLACE MACRO {s}.pg_table_size(rel) AS 0::BIGINT",
        f"CREATE OR REPLACE MACRO {s}.pg_indexes_size(rel) AS 0::BIGINT",
        f"CREATE OR REPLACE MACRO {s}.pg_database_size(db) AS 0::BIGINT",
        f"CREATE OR REPLACE MACRO {s}.pg_size_pretty(bytes) AS CASE "
        "WHEN abs(bytes) < 10240 THEN bytes::BIGINT::VARCHAR || ' bytes' "
        "WHEN abs(bytes) < 10485760 THEN round(bytes / 1024.0)::BIGINT::VARCHAR || ' kB' "
        "WHEN abs(bytes) < 10737418240 THEN round(bytes / 1048576.0)::BIGINT::VARCHAR || ' MB' "
        "WHEN abs(bytes) < 10995116277760 THEN round(bytes / 1073741824.0)::BIGINT::VARCHAR || ' GB' "
        "ELSE round(bytes / 1099511627776.0)::BIGINT::VARCHAR || ' TB' END",
        f"CREATE OR REPLACE MACRO {s}.quote_ident(name) AS CASE WHEN regexp_full_match(name, "
        "'[a-z_][a-z0-9_$]*') THEN name ELSE '\"' || replace(name, '\"', '\"\"') || '\"' END",
        # Postgres writes a literal holding a backslash as E'...' with the backslashes doubled.
        f"CREATE OR REPLACE MACRO {s}.quote_literal(val) AS CASE WHEN contains(val::VARCHAR, chr(92)) THEN "
        "'E''' || replace(replace(val::VARCHAR, chr(92), chr(92) || chr(92)), '''', '''''') || '''' "
        "ELSE '''' || replace(val::VARCHAR, '''', '''''') || '''' END",
        f"CREATE OR REPLACE MACRO {s}.quote_nullable(val) AS CASE WHEN val IS NULL THEN 'NULL' ELSE "
        f"{s}.quote_literal(val) END",
        f"CREATE OR REPLACE MACRO {s}.array_upper(arr, dim) AS CASE WHEN dim = 1 AND len(arr) > 0 THEN "
        "len(arr) END",
        f"CREATE OR REPLACE MACRO {s}.array_lower(arr, dim) AS CASE WHEN dim = 1 AND len(arr) > 0 THEN 1 END",
        f"CREATE OR REPLACE MACRO {s}.cardinality(arr) AS len(arr)",
        # Privileges: everything is readable, nothing is writable (matviews aside).
        *[f"CREATE OR REPLACE MACRO {s}.{fn}(a, b) AS {s}.bemidb_read_privilege(b), (a, b, c) AS "
          f"{s}.bemidb_read_privilege(c)" for fn in (
              "has_table_privilege", "has_schema_privilege", "has_database_privilege", "has_column_privilege",
              "has_function_privilege", "has_sequence_privilege", "has_any_column_privilege",
              "has_foreign_data_wrapper_privilege", "has_server_privilege", "has_tablespace_privilege",
              "has_type_privilege", "has_language_privilege")],
        f"CREATE OR REPLACE MACRO {s}.bemidb_read_privilege(priv) AS list_bool_and(list_transform("
        "string_split(upper(replace(priv::VARCHAR, ' WITH GRANT OPTION', '')), ','), "
        "lambda p: trim(p) IN ('SELECT', 'USAGE', 'CONNECT', 'EXECUTE', 'TEMPORARY', 'TEMP', 'REFERENCES')))",
        f"CREATE OR REPLACE MACRO {s}.pg_has_role(a, b) AS true, (a, b, c) AS true",
        f"CREATE OR REPLACE MACRO {s}.txid_current() AS 1::BIGINT",
        f"CREATE OR REPLACE MACRO {s}.pg_current_xact_id() AS 1::BIGINT",
        f"CREATE OR REPLACE MACRO {s}.pg_cancel_backend(pid) AS false",
        f"CREATE OR REPLACE MACRO {s}.pg_terminate_backend(pid) AS false",
        f"CREATE OR REPLACE MACRO {s}.inet_server_addr() AS NULL::VARCHAR",
        f"CREATE OR REPLACE MACRO {s}.inet_server_port() AS NULL::INTEGER",
        f"CREATE OR REPLACE MACRO {s}.inet_client_addr() AS NULL::VARCHAR",
        f"CREATE OR REPLACE MACRO {s}.pg_stat_get_numscans(reloid) AS 0::BIGINT",
        f"CREATE OR REPLACE MACRO {s}.obj_is_visible(x) AS true",
        # Per-row lookups read one-row maps (bemidb_lookup, rebuilt by refresh): a correlated subquery per call
        # costs DuckDB ~15 ms of planning, a map lookup microseconds. psql's \\d runs a dozen of these.
        f"CREATE OR REPLACE MACRO {s}.pg_table_is_visible(reloid) AS list_contains(list_prepend('pg_catalog', "
        f"{path}), (SELECT rel_nsp FROM {s}.bemidb_lookup)[TRY_CAST(reloid AS UINTEGER)])",
        f"CREATE OR REPLACE MACRO {s}.pg_type_is_visible(typoid) AS list_contains(list_prepend('pg_catalog', "
        f"{path}), (SELECT type_nsp FROM {s}.bemidb_lookup)[TRY_CAST(typoid AS UINTEGER)])",
        # list_transform([x], lambda f: ...)[1] binds the looked-up value once (macro arguments are substituted
        # textually: a plain parameter used five times would repeat the lookup five times).
        f"CREATE OR REPLACE MACRO {s}.format_type(typoid, typmod) AS list_transform([(SELECT type_fmt FROM "
        f"{s}.bemidb_lookup)[TRY_CAST(typoid AS UINTEGER)]], lambda f: CASE WHEN f IS NULL THEN NULL WHEN typmod IS NULL OR typmod < 0 "
        "OR f.kind = 'none' THEN f.plain || f.suffix ELSE f.pre || '(' || CASE f.kind WHEN 'numeric' THEN "
        "((((typmod - 4) >> 16) & 65535)::VARCHAR || ',' || ((typmod - 4) & 65535)::VARCHAR) WHEN 'len' THEN "
        "(typmod - 4)::VARCHAR ELSE typmod::VARCHAR END || ')' || f.post || f.suffix END)[1]",
        f"CREATE OR REPLACE MACRO {s}.obj_description(p_objoid) AS (SELECT descr FROM {s}.bemidb_lookup)"
        f"[p_objoid::UBIGINT * 4096], (p_objoid, catalog) AS (SELECT descr FROM {s}.bemidb_lookup)"
        "[p_objoid::UBIGINT * 4096]",
        f"CREATE OR REPLACE MACRO {s}.col_description(reloid, colnum) AS (SELECT descr FROM {s}.bemidb_lookup)"
        "[reloid::UBIGINT * 4096 + colnum::UBIGINT]",
        f"CREATE OR REPLACE MACRO {s}.pg_get_constraintdef(conoid) AS (SELECT defs FROM {s}.bemidb_lookup)[TRY_CAST(conoid AS UINTEGER)], "
        f"(conoid, pretty) AS (SELECT defs FROM {s}.bemidb_lookup)[TRY_CAST(conoid AS UINTEGER)]",
        f"CREATE OR REPLACE MACRO {s}.pg_get_indexdef(idxoid) AS (SELECT defs FROM {s}.bemidb_lookup)[TRY_CAST(idxoid AS UINTEGER)], "
        f"(idxoid, col, pretty) AS CASE WHEN col = 0 OR col IS NULL THEN (SELECT defs FROM {s}.bemidb_lookup)"
        "[TRY_CAST(idxoid AS UINTEGER)] END",
        f"CREATE OR REPLACE MACRO {s}.pg_get_viewdef(viewoid) AS (SELECT defs FROM {s}.bemidb_lookup)[TRY_CAST(viewoid AS UINTEGER)], "
        f"(viewoid, pretty) AS (SELECT defs FROM {s}.bemidb_lookup)[TRY_CAST(viewoid AS UINTEGER)]",
        f"CREATE OR REPLACE MACRO {s}.bemidb_regclass_name(reloid) AS list_transform([struct_pack(o := reloid, "
        f"n := (SELECT rel_name FROM {s}.bemidb_lookup)[TRY_CAST(reloid AS UINTEGER)], s := (SELECT rel_nsp FROM {s}.bemidb_lookup)"
        f"[TRY_CAST(reloid AS UINTEGER)])], lambda r: CASE WHEN r.o IS NULL THEN NULL WHEN r.n IS NULL THEN r.o::VARCHAR WHEN "
        f"list_contains(list_prepend('pg_catalog', {path}), r.s) THEN {s}.quote_ident(r.n) ELSE "
        f"{s}.quote_ident(r.s) || '.' || {s}.quote_ident(r.n) END)[1]",
        f"CREATE OR REPLACE MACRO {s}.bemidb_regtype_name(typoid) AS CASE WHEN typoid = 0 THEN '-' ELSE "
        f"{s}.format_type(typoid, NULL) END",
        f"CREATE OR REPLACE MACRO {s}.bemidb_regnamespace_name(nspoid) AS (SELECT nsp_name FROM "
        f"{s}.bemidb_lookup)[TRY_CAST(nspoid AS UINTEGER)]",
        # reg* casts: rewrite.py turns 'name'::regclass into bemidb_regclass('name') and oid::regclass into
        # the name, like Postgres's input and output functions.
        f"CREATE OR REPLACE MACRO {s}.bemidb_regclass(name) AS (SELECT _bc.oid FROM {s}.pg_class _bc JOIN "
        f"{s}.pg_namespace _bn ON _bn.oid = _bc.relnamespace WHERE _bc.relname = {s}.bemidb_unqualified(name) AND "
        f"(_bn.nspname = {s}.bemidb_qualifier(name) OR ({s}.bemidb_qualifier(name) IS NULL AND list_contains("
        f"list_prepend('pg_catalog', {path}), _bn.nspname))) ORDER BY list_position(list_prepend('pg_catalog', "
        f"{path}), _bn.nspname) LIMIT 1)",
        f"CREATE OR REPLACE MACRO {s}.bemidb_unqualified(name) AS CASE WHEN name IS NULL THEN NULL "
        "WHEN regexp_matches(name::VARCHAR, '^\\s*\\d+\\s*$') THEN NULL ELSE "
        "regexp_replace(string_split(name::VARCHAR, '.')[-1], '^\"|\"$', '', 'g') END",
        f"CREATE OR REPLACE MACRO {s}.bemidb_qualifier(name) AS CASE WHEN len(string_split(name::VARCHAR, '.')) "
        "> 1 THEN regexp_replace(string_split(name::VARCHAR, '.')[-2], '^\"|\"$', '', 'g') END",
        f"CREATE OR REPLACE MACRO {s}.bemidb_regtype(name) AS (SELECT _bt.oid FROM {s}.pg_type _bt "
        f"WHERE _bt.typname = {s}.bemidb_unqualified(lower(name)) OR _bt.oid = (SELECT _bf.oid FROM "
        f"{s}.bemidb_type_format _bf WHERE _bf.plain = lower(name) AND _bf.suffix = '' LIMIT 1) ORDER BY _bt.oid LIMIT 1)",
        f"CREATE OR REPLACE MACRO {s}.bemidb_regnamespace(name) AS (SELECT _bn.oid FROM {s}.pg_namespace _bn "
        "WHERE _bn.nspname = name)",
        f"CREATE OR REPLACE MACRO {s}.bemidb_regrole_name(roleoid) AS {s}.pg_get_userbyid(roleoid)",
        f"CREATE OR REPLACE MACRO {s}.bemidb_regproc(name) AS {s}.bemidb_unqualified(name)",
        f"CREATE OR REPLACE MACRO {s}.to_regtype(name) AS {s}.bemidb_regtype(name)",
        f"CREATE OR REPLACE MACRO {s}.to_regclass(name) AS {s}.bemidb_regclass(name)",
        f"CREATE OR REPLACE MACRO {s}.to_regnamespace(name) AS {s}.bemidb_regnamespace(name)",
        f"CREATE OR REPLACE MACRO {s}.to_regrole(name) AS CASE WHEN name = {s}.bemidb_user() THEN "
        f"{owner_oid} END",
        f"CREATE OR REPLACE MACRO {s}.to_regproc(name) AS NULL::BIGINT",
        f"CREATE OR REPLACE MACRO {s}.to_regprocedure(name) AS NULL::BIGINT",
        # jsonb on JSON stored as text: the key-exists operator and jsonb_typeof's lower-case names.
        f"CREATE OR REPLACE MACRO {s}.bemidb_json_has_key(j, k) AS CASE json_type(j::JSON) WHEN 'OBJECT' THEN "
        "list_contains(json_keys(j::JSON), k) WHEN 'ARRAY' THEN list_contains(json_extract_string(j::JSON, "
        "'$[*]'), k) ELSE json_extract_string(j::JSON, '$') = k END",
        # x::text as Postgres prints x: floats' NaN/Infinity, intervals' mons, BC dates, number arrays {1,2}
        # (typeof() is a constant per column type, so only one branch runs)
        f"CREATE OR REPLACE MACRO {s}.bemidb_text(x) AS CASE "
        "WHEN typeof(x) IN ('FLOAT', 'DOUBLE') THEN CASE CAST(x AS VARCHAR) WHEN 'nan' THEN 'NaN' "
        "WHEN 'inf' THEN 'Infinity' WHEN '-inf' THEN '-Infinity' ELSE CAST(x AS VARCHAR) END "
        "WHEN typeof(x) = 'INTERVAL' THEN replace(replace(CAST(x AS VARCHAR), ' months', ' mons'), ' month', ' mon') "
        "WHEN typeof(x) IN ('DATE', 'TIMESTAMP', 'TIMESTAMP WITH TIME ZONE') THEN "
        "replace(CAST(x AS VARCHAR), ' (BC)', ' BC') "
        "WHEN regexp_full_match(typeof(x), '(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|DOUBLE|FLOAT|"
        "DECIMAL[(][0-9]+,[0-9]+[)])[[][]]') THEN '{' || replace(CAST(x AS VARCHAR)[2:-2], ', ', ',') || '}' "
        # bytea: \x and the hex digits
        f"WHEN typeof(x) = 'BLOB' THEN chr(92) || 'x' || lower(hex(CAST(x AS VARCHAR)::BLOB)) "
        # text and uuid arrays {x,"y z"}: elements quoted as array_out quotes them. Through DuckDB's list text
        # (it round-trips) so that the branch binds for every x: CASE binds all branches. list_aggr, not
        # to_json or array_to_string: those make DuckDB lose the types of the statement's other parameters.
        "WHEN typeof(x) IN ('VARCHAR[]', 'UUID[]') THEN CASE WHEN x IS NOT NULL THEN '{' || coalesce(list_aggr("
        "list_transform(CAST(CAST(x AS VARCHAR) AS VARCHAR[]), lambda e: CASE WHEN e IS NULL "
        "THEN 'NULL' WHEN e = '' OR upper(e) = 'NULL' OR regexp_matches(e, '[{},\"\\\\\\s]') THEN '\"' || "
        "replace(replace(e, '\\', '\\\\'), '\"', '\\\"') || '\"' ELSE e END), 'string_agg', ','), '') || '}' END "
        "ELSE CAST(x AS VARCHAR) END",
        f"CREATE OR REPLACE MACRO {s}.bemidb_json_typeof(j) AS CASE json_type(j::JSON) WHEN 'OBJECT' THEN "
        "'object' WHEN 'ARRAY' THEN 'array' WHEN 'VARCHAR' THEN 'string' WHEN 'BOOLEAN' THEN 'boolean' "
        "WHEN 'NULL' THEN 'null' WHEN NULL THEN NULL ELSE CASE WHEN j IS NOT NULL THEN 'number' END END",
        # text -> bytea as Postgres reads it: hex after a backslash and x, else the bytes (a doubled backslash is one)
        f"CREATE OR REPLACE MACRO {s}.bemidb_bytea(t) AS CASE WHEN typeof(t) = 'BLOB' THEN t::BLOB WHEN "
        "starts_with(t::VARCHAR, chr(92) || 'x') THEN unhex((t::VARCHAR)[3:]) ELSE encode(replace(t::VARCHAR, "
        "chr(92) || chr(92), chr(92))) END",
        # timestamptz::time is the local time of day (through timestamp: DuckDB has no direct cast)
        f"CREATE OR REPLACE MACRO {s}.bemidb_time(x) AS CASE WHEN typeof(x) = 'TIMESTAMP WITH TIME ZONE' THEN "
        "CAST(CAST(x AS TIMESTAMP) AS TIME) ELSE CAST(x AS TIME) END",
        # money is stored as its text ('-$1,000.50'): its amount, to compare and order by
        f"CREATE OR REPLACE MACRO {s}.bemidb_money_amount(m) AS CAST(replace(replace(m::VARCHAR, '$', ''), ',', '') "
        "AS DECIMAL(38, 2))",
        *numeric_macros(s),  # numeric results (sql/typed_rewrites.py)
    ]


def type_format_rows(extra: Iterable[dict] = ()) -> list[tuple]:
    rows = []
    for t in pg_types.ALL_TYPES:
        elem = pg_types.element_of(t)
        plain, pre, post, kind = _format_parts(elem)
        rows.append((t.oid, plain, pre, post, kind, "[]" if t.is_array else ""))
    for row in extra:
        is_array = row["typname"].startswith("_") and row.get("typelem")
        name = row["typname"][1:] if is_array else row["typname"]
        rows.append((row["oid"], name, name, "", "none", "[]" if is_array else ""))
    return rows
