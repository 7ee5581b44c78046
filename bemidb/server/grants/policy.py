"""One user's grants over the tables that exist now -> the sql/grants.py Policy that enforces them.

Row filters are Postgres SQL (as in a row-level security policy), translated to DuckDB once. The catalog
conditions keep the rows of system objects (OIDs below 2^24, catalog/oids.py) and of the objects the user
may read, looked up by OID in the catalog itself so they are exact.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from bemidb.quoting import quote_literal
from bemidb.server.catalog.oids import CATALOG_SCHEMA, INFO_SCHEMA
from bemidb.server.grants.users import Grant, User
from bemidb.server.sql import rewrite
from bemidb.server.sql.grants import Policy, TableAccess
from bemidb.storage.catalog import TableInfo

FIRST_USER_OID = 1 << 24  # catalog/oids.py hashes user objects' OIDs above this; system OIDs are below
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")
_FILTER_TARGET = "bemidb_row_filter_target"


def filter_sql(rows: str) -> str:
    """A grant's row filter (Postgres SQL over the table's own columns) as a DuckDB condition; ValueError
    when it is not one condition on plain columns."""
    try:
        plan = rewrite.translate(f"SELECT * FROM {_FILTER_TARGET} WHERE {rows}")
        tree = sqlglot.parse_one(plan.sql, read="duckdb")
    except (ParseError, AttributeError, ValueError) as exc:
        raise ValueError(f"row filter {rows!r} is not a SQL condition: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # noqa: BLE001 - PgError (a refused form) and the like
        raise ValueError(f"row filter {rows!r} is not a SQL condition: {exc}") from None
    where = tree.args.get("where") if isinstance(tree, exp.Select) else None
    tables = [t.name for t in tree.find_all(exp.Table)]
    if where is None or tables != [_FILTER_TARGET] or len(list(tree.find_all(exp.Select))) != 1 \
            or tree.args.get("limit") is not None or tree.args.get("group") is not None:
        raise ValueError(f"row filter {rows!r} must be one condition on the table's own columns (no subqueries)")
    return where.this.sql(dialect="duckdb")


def table_access(grant: Grant, table: TableInfo) -> TableAccess:
    columns = tuple(grant.allowed_columns([c.name for c in table.columns]))
    return TableAccess(table.schema, table.name, columns, filter_sql(grant.rows) if grant.rows else None)


def build(user: User, tables: list[TableInfo], cursor) -> Policy:
    """The Policy of `user` over `tables`; `cursor` reads the catalog's OIDs of those tables."""
    access = {}
    for table in tables:
        grant = user.grant_for(table.schema, table.name)
        if grant is not None:
            access[(table.schema, table.name)] = table_access(grant, table)
    catalog, relations = catalog_conditions(access, cursor)
    return Policy(access, catalog, relations=relations)


def narrowed(policy: Policy, permissions: dict[str, list[str]]) -> Policy:
    """BemiDB's permissions comment ({"schema.table": [columns]}) narrowing a trusted proxy's policy: only the
    tables it names, only the columns it lists, each within what the proxy user may read itself."""
    access = {}
    for key, table in policy.tables.items():
        columns = permissions.get(f"{key[0]}.{key[1]}")
        if columns is None and key[0] == "public":
            columns = permissions.get(key[1])
        if columns is not None:
            access[key] = TableAccess(table.schema, table.name, tuple(c for c in table.columns if c in columns),
                                      table.where)
    # The catalog conditions list OIDs the wider policy allows; rebuilding them needs a cursor, so a narrowed
    # policy shows no synced table in the catalog (a proxy's comment is about data, not metadata).
    return Policy(access, nothing().catalog)


def _system_only(key: tuple[str, str]) -> str:
    return _CONDITIONS[key]({"rels": "NULL", "attrs": "NULL", "names": "NULL", "columns": "NULL"})


def nothing() -> Policy:
    """The policy of a user no longer in the file: no synced table, and only system rows in the catalog."""
    return Policy({}, {key: _system_only(key) for key in _CONDITIONS})


def _in_list(values) -> str:
    values = list(values)
    return ", ".join(values) if values else "NULL"


