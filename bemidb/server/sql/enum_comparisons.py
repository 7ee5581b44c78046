"""An enum column compared with a string: the string is read as a label of that enum (rules of
typed_rewrites.py), as Postgres reads 'ok' in `mood < 'ok'`.

The server reads an enum column as a DuckDB ENUM of its labels in declaration order (server/source_types.py),
so ORDER BY, min and max already follow that order; but DuckDB compares an ENUM with a VARCHAR as text
(alphabetically). Where one operand of a comparison is an enum column and the other is not of an enum type,
the other is cast to the column's ENUM type: comparisons then follow the declaration order, and a string that is
no label fails, as in Postgres, instead of comparing as text.
"""

from __future__ import annotations

from sqlglot import exp

from bemidb.quoting import quote_literal
from bemidb.server.sql.typed_rules import layered

_COMPARISONS = (exp.EQ, exp.NEQ, exp.LT, exp.GT, exp.LTE, exp.GTE)
_TAG = "ENUM("


class EnumTypeText(str):
    """A source column's type text ('mood') that also carries the enum's labels, in declaration order (what the
    table lookup gives for an enum column, so a rule can tell an enum from another unknown type)."""

    labels: tuple[str, ...] = ()

    def __new__(cls, text: str, labels) -> EnumTypeText:
        value = super().__new__(cls, text)
        value.labels = tuple(labels)
        return value


def enum_tag(types: tuple) -> str | None:
    """The DuckDB ENUM type to cast the other operand to, when exactly one operand is an enum column."""
    enums = [t for t in types if isinstance(t, EnumTypeText) and t.labels]
    if len(enums) != 1 or len(types) != 2:
        return None
    return _TAG + ", ".join(quote_literal(label) for label in enums[0].labels) + ")"


def _is_enum(node: exp.Expression) -> bool:
    """Is this operand (after the remap) the enum column, not the value compared with it?"""
    return isinstance(node, exp.Column)


def _apply(node: exp.Binary, tag: str):
    new = node.copy()
    target = exp.DataType.build(tag, dialect="duckdb")
    left, right = new.this, new.expression
    if _is_enum(left) and not _is_enum(right):
        new.set("expression", exp.Cast(this=right, to=target))
    elif _is_enum(right) and not _is_enum(left):
        new.set("this", exp.Cast(this=left, to=target))
    else:
        return node, node.copy(), False
    return node, new, False


def _between_tag(types: tuple) -> str | None:
    """x BETWEEN low AND high with x an enum column: low and high are labels of it."""
    return enum_tag((types[0], None)) if len(types) == 3 and not any(types[1:]) else None


def _apply_between(node: exp.Between, tag: str):
    if not _is_enum(node.this):
        return node, node.copy(), False
    new = node.copy()
    target = exp.DataType.build(tag, dialect="duckdb")
    for key in ("low", "high"):
        new.set(key, exp.Cast(this=new.args[key], to=target))
    return node, new, False


def with_enums(rules: dict) -> dict:
    """`rules` (node class -> Rule) with enum comparisons added: an enum tag wins, else the rule's own choice."""
    compared = layered(rules, _COMPARISONS, enum_tag, _apply, _TAG)
    return layered(compared, (exp.Between,), _between_tag, _apply_between, _TAG,
                   lambda node: [node.this, node.args.get("low"), node.args.get("high")])
