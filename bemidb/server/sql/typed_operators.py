"""Operators and calls whose Postgres result type follows their operands' types (rules of typed_rewrites.py):

- real with another number is computed in double precision (Postgres has no real + integer: both become
  float8), where DuckDB stays in REAL (3.14::real + 2 = 5.14 there, 5.140000104904175 in Postgres);
- smallint with integer is integer (DuckDB narrows the integer literal: '12'::int2 + 1 stays SMALLINT), and
  smallint with smallint stays smallint (DuckDB widens * and / to INTEGER and BIGINT);
- numeric / numeric (or an integer) is numeric, rounded to select_div_scale's scale (DuckDB: DOUBLE);
- date_trunc of a date truncates the date as a timestamp with time zone (DuckDB: TIMESTAMP), and
  generate_series of dates steps through timestamps with time zone;
- sum of reals is real (DuckDB: DOUBLE); sum of intervals adds months, days and microseconds apart, as
  Postgres does (DuckDB has no sum(INTERVAL));
- array || element and element || array append and prepend (DuckDB concatenates lists only); jsonb || jsonb
  merges objects and concatenates arrays (DuckDB concatenates the texts).
"""

from __future__ import annotations

from sqlglot import exp

from bemidb.server.sql import remap_json, typed_functions
from bemidb.server.sql.nodes import call, call_macro
from bemidb.server.sql.typed_rules import Rule

_INTEGERS = ("int2", "int4", "int8")
_NUMBERS = (*_INTEGERS, "numeric", "float4", "float8")


def _operands(node: exp.Binary) -> list:
    return [node.this, node.expression]


# (left, right) with a time operand DuckDB does not add or subtract -> which side becomes an interval
_TIME_AS_INTERVAL = {("timestamp", "time"): "right", ("time", "timestamp"): "left", ("timestamptz", "time"): "right",
                     ("time", "time"): "both"}


def _choose_arithmetic(types: tuple) -> str | None:
    left, right = types
    if (left, right) in _TIME_AS_INTERVAL:
        return "time_" + _TIME_AS_INTERVAL[left, right]
    if left == "jsonb":
        return "jsonb"
    if left == "float4" and right in _NUMBERS and right != "float4":
        return "float8_left"
    if right == "float4" and left in _NUMBERS and left != "float4":
        return "float8_right"
    if "numeric" in types and all(t in (*_INTEGERS, "numeric") for t in types):
        return "numeric"  # exact text when an operand is one (sql/typed_rewrites.py); DuckDB's DECIMAL otherwise
    if left == "int2" and right == "int4":
        return "int4_left"
    if right == "int2" and left == "int4":
        return "int4_right"
    if left == right == "int2":  # DuckDB widens smallint * smallint to INTEGER
        return "int2"
    return None


def _choose_division(types: tuple) -> str | None:
    left, right = types
    if left == "interval":
        return "interval"
    if (left == "numeric" and right in (*_INTEGERS, "numeric")) or (right == "numeric" and left in _INTEGERS):
        return "numeric"
    return _choose_arithmetic(types)


def _cast(node: exp.Expression, to: str) -> exp.Expression:
    return exp.Cast(this=node.copy(), to=exp.DataType.build(to))


# our macros whose value is Postgres's exact numeric text (catalog/numeric_macros.py)
_EXACT_TEXT = frozenset(("pg_numeric_div_text", "pg_avg_text", "pg_var_text", "pg_stddev_text", "pg_numeric_mul_text",
                         "pg_numeric_add_text", "pg_float_numeric_text"))


def _exact_text(node: exp.Expression) -> bool:
    while isinstance(node, exp.Paren):
        node = node.this
    return isinstance(node, exp.Dot) and isinstance(node.expression, exp.Anonymous) and \
        node.expression.name in _EXACT_TEXT


def _exact_arithmetic(node: exp.Binary):
    """numeric + - * numeric where an operand is exact text: the sum's scale is the larger one, the product's
    the sum of both, as numeric.c computes them."""
    if not (_exact_text(node.this) or _exact_text(node.expression)):
        return node, node.copy(), False  # plain DECIMAL columns: DuckDB's arithmetic is Postgres's already
    if isinstance(node, exp.Mul):
        return node, call_macro("pg_numeric_mul_text", node.this.copy(), node.expression.copy()), True
    sign = exp.Literal.number(1 if isinstance(node, exp.Add) else -1)
    return node, call_macro("pg_numeric_add_text", node.this.copy(), node.expression.copy(), sign), True


