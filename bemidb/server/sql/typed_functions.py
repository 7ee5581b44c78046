"""Calls whose Postgres answer follows their argument's type (rules of typed_rewrites.py):

- round(float8) rounds half to even (rint), round(numeric) half away from zero (DuckDB: away from zero always);
- sign(numeric) is numeric, sign of any other number double precision (DuckDB: TINYINT);
- generate_series(int4, int4) is integer (DuckDB: BIGINT), in a select list and in FROM;
- extract(epoch from date) is a whole number (numeric of scale 0), from a timestamp it has 6 decimals;
- x::numeric (no typmod) keeps an integer's digits and a numeric's own scale (DuckDB: DECIMAL(18,3)).
"""

from __future__ import annotations

from sqlglot import exp

from bemidb.server.sql.nodes import call, call_macro
from bemidb.server.sql.typed_rules import Rule

_FLOATS = ("float4", "float8")
_NUMBERS = ("int2", "int4", "int8", "numeric", *_FLOATS)


def _choose_round(types: tuple) -> str | None:
    return "even" if types[0] in _FLOATS else None


def _apply_round(node: exp.Round, _tag: str):
    if node.args.get("decimals") is not None:
        return node, node.copy(), False  # round(float8, n) does not exist in Postgres: left to DuckDB
    value = exp.Cast(this=node.this.copy(), to=exp.DataType.build("DOUBLE"))  # round(real) is round(float8)
    return node, call("round_even", value, exp.Literal.number(0)), False


def _choose_sign(types: tuple) -> str | None:
    return "DECIMAL(38, 0)" if types[0] == "numeric" else "DOUBLE" if types[0] in _NUMBERS else None


def _apply_cast(node: exp.Expression, tag: str):
    return node, exp.Cast(this=node.copy(), to=exp.DataType.build(tag)), False


def _series_operands(node: exp.Expression) -> list:
    return [node.args.get("start"), node.args.get("end")]


def choose_series(types: tuple) -> str | None:
    if types[0] == "date":
        return "tz"
    return "int4" if types == ("int4", "int4") else None


def apply_int4_series(node: exp.Expression, _tag: str):
    table = node.parent
    if not isinstance(table, exp.Table):  # in a select list: one value per row
        return node, exp.Cast(this=node.copy(), to=exp.DataType.build("INTEGER")), False
    alias = table.args.get("alias")
    relation = alias.name if alias is not None and alias.name else "generate_series"
    column = alias.columns[0].name if alias is not None and alias.columns else relation
    inner = exp.Table(this=node.copy(), alias=exp.TableAlias(this=exp.to_identifier(relation),
                                                             columns=[exp.to_identifier(column)]))
    value = exp.Cast(this=exp.column(column), to=exp.DataType.build("INTEGER"))
    select = exp.select(exp.alias_(value, column)).from_(inner)
    return table, exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier(relation))), False


def _choose_extract(types: tuple) -> str | None:
    return "date" if types[0] == "date" else None


def _apply_extract(node: exp.Extract, _tag: str):
    field = node.this.name.upper() if isinstance(node.this, exp.Var | exp.Identifier) else ""
    cast = node.parent
    if field != "EPOCH" or not isinstance(cast, exp.Cast) or cast.args["to"].this != exp.DataType.Type.DECIMAL:
        return node, node.copy(), False  # date_part(...) stays double precision; other fields as they were
    return cast, exp.Cast(this=node.copy(), to=exp.DataType.build("DECIMAL(38, 0)")), False


def _numeric_cast_operand(node: exp.Cast) -> list:
    to = node.args["to"]
    plain = isinstance(to, exp.DataType) and to.this == exp.DataType.Type.DECIMAL and not to.expressions
    return [node.this] if plain and not isinstance(node.this, exp.Literal) else []


def _choose_numeric_cast(types: tuple) -> str | None:
    if types and types[0] in _FLOATS:
        return types[0]
    return "DECIMAL(38, 0)" if types and types[0] in _NUMBERS[:3] else "same" if types and \
        types[0] == "numeric" else None


def _feeds_exact_arithmetic(node: exp.Expression) -> bool:
    """An operand of numeric + - * that typed_rewrites.py computes on exact texts (d::numeric * 3)."""
    outer = node.parent
    while isinstance(outer, exp.Paren):
        outer = outer.parent
    return isinstance(outer, exp.Mul | exp.Add | exp.Sub) and outer.meta.get("bemidb_typed_rewrite") == "numeric"


def _apply_numeric_cast(node: exp.Expression, tag: str):
    if not isinstance(node, exp.Cast):
        return node, node.copy(), False
    if tag == "same":  # already a numeric: its own scale, or Postgres's exact text
        return node, node.this.copy(), False
    if tag in _FLOATS:
        named = isinstance(node.parent, exp.Alias)  # the select list's items are named (column_names.py)
        item = node.parent.parent if named else node.parent
        if isinstance(item, exp.Select) or (named and item is None) or _feeds_exact_arithmetic(node):
            digits = exp.Literal.number(6 if tag == "float4" else 15)  # a result column: each value's own digits
            return node, call_macro("pg_float_numeric_text", node.this.copy(), digits), False
        return node, exp.Cast(this=node.this.copy(), to=exp.DataType.build("DECIMAL(38, 15)")), False
    return node, exp.Cast(this=node.this.copy(), to=exp.DataType.build(tag)), False


RULES = {
    exp.Cast: Rule(_numeric_cast_operand, _choose_numeric_cast, _apply_numeric_cast),
    exp.Extract: Rule(lambda node: [node.expression], _choose_extract, _apply_extract),
    exp.Round: Rule(lambda node: [node.this], _choose_round, _apply_round),
    exp.Sign: Rule(lambda node: [node.this], _choose_sign, _apply_cast),
}
SERIES_OPERANDS = _series_operands
