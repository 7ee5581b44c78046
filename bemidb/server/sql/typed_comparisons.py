"""money columns compared, ordered and aggregated as amounts (rules of typed_rewrites.py).

money is stored as its text output ('$1,000.50', '-$1.00'), so DuckDB compares and orders it as text and
'12.34' never equals '$12.34'. Where an operand is a money column, both sides are read as amounts
(bemidb_money_amount: the text without '$' and ',' as DECIMAL), min/max pick the value with the least/greatest
amount, and ORDER BY sorts by the amount. min/max of a float column are computed from its values (NaN).
"""

from __future__ import annotations

from sqlglot import exp

from bemidb.server.sql.nodes import call, call_macro
from bemidb.server.sql.typed_rules import Rule, compare_by

_COMPARISONS = (exp.EQ, exp.NEQ, exp.LT, exp.GT, exp.LTE, exp.GTE)


def _amount(node: exp.Expression) -> exp.Expression:
    return call_macro("bemidb_money_amount", node.copy())


def _choose(types: tuple) -> str | None:
    return "money" if "money" in types else None


_apply_comparison, _apply_order = compare_by(_amount)


def _choose_extreme(types: tuple) -> str | None:
    return "money" if types[0] == "money" else types[0] if types[0] in ("float4", "float8") else None


def _apply_extreme(node: exp.Expression, tag: str):
    if tag in ("float4", "float8"):
        # min/max of a bare float column may be answered from the Parquet footer's statistics, which leave
        # NaN out (Postgres: NaN is the greatest); x + 0 is computed from the values
        new = node.copy()
        zero = exp.Cast(this=exp.Literal.number(0), to=exp.DataType.build("REAL" if tag == "float4" else "DOUBLE"))
        new.set("this", exp.Add(this=node.this.copy(), expression=zero))
        return node, new, False
    if isinstance(node.parent, exp.Window | exp.Filter):
        return node, node.copy(), False  # left as DuckDB's text min/max
    pick = "arg_min" if isinstance(node, exp.Min) else "arg_max"
    return node, call(pick, node.this.copy(), _amount(node.this)), False


RULES = {
    **dict.fromkeys(_COMPARISONS, Rule(lambda node: [node.this, node.expression], _choose, _apply_comparison)),
    exp.Ordered: Rule(lambda node: [node.this], _choose, _apply_order),
    **dict.fromkeys((exp.Min, exp.Max), Rule(lambda node: [node.this], _choose_extreme, _apply_extreme)),
}