def _apply(node: exp.Binary, tag: str):
    if tag.startswith("time_"):  # timestamp + time, time - time: the time as the interval since midnight
        new = node.copy()
        for side in {"right": ["expression"], "left": ["this"], "both": ["this", "expression"]}[tag[5:]]:
            new.set(side, call_macro("bemidb_time_interval", node.args[side].copy()))
        return node, new, False
    if tag == "interval":
        return node, call_macro("bemidb_interval_div", node.this.copy(), node.expression.copy()), False
    if tag == "jsonb":  # jsonb - 'key'
        return node, remap_json.spaced(call_macro("bemidb_jsonb_minus", node.this.copy(),
                                                  node.expression.copy())), False
    if tag == "numeric" and not isinstance(node, exp.Div):
        return _exact_arithmetic(node)
    if tag == "numeric":
        return node, call_macro("pg_numeric_div_text", node.this.copy(), node.expression.copy()), True
    if tag == "int2":
        return node, _cast(node, "SMALLINT"), False
    side, to = {"float8_left": ("this", "DOUBLE"), "float8_right": ("expression", "DOUBLE"),
                "int4_left": ("this", "INTEGER"), "int4_right": ("expression", "INTEGER")}[tag]
    new = node.copy()
    new.set(side, _cast(node.args[side], to))
    return node, new, False


def _apply_series(node: exp.Expression, tag: str):
    if tag == "int4":
        return typed_functions.apply_int4_series(node, tag)
    new = node.copy()
    for key in ("start", "end"):
        if new.args.get(key) is not None:
            new.set(key, _cast(new.args[key], "TIMESTAMPTZ"))
    return node, new, False


def _apply_trunc(node: exp.Expression, _tag: str):
    return node, _cast(node, "TIMESTAMPTZ"), False


def _apply_sum(node: exp.Expression, tag: str):
    container = node
    while isinstance(container.parent, exp.Filter | exp.Window) and container.arg_key == "this":
        container = container.parent
    if tag == "float4":
        return container, _cast(container, "REAL"), False

    def total(part: exp.Expression, to_interval: str) -> exp.Expression:
        summed = exp.Sum(this=part)
        if container is not node:
            template = container.copy()  # the same FILTER and OVER (...) around each part
            template.find(exp.Sum).replace(summed)
            summed = template
        return call(to_interval, _cast(summed, "BIGINT"))

    x = node.this

    def field(name: str) -> exp.Expression:
        return call("datepart", exp.Literal.string(name), x.copy())

    months = exp.Add(this=exp.Mul(this=field("year"), expression=exp.Literal.number(12)), expression=field("month"))
    micros = exp.Add(this=exp.Add(this=exp.Mul(this=_cast(field("hour"), "BIGINT"),
                                               expression=exp.Literal.number(3600000000)),
                                  expression=exp.Mul(this=field("minute"), expression=exp.Literal.number(60000000))),
                     expression=field("microsecond"))
    added = exp.Add(this=exp.Add(this=total(months, "to_months"), expression=total(field("day"), "to_days")),
                    expression=total(micros, "to_microseconds"))
    return container, added, False


def _choose_concat(types: tuple) -> str | None:
    left, right = types
    if "jsonb" in (left, right):
        return "jsonb"
    if left and right and left.startswith("_") != right.startswith("_"):
        return "list_append" if left.startswith("_") else "list_prepend"
    return None


def _apply_concat(node: exp.Expression, tag: str):
    if tag == "jsonb":  # jsonb || jsonb merges objects, concatenates arrays
        return node, remap_json.spaced(call_macro("bemidb_jsonb_concat", node.this.copy(),
                                                  node.expression.copy())), False
    return node, call(tag, node.this.copy(), node.expression.copy()), False  # (list, x) / (x, list)


RULES = {
    **dict.fromkeys((exp.Add, exp.Sub, exp.Mul), Rule(_operands, _choose_arithmetic, _apply)),
    exp.Div: Rule(_operands, _choose_division, _apply, exact=True),
    exp.TimestampTrunc: Rule(lambda node: [node.this], lambda types: "tz" if types[0] == "date" else None,
                             _apply_trunc),
    exp.Sum: Rule(lambda node: [node.this], lambda types: types[0] if types[0] in ("float4", "interval") and
                  types[0] else None, _apply_sum),
    exp.DPipe: Rule(_operands, _choose_concat, _apply_concat),
    **dict.fromkeys((exp.GenerateSeries, exp.ExplodingGenerateSeries), Rule(
        typed_functions.SERIES_OPERANDS, typed_functions.choose_series, _apply_series)),
}
