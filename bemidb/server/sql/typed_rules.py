"""What the typed rewrites are made of (typed_rewrites.py): a Rule per sqlglot node class, a way to layer one
rule over another, and the rewrite that compares or orders values by a key expression of theirs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp


@dataclass(frozen=True)
class Rule:
    operands: Callable  # node -> the operands whose types decide (on the Postgres tree)
    choose: Callable  # their base types ('int4', 'numeric', None when unknown) -> a tag, or None: no rewrite
    apply: Callable  # (node after the remap, tag) -> (node to replace, replacement, is exact numeric text)
    exact: bool = False  # may give exact numeric text (catalog/numeric_macros.py)


def layered(rules: dict, classes: tuple, choose, apply, prefix: str, operands=None) -> dict:
    """`rules` with one more rule on `classes`: where `choose(types)` gives a tag (starting with `prefix`),
    `apply` rewrites the node; elsewhere the class's own rule (if any) decides, as before."""
    out = dict(rules)
    for cls in classes:
        base = rules.get(cls)
        picked = operands or (base.operands if base else (lambda node: [node.this, node.expression]))
        out[cls] = Rule(picked, _chooser(base, choose), _applier(base, apply, prefix),
                        exact=base.exact if base else False)
    return out


def _chooser(base: Rule | None, choose):
    def chosen(types: tuple) -> str | None:
        return choose(types) or (base.choose(types) if base else None)
    return chosen


def _applier(base: Rule | None, apply, prefix: str):
    def applied(node: exp.Expression, tag: str):
        if tag.startswith(prefix) or base is None:
            return apply(node, tag)
        return base.apply(node, tag)
    return applied


def compare_by(key: Callable[[exp.Expression], exp.Expression]) -> tuple[Callable, Callable]:
    """The (comparison, ORDER BY) appliers that compare values by `key(value)` instead of the value itself."""
    def comparison(node: exp.Binary, _tag: str):
        new = node.copy()
        new.set("this", key(node.this))
        new.set("expression", key(node.expression))
        return node, new, False

    def order(node: exp.Ordered, _tag: str):
        new = node.copy()
        new.set("this", key(node.this))
        return node, new, False

    return comparison, order
