"""A real/double column compared with 'NaN' (rules of typed_rewrites.py), as Postgres compares: NaN equals NaN
and is greater than every other number.

DuckDB would get these right on values, but its optimizer answers `col = 'NaN'` from the Parquet statistics,
whose min/max leave NaN out, and folds it to false (and `col < 'NaN'` to true on the NaN row). The comparison
is rewritten to a test of isnan(col) that reads the values.
"""

from __future__ import annotations

from sqlglot import exp

from bemidb.server.sql.typed_rules import layered

_TAG = "float nan"
_COMPARISONS = (exp.EQ, exp.NEQ, exp.LT, exp.GT, exp.LTE, exp.GTE)
_FLIPPED = {exp.LT: exp.GT, exp.GT: exp.LT, exp.LTE: exp.GTE, exp.GTE: exp.LTE, exp.EQ: exp.EQ, exp.NEQ: exp.NEQ}


def _is_nan(node: exp.Expression) -> bool:
    while isinstance(node, exp.Cast | exp.Paren):
        node = node.this
    return isinstance(node, exp.Literal) and node.is_string and node.this.strip().lower() in ("nan", "+nan")


def _choose(types: tuple) -> str | None:
    return _TAG if len(types) == 2 and any(t in ("float4", "float8") for t in types) and None in types else None


def _apply(node: exp.Binary, _tag: str):
    cls = type(node)
    if _is_nan(node.expression) and not _is_nan(node.this):
        column = node.this
    elif _is_nan(node.this) and not _is_nan(node.expression):
        column, cls = node.expression, _FLIPPED[cls]  # 'NaN' < col is col > 'NaN'
    else:
        return node, node.copy(), False
    x = column.sql(dialect="duckdb")

    def case(then: str) -> exp.Expression:  # NULL stays NULL
        return exp.maybe_parse(f"CASE WHEN {x} IS NULL THEN NULL ELSE {then} END", dialect="duckdb")

    # CASEs: a plain isnan(col) would be pushed into the Parquet scan, whose statistics prune it away too
    nan, number = f"CASE WHEN isnan({x}) THEN TRUE ELSE FALSE END", f"CASE WHEN isnan({x}) THEN FALSE ELSE TRUE END"
    # col op NaN, NaN being the greatest: = and >= are "is NaN", < and <> "is not NaN", <= any number, > none
    new = case({exp.EQ: nan, exp.GTE: nan, exp.LT: number, exp.NEQ: number, exp.LTE: "TRUE", exp.GT: "FALSE"}[cls])
    return node, exp.Paren(this=new), False


def with_nan(rules: dict) -> dict:
    return layered(rules, _COMPARISONS, _choose, _apply, _TAG)