def catalog_conditions(access: dict[tuple[str, str], TableAccess], cursor) -> tuple[dict[tuple[str, str], str], str]:
    """The condition per catalog relation, and the SQL list of the OIDs of the relations the user may read."""
    s = CATALOG_SCHEMA
    classes = cursor.execute(f"SELECT c.oid, n.nspname, c.relname FROM {s}.pg_class c JOIN {s}.pg_namespace n "
                             f"ON n.oid = c.relnamespace WHERE c.oid >= {FIRST_USER_OID}").fetchall()
    rel_oids = {oid: (schema, name) for oid, schema, name in classes if (schema, name) in access}
    indexes = cursor.execute(f"SELECT indexrelid, indrelid FROM {s}.pg_index").fetchall()
    index_oids = {index for index, rel in indexes if rel in rel_oids}
    attrs = cursor.execute(f"SELECT attrelid, attnum, attname FROM {s}.pg_attribute "
                           f"WHERE attrelid >= {FIRST_USER_OID}").fetchall()
    allowed_attrs = [relid * 4096 + num for relid, num, name in attrs
                     if (relid in rel_oids and name in access[rel_oids[relid]].columns) or relid in index_oids]
    parts = {
        "rels": _in_list(str(o) for o in sorted(set(rel_oids) | index_oids)),
        "attrs": _in_list(str(a) for a in sorted(allowed_attrs)),
        "names": _in_list(f"[{quote_literal(a.schema)}, {quote_literal(a.name)}]" for a in access.values()),
        "columns": _in_list(f"[{quote_literal(a.schema)}, {quote_literal(a.name)}, {quote_literal(c)}]"
                            for a in access.values() for c in a.columns),
    }
    return {key: make(parts) for key, make in _CONDITIONS.items()}, parts["rels"]


_SYSTEM = "IN ('pg_catalog', 'information_schema')"
_CONDITIONS = {
    (CATALOG_SCHEMA, "pg_class"): lambda p: f"oid < {FIRST_USER_OID} OR oid IN ({p['rels']})",
    (CATALOG_SCHEMA, "pg_attribute"): lambda p: f"attrelid < {FIRST_USER_OID} OR "
                                                f"attrelid::UBIGINT * 4096 + attnum IN ({p['attrs']})",
    (CATALOG_SCHEMA, "pg_attrdef"): lambda p: f"adrelid::UBIGINT * 4096 + adnum IN ({p['attrs']})",
    (CATALOG_SCHEMA, "pg_type"): lambda p: f"typrelid < {FIRST_USER_OID} OR typrelid IN ({p['rels']})",
    (CATALOG_SCHEMA, "pg_description"): lambda p: f"objoid < {FIRST_USER_OID} OR (objoid IN ({p['rels']}) AND "
                                                  f"(objsubid = 0 OR objoid::UBIGINT * 4096 + objsubid IN "
                                                  f"({p['attrs']})))",
    (CATALOG_SCHEMA, "pg_index"): lambda p: f"indrelid < {FIRST_USER_OID} OR indrelid IN ({p['rels']})",
    (CATALOG_SCHEMA, "pg_constraint"): lambda p: f"conrelid < {FIRST_USER_OID} OR conrelid IN ({p['rels']})",
    (CATALOG_SCHEMA, "pg_tables"): lambda p: f"schemaname {_SYSTEM} OR [schemaname, tablename] IN ({p['names']})",
    (CATALOG_SCHEMA, "pg_matviews"): lambda p: f"[schemaname, matviewname] IN ({p['names']})",
    (CATALOG_SCHEMA, "pg_indexes"): lambda p: f"schemaname {_SYSTEM} OR [schemaname, tablename] IN ({p['names']})",
    (CATALOG_SCHEMA, "pg_stat_user_tables"): lambda p: f"relid IN ({p['rels']})",
    (CATALOG_SCHEMA, "pg_stat_all_tables"): lambda p: f"relid < {FIRST_USER_OID} OR relid IN ({p['rels']})",
    (CATALOG_SCHEMA, "pg_statio_user_tables"): lambda p: f"relid IN ({p['rels']})",
    (INFO_SCHEMA, "tables"): lambda p: f"table_schema {_SYSTEM} OR [table_schema, table_name] IN ({p['names']})",
    (INFO_SCHEMA, "columns"): lambda p: f"table_schema {_SYSTEM} OR "
                                        f"[table_schema, table_name, column_name] IN ({p['columns']})",
    (INFO_SCHEMA, "table_constraints"): lambda p: f"table_schema {_SYSTEM} OR "
                                                  f"[table_schema, table_name] IN ({p['names']})",
    (INFO_SCHEMA, "key_column_usage"): lambda p: f"table_schema {_SYSTEM} OR "
                                                 f"[table_schema, table_name, column_name] IN ({p['columns']})",
}
