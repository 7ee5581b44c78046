"""RELATIONS: pg_catalog.X / information_schema.X / bare catalog names -> our emulation (catalog/pg_catalog.py);
scalar functions in FROM; subqueries over always-empty catalog relations folded to NULL / false.
"""

from __future__ import annotations

from sqlglot import exp

from bemidb.server.catalog.oids import (
    CATALOG_SCHEMA,
    INFO_SCHEMA,
    INFORMATION_SCHEMA_RELATIONS,
    PG_CATALOG_RELATIONS,
)
from bemidb.server.catalog.pg_catalog import ALWAYS_EMPTY
from bemidb.server.sql.remap_functions import TABLE_MACROS


def cte_names(tree: exp.Expression) -> set[str]:
    return {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}


def relation(node: exp.Table, ctes: set[str]) -> exp.Expression:
    # FROM pg_catalog.unnest(...) / generate_series(...): DuckDB's own; pg_catalog.pg_get_keywords(): our macro
    if isinstance(node.this, exp.Func) or (isinstance(node.this, exp.Dot) and isinstance(node.this.expression,
                                                                                          exp.Func)):
        if node.args.get("db") is not None and node.args["db"].name.lower() in ("pg_catalog", "information_schema"):
            node.set("db", None)
        return _scalar_in_from(node)
    name = node.name.lower() if not node.this.args.get("quoted") else node.name
    db = node.args.get("db")
    schema = db.name.lower() if db is not None else None
    if node.args.get("catalog") is not None:
        node.set("catalog", None)  # db.schema.table: there is only one database
    if schema == "pg_catalog" and name in PG_CATALOG_RELATIONS:
        node.set("db", exp.to_identifier(CATALOG_SCHEMA))
    elif schema == "information_schema" and name in INFORMATION_SCHEMA_RELATIONS:
        node.set("db", exp.to_identifier(INFO_SCHEMA))
    elif schema is None and name in PG_CATALOG_RELATIONS and name not in ctes:
        node.set("db", exp.to_identifier(CATALOG_SCHEMA))  # pg_catalog is implicitly first on search_path
    return node


# Postgres scalar functions clients put in FROM (Grafana: string_to_array(current_setting(...)) s); anything else
# there is left to DuckDB as a table function (and its sandbox).
_SCALARS_IN_FROM = {"string_split", "string_to_array", "regexp_split_to_array", "array_append", "array_cat",
                    "array_prepend", "current_setting", "current_schemas", "current_schema", "version"}


def _scalar_in_from(node: exp.Table) -> exp.Expression:
    """FROM string_to_array(...) s: Postgres makes a one-row relation of a scalar function's value, whose
    column is named after the alias; DuckDB only takes table functions there, so wrap it in a subquery."""
    ours = isinstance(node.this, exp.Dot) and node.this.this.name == CATALOG_SCHEMA  # our (scalar) macros
    func = node.this.expression if isinstance(node.this, exp.Dot) else node.this
    name = (func.name if isinstance(func, exp.Anonymous) else func.sql("duckdb").split("(")[0]).lower()
    if (not ours and name not in _SCALARS_IN_FROM) or (ours and name in TABLE_MACROS):
        return node
    alias = node.alias or name
    subquery = exp.select(exp.alias_(node.this, alias, quoted=True)).subquery(alias=exp.to_identifier(alias))
    return subquery


def _reads_only_empty(select: exp.Expression) -> bool:
    """A SELECT that can only return no rows: FROM an always-empty catalog relation (psql's pg_attrdef,
    pg_policy, pg_inherits ...), no aggregate or GROUP BY (count(*) of nothing is one row), no outer join
    that could bring rows back."""
    if not isinstance(select, exp.Select) or select.args.get("group"):
        return False
    if select.find(exp.Placeholder, exp.Parameter):
        return False  # dropping it would renumber the statement's $n parameters
    source = select.args.get("from_") or select.args.get("from")
    table = source.this if source is not None else None
    if not (isinstance(table, exp.Table) and table.db == CATALOG_SCHEMA and table.name in ALWAYS_EMPTY):
        return False
    if any(join.side in ("RIGHT", "FULL") for join in select.args.get("joins") or []):
        return False
    return not any(isinstance(e, exp.AggFunc) for item in select.expressions for e in item.walk())


def empty_subquery(node: exp.Expression) -> exp.Expression:
    """Scalar subqueries over relations that are always empty are NULL, EXISTS over them false: DuckDB spends
    milliseconds planning each correlated subquery, psql's \\d sends several."""
    if isinstance(node, exp.Exists) and _reads_only_empty(node.this):
        return exp.false()
    if isinstance(node, exp.Subquery) and not isinstance(node.parent, exp.From | exp.Join) and \
            not node.alias and _reads_only_empty(node.this):
        return exp.Null()
    return node
