"""avg, variance and stddev over integers and numerics in numeric, as Postgres computes them (a rule of
typed_rewrites.py): DuckDB computes them in DOUBLE whatever the argument, so round(avg(total), 2) printed 106.2
where Postgres prints 106.20. The exact arithmetic is catalog/numeric_macros.py's, on exact sums.
"""

from __future__ import annotations

from sqlglot import exp

from bemidb.server.sql.nodes import call_macro
from bemidb.server.sql.typed_rules import Rule

_INTEGERS = ("int2", "int4", "int8")
# sqlglot node -> (macro, population?)
_MACROS = {exp.Avg: ("pg_avg_text", False), exp.Stddev: ("pg_stddev_text", False),
           exp.StddevSamp: ("pg_stddev_text", False), exp.StddevPop: ("pg_stddev_text", True),
           exp.Variance: ("pg_var_text", False), exp.VariancePop: ("pg_var_text", True)}


def _operands(call: exp.Expression) -> list:
    argument = call.this
    if isinstance(argument, exp.Distinct):
        argument = argument.expressions[0] if len(argument.expressions) == 1 else None
    return [argument]


def _choose(types: tuple) -> str | None:
    return "integer" if types[0] in _INTEGERS else "numeric" if types[0] == "numeric" else None


def _apply(call: exp.Expression, kind: str):
    container = call
    if isinstance(container.parent, exp.Filter) and container.arg_key == "this":
        container = container.parent
    if isinstance(container.parent, exp.Window) and container.arg_key == "this":
        container = container.parent
    return container, _exact_text(call, container, kind), True


def _exact_text(call: exp.Expression, container: exp.Expression, kind: str) -> exp.Expression:
    macro, population = _MACROS[type(call)]
    argument = call.this
    distinct = isinstance(argument, exp.Distinct)
    value = argument.expressions[0] if distinct else argument

    def aggregate(cls, operand: exp.Expression) -> exp.Expression:
        node = cls(this=exp.Distinct(expressions=[operand]) if distinct else operand)
        if container is call:
            return node
        template = container.copy()  # the same FILTER and OVER (...) around each of the parts
        template.find(type(call)).replace(node)
        return template

    total, count = aggregate(exp.Sum, value.copy()), aggregate(exp.Count, value.copy())
    if macro == "pg_avg_text":
        return call_macro(macro, total, count)
    wide = exp.Cast(this=value.copy(), to=exp.DataType.build("HUGEINT")) if kind == "integer" else value.copy()
    squares = aggregate(exp.Sum, exp.Mul(this=wide, expression=wide.copy()))
    return call_macro(macro, total, squares, count, exp.Boolean(this=population))


RULES = dict.fromkeys(_MACROS, Rule(_operands, _choose, _apply, exact=True))
