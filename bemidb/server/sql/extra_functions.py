"""Calls answered by the macros of catalog/functions_extra.py: format() (sqlglot's exp.Format, which DuckDB's
own fmt-style format would misread) and the functions DuckDB lacks (parse_ident)."""

from __future__ import annotations

from sqlglot import exp

from bemidb.server.catalog.functions_extra import EXTRA_MACROS, FORMAT_ARGS
from bemidb.server.sql.nodes import call_macro


def extra_function(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Format) and len(node.expressions) <= FORMAT_ARGS:
        return call_macro("pg_format", node.this, *node.expressions)
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        if name == "format" and node.expressions and len(node.expressions) <= FORMAT_ARGS + 1:
            return call_macro("pg_format", *node.expressions)
        if name in EXTRA_MACROS:
            return call_macro(name, *node.expressions)
    return node
