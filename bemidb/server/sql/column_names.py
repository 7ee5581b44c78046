"""Result column names: Postgres names an unaliased expression after its function, cast type or column
("count", "current_schema", "int4", "?column?"); DuckDB after its text ("count_star()"). Clients read
columns by name, so the Postgres names are given as aliases before the tree is rewritten.
"""

from __future__ import annotations

import re

from sqlglot import exp

from bemidb.server.catalog import pg_types
from bemidb.server.sql.nodes import type_name

_OPAQUE = (exp.Literal, exp.Null, exp.Binary, exp.Unary, exp.Not, exp.Bracket, exp.Any, exp.All, exp.Between,
           exp.In, exp.Is, exp.Like, exp.ILike, exp.SimilarTo, exp.Operator, exp.Interval)


def _colname(node: exp.Expression) -> str | None:
    """What Postgres calls an unaliased select item, or None to leave DuckDB's name (plain columns, *)."""
    if isinstance(node, exp.Column | exp.Star | exp.Subquery):
        return None
    if isinstance(node, exp.Paren):
        return _colname(node.this)
    if isinstance(node, exp.Boolean):
        return "bool"
    if isinstance(node, exp.Cast):
        if isinstance(node.this, exp.Column):
            return node.this.name
        inner = _colname(node.this)
        if inner and inner != "?column?":
            return inner
        target = type_name(node.args["to"])
        parsed = pg_types.parse_type_name(target)
        return pg_types.element_of(parsed[0]).name if parsed else target.split(".")[-1].rstrip("[]")
    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
        return _colname(node.expression)
    if isinstance(node, exp.Case):
        return "case"
    if isinstance(node, exp.Array):
        return "array"
    if isinstance(node, exp.Exists):
        return "exists"
    if isinstance(node, exp.Extract):
        return "extract"
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    if isinstance(node, exp.Func):
        text = node.sql("postgres")
        name = text.split("(", 1)[0].strip().lower()
        return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else "?column?"
    if isinstance(node, exp.Window):  # row_number() OVER (...) is "row_number"
        return _colname(node.this)
    if isinstance(node, exp.Bracket):  # arr[1] is named after arr, as Postgres names a subscript
        inner = node.this.this if isinstance(node.this, exp.Paren) else node.this
        return inner.name if isinstance(inner, exp.Column) else (_colname(inner) or "?column?")
    if isinstance(node, _OPAQUE):
        return "?column?"
    return None


def name_columns(tree: exp.Expression) -> None:
    for select in tree.find_all(exp.Select):
        items = select.expressions
        for i, item in enumerate(items):
            if isinstance(item, exp.Alias):
                continue
            name = _colname(item)
            if name is not None:
                items[i] = exp.alias_(item, name, quoted=True)
