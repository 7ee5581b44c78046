"""Grants enforced in the SQL a restricted user runs: every relation it reads becomes a filtered projection.

`FROM public.orders o` -> `FROM (SELECT id, amount FROM public.orders WHERE status = 'paid') AS o`, wherever
the relation appears (joins, CTEs, subqueries, COPY's query, prepared statements), so no SQL form reaches a
row or column the grant leaves out. A table the user may not read is reported exactly like one that does not
exist (42P01), and a column left out like a missing column (DuckDB's binder: 42703), so errors are no
existence oracle. The catalog relations that describe synced tables (pg_class, pg_attribute,
information_schema.columns ...) are filtered the same way by the Policy's conditions. Table functions other
than series and unnest, DuckDB's own catalog functions, and file readers are refused; statements sqlglot
cannot parse are refused instead of passed through.

A Policy is built per user and table set (grants/policy.py); rewrites are cached per (statement, policy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from bemidb.quoting import quote_ident
from bemidb.server.catalog.oids import (
    CATALOG_SCHEMA,
    INFO_SCHEMA,
    INFORMATION_SCHEMA_RELATIONS,
    PG_CATALOG_RELATIONS,
)
from bemidb.server.errors import FEATURE_NOT_SUPPORTED, INSUFFICIENT_PRIVILEGE, PgError
from bemidb.server.sql import rewrite
from bemidb.server.sql.plans import CopyOut, DeclareCursor, Matview, Plan, Query

UNDEFINED_TABLE = "42P01"

# Table functions a restricted user may call in FROM (they read no table); anything else there is refused.
_SAFE_TABLE_FUNCTIONS = {"generate_series", "range", "unnest", "generate_subscripts"}
_SAFE_TABLE_CLASSES = (exp.GenerateSeries, exp.Unnest, exp.ExplodingGenerateSeries)
# Scalar functions that describe DuckDB's own catalog or read files, refused anywhere in the statement.
_REFUSED_FUNCTION = re.compile(r"(duckdb_|read_|parquet_|iceberg_|pragma_|sniff_|glob$|query$|query_table$|"
                               r"which_secret|json_execute_serialized_sql|sql_auto_complete|summary$)", re.I)
_EXPLAIN = re.compile(r"^\s*((?:analy[sz]e\s+|verbose\s+|\([^)]*\)\s*)*)(.*)$", re.I | re.S)


@dataclass(frozen=True)
class TableAccess:
    """What one user reads of one synced table: these columns, of the rows `where` (DuckDB SQL) keeps."""

    schema: str
    name: str
    columns: tuple[str, ...]
    where: str | None = None

    @cached_property
    def projection(self) -> exp.Select:
        columns = ", ".join(quote_ident(c) for c in self.columns) or "NULL AS \"?column?\" WHERE false"
        sql = f"SELECT {columns} FROM {quote_ident(self.schema)}.{quote_ident(self.name)}"
        if self.where and self.columns:
            sql += f" WHERE ({self.where})"
        return sqlglot.parse_one(sql, read="duckdb")


@dataclass(eq=False)  # hashed by identity: one object per user and table set, a cache key
class Policy:
    tables: dict[tuple[str, str], TableAccess]  # the synced tables the user may read
    catalog: dict[tuple[str, str], str] = field(default_factory=dict)  # (our schema, relation) -> condition
    relations: str = "NULL"  # SQL list of the OIDs of the synced relations (and indexes) the user may read

    def resolve(self, schema: str | None, name: str, search_path: tuple[str, ...]) -> TableAccess | None:
        for candidate in ([schema] if schema else search_path):
            access = self.tables.get((candidate, name)) or self.tables.get((candidate.lower(), name.lower()))
            if access is not None:
                return access
        return None


def restrict(plan: Plan, policy: Policy, search_path: tuple[str, ...], statement: str = "") -> Plan:
    """The plan of `statement` with every relation it reads limited to what `policy` grants."""
    match plan:
        case Query():
            sql = _restrict_statement(statement, plan.sql, policy, search_path)
            return Query(sql, plan.tag, plan.param_hints, origins=plan.origins)
        case CopyOut(query=query):
            return CopyOut(Query(restrict_sql(query.sql, policy, search_path), query.tag, query.param_hints),
                           plan.options, plan.tag)
        case DeclareCursor(query=query):  # a cursor's query reads as much as the same SELECT may
            return DeclareCursor(plan.name, Query(restrict_sql(query.sql, policy, search_path), query.tag,
                                                  query.param_hints, origins=query.origins),
                                 plan.hold, plan.binary, plan.scroll)
        case Matview(name=name):  # a REFRESH would run the stored query unrestricted: BEMIDB_USER's job only
            raise PgError(INSUFFICIENT_PRIVILEGE, f"permission denied for materialized view {name}")
    return plan


@lru_cache(maxsize=4096)
def _restrict_statement(statement: str, sql: str, policy: Policy, search_path: tuple[str, ...]) -> str:
    """From the very tree translate generated `sql` from, when that is how `sql` was made: DuckDB SQL that
    sqlglot wrote does not always parse back the same (JSON_OBJECT(k, a = b) ...)."""
    try:
        # sql == statement: passed through as written (unparsed, huge), there is no translated tree
        tree = rewrite.translated_tree(statement) if statement and sql != statement else None
    except (ParseError, PgError):
        tree = None
    if tree is None or isinstance(tree, exp.Command) or tree.sql(dialect="duckdb") != sql:
        return restrict_sql(sql, policy, search_path)
    return _restrict_tree(tree, policy, search_path)


@lru_cache(maxsize=4096)
def restrict_sql(sql: str, policy: Policy, search_path: tuple[str, ...]) -> str:
    try:
        trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
    except ParseError:
        trees = []
    if len(trees) != 1:
        raise PgError(FEATURE_NOT_SUPPORTED, "this statement form is not available to users with grants")
    tree = trees[0]
    if isinstance(tree, exp.Command):
        rest = tree.expression
        rest = rest.this if isinstance(rest, exp.Literal) else str(rest or "")
        m = _EXPLAIN.match(rest) if str(tree.this).upper() == "EXPLAIN" else None
        if m is None:
            raise PgError(FEATURE_NOT_SUPPORTED, "this statement form is not available to users with grants")
        return f"EXPLAIN {m.group(1)}{restrict_sql(m.group(2), policy, search_path)}"
    return _restrict_tree(tree, policy, search_path)


def _restrict_tree(tree: exp.Expression, policy: Policy, search_path: tuple[str, ...]) -> str:
    _refuse_functions(tree)
    _mask_relation_lookups(tree, policy)
    for table in list(tree.find_all(exp.Table)):
        _restrict_table(table, policy, search_path)
    for column in tree.find_all(exp.Column):
        if column.args.get("db") is not None:  # schema.table.column: the table is a subquery alias now
            column.set("db", None)
            column.set("catalog", None)
    return tree.sql(dialect="duckdb")


def _refuse_functions(tree: exp.Expression) -> None:
    for func in tree.find_all(exp.Func):
        name = func.name if isinstance(func, exp.Anonymous) else func.sql_name()
        if _REFUSED_FUNCTION.match(name or ""):
            raise PgError(INSUFFICIENT_PRIVILEGE, f"permission denied for function {name.lower()}")


# Our catalog macros that map a relation's name to its OID or an OID to its name or definition: they read the
# unfiltered catalog, so their answer about a relation the user may not read is masked as if it did not exist.
_NAME_TO_OID = {"bemidb_regclass", "to_regclass"}
_OID_IN = {"bemidb_regclass_name": "name", "pg_get_viewdef": None, "pg_get_indexdef": None,
           "obj_description": None, "col_description": None, "pg_relation_size": None,
           "pg_total_relation_size": None, "pg_table_size": None, "pg_table_is_visible": None}


def _mask_relation_lookups(tree: exp.Expression, policy: Policy) -> None:
    for func in list(tree.find_all(exp.Anonymous)):
        name = func.name.lower()
        if name not in _NAME_TO_OID and name not in _OID_IN:
            continue
        node = func.parent if isinstance(func.parent, exp.Dot) and func.parent.expression is func else func
        visible = f"(r < {1 << 24} OR list_contains([{policy.relations}], r))"
        if name in _NAME_TO_OID:
            masked = sqlglot.parse_one(f"list_filter([x], lambda r: {visible})[1]", read="duckdb")
            masked.find(exp.Array).set("expressions", [node.copy()])
        else:
            oid = func.expressions[0] if func.expressions else None
            if oid is None:
                continue
            other = "CAST(r AS VARCHAR)" if _OID_IN[name] == "name" else "NULL"  # Postgres prints an unknown OID
            masked = _case_on_oid(node.copy(), oid, visible, other)
        node.replace(masked)


def _case_on_oid(call: exp.Expression, oid: exp.Expression, visible: str, otherwise: str) -> exp.Expression:
    """CASE WHEN <oid visible> THEN call ELSE otherwise END, the oid expression substituted for r."""
    case = sqlglot.parse_one(f"CASE WHEN {visible} THEN NULL ELSE {otherwise} END", read="duckdb")
    for column in list(case.find_all(exp.Column)):
        if column.name == "r" and not column.table:
            column.replace(exp.Cast(this=oid.copy(), to=exp.DataType.build("BIGINT")))
    case.args["ifs"][0].set("true", call)
    return case


def _restrict_table(table: exp.Table, policy: Policy, search_path: tuple[str, ...]) -> None:
    if not isinstance(table.this, exp.Identifier):  # a table function
        func = table.this.expression if isinstance(table.this, exp.Dot) else table.this
        name = (func.name if isinstance(func, exp.Anonymous) else func.sql_name()).lower()
        ours = table.db == CATALOG_SCHEMA or (isinstance(table.this, exp.Dot) and table.this.this.name == CATALOG_SCHEMA)
        if ours or isinstance(func, _SAFE_TABLE_CLASSES) or name in _SAFE_TABLE_FUNCTIONS:
            return
        raise PgError(INSUFFICIENT_PRIVILEGE, f"permission denied for function {name}")
    schema, name = table.db or None, table.name
    written = f"{schema}.{name}" if schema else name
    if table.args.get("catalog") is not None:
        raise PgError(UNDEFINED_TABLE, f'relation "{written}" does not exist')
    if schema is None and _names_a_cte(table):
        return
    if schema in (CATALOG_SCHEMA, INFO_SCHEMA):
        known = PG_CATALOG_RELATIONS if schema == CATALOG_SCHEMA else INFORMATION_SCHEMA_RELATIONS
        if name not in known:  # our helper tables (bemidb_defs, bemidb_lookup ...) are not for clients
            raise PgError(UNDEFINED_TABLE, f'relation "{written}" does not exist')
        condition = policy.catalog.get((schema, name))
        if condition:
            select = sqlglot.parse_one(f"SELECT * FROM {schema}.{quote_ident(name)} WHERE {condition}",
                                       read="duckdb")
            _replace(table, select, name)
        return
    access = policy.resolve(schema, name, search_path)
    if access is None:
        raise PgError(UNDEFINED_TABLE, f'relation "{written}" does not exist')
    _replace(table, access.projection.copy(), name)


def _replace(table: exp.Table, select: exp.Select, name: str) -> None:
    alias = table.args.get("alias")
    subquery = exp.Subquery(this=select, alias=alias.copy() if alias is not None else
                            exp.TableAlias(this=exp.to_identifier(name, quoted=True)))
    table.replace(subquery)


def _names_a_cte(table: exp.Table) -> bool:
    """Whether an unqualified name refers to a CTE in scope here. A CTE is visible in its WITH's query and in
    the CTEs after it (in itself too when RECURSIVE), never before: `WITH t AS (SELECT * FROM t)` reads the
    table t, and must be restricted."""
    name = table.name.lower()
    node = table
    while node.parent is not None:
        parent = node.parent
        if isinstance(parent, exp.With):
            ctes = parent.expressions
            index = next(i for i, c in enumerate(ctes) if c is node)
            visible = ctes[:index + 1] if parent.args.get("recursive") else ctes[:index]
            if any(c.alias_or_name.lower() == name for c in visible):
                return True
            node = parent.parent  # the query owning this WITH: its CTEs are checked already
            if node is None:
                return False
            continue
        with_ = parent.args.get("with_") or parent.args.get("with")
        if with_ is not None and with_ is not node and \
                any(c.alias_or_name.lower() == name for c in with_.expressions):
            return True
        node = parent
    return False
