"""money columns compared, ordered and aggregated as amounts (rules of typed_rewrites.py).

money is stored as its text output ('$1,000.50', '-$1.00'), so DuckDB compares and orders it as text and
'12.34' never equals '$12.34'. Where an operand is a money column, both sides are read as amounts
(bemidb_money_amount: the text without '$' and ',' as DECIMAL), min/max pick the value with the least/greatest
amount, and ORDER BY sorts by the amount.
"""

from __future__ import annotations

from sqlglot import exp

from bemidb.server.sql.nodes import call, call_macro
from bemidb.server.sql.numeric_aggregates import Rule

_COMPARISONS = (exp.EQ, exp.NEQ, exp.LT, exp.GT, exp.LTE, exp.GTE)


def _amount(node: exp.Expression) -> exp.Expression:
    return call_macro("bemidb_money_amount", node.copy())


def _choose(types: tuple) -> str | None:
    return "money" if "money" in types else None


def _apply_comparison(node: exp.Binary, _tag: str):
    new = node.copy()
    new.set("this", _amount(node.this))
    new.set("expression", _amount(node.expression))
    return node, new, False


def _apply_order(node: exp.Ordered, _tag: str):
    new = node.copy()
    new.set("this", _amount(node.this))
    return node, new, False


def _apply_extreme(node: exp.Expression, _tag: str):
    if isinstance(node.parent, exp.Window | exp.Filter):
        return node, node.copy(), False  # left as DuckDB's text min/max
    pick = "arg_min" if isinstance(node, exp.Min) else "arg_max"
    return node, call(pick, node.this.copy(), _amount(node.this)), False


RULES = {
    **dict.fromkeys(_COMPARISONS, Rule(lambda node: [node.this, node.expression], _choose, _apply_comparison)),
    exp.Ordered: Rule(lambda node: [node.this], _choose, _apply_order),
    **dict.fromkeys((exp.Min, exp.Max), Rule(lambda node: [node.this], _choose, _apply_extreme)),
}
