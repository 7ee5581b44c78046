"""Calls answered by the macros of catalog/functions_extra.py: format() (sqlglot's exp.Format, which DuckDB's
own fmt-style format would misread) and the functions DuckDB lacks (parse_ident)."""

from __future__ import annotations

from sqlglot import exp

from bemidb.server.catalog.functions_extra import EXTRA_MACROS, FORMAT_ARGS
from bemidb.server.sql import remap_strings
from bemidb.server.sql.nodes import call_macro


def extra_function(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Format):
        exact = remap_strings.format_call(node)  # a literal template: positions and widths as Postgres
        if exact is not None:
            return exact
        if len(node.expressions) <= FORMAT_ARGS:  # a template only known at run time: the macro
            return call_macro("pg_format", node.this, *node.expressions)
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        if name == "format" and node.expressions and len(node.expressions) <= FORMAT_ARGS + 1:
            return call_macro("pg_format", *node.expressions)
        if name in EXTRA_MACROS:
            return call_macro(name, *node.expressions)
    return node


def _macro_arg(node: exp.Expression, name: str) -> exp.Expression | None:
    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Anonymous) and \
            node.expression.name.lower() == name and len(node.expression.expressions) == 1:
        return node.expression.expressions[0]
    return None


# regproc columns: Postgres compares them with pg_proc.oid; here they hold the function's name
_REGPROC_COLUMNS = {"typinput", "typoutput", "typreceive", "typsend", "typmodin", "typmodout", "typanalyze",
                    "typsubscript"}


def reg_comparison(node: exp.Expression) -> exp.Expression:
    """`prorettype::regtype <> 'trigger'::regtype` (pgcli): a regtype is an OID to compare, a name only to
    print. The cast of the column became the type's name; compared with an OID, the column is compared as is.
    `pg_proc.oid = t.typreceive` (Npgsql's type loading): the regproc column holds a name, so the function is
    matched by its name (the I/O functions' names are unique)."""
    if not isinstance(node, exp.EQ | exp.NEQ):
        return node
    for mine, other in (("this", "expression"), ("expression", "this")):
        oid, regproc = node.args.get(mine), node.args.get(other)
        if isinstance(oid, exp.Column) and oid.name.lower() == "oid" and isinstance(regproc, exp.Column) and \
                regproc.name.lower() in _REGPROC_COLUMNS:
            node.set(mine, exp.column("proname", table=oid.args.get("table")))
            return node
    for mine, other in (("this", "expression"), ("expression", "this")):
        column = _macro_arg(node.args.get(mine), "bemidb_regtype_name")
        if column is not None and _macro_arg(node.args.get(other), "bemidb_regtype") is not None:
            node.set(mine, column)
    return node
