"""Postgres's int2vector and oidvector columns (pg_index.indkey, indclass, indcollation, indoption,
pg_proc.proargtypes) are subscripted from 0, unlike its arrays: psqlODBC and PgJDBC read `indkey[0]`. They are
lists here, 1-based like DuckDB's, so their subscripts move up by one."""

from __future__ import annotations

from sqlglot import exp

VECTOR_COLUMNS = frozenset({"indkey", "indclass", "indcollation", "indoption", "proargtypes"})


def _vector_column(node: exp.Expression) -> bool:
    while isinstance(node, exp.Paren):
        node = node.this
    return isinstance(node, exp.Column) and node.name.lower() in VECTOR_COLUMNS


def _plus_one(index: exp.Expression) -> exp.Expression:
    value = index.this if isinstance(index, exp.Neg) else index
    if isinstance(value, exp.Literal) and not value.is_string and value.this.lstrip("-").isdigit():
        number = -int(value.this) if isinstance(index, exp.Neg) else int(value.this)
        return exp.Literal.number(number + 1) if number + 1 >= 0 else exp.Neg(this=exp.Literal.number(-number - 1))
    return exp.Add(this=exp.Paren(this=index), expression=exp.Literal.number(1))


def zero_based(node: exp.Bracket) -> exp.Bracket:
    """`indkey[n]` (Postgres, from 0) -> the same element of the 1-based list; slices are left alone."""
    if _vector_column(node.this) and len(node.expressions) == 1 and \
            not isinstance(node.expressions[0], exp.Slice):
        node.set("expressions", [_plus_one(node.expressions[0])])
    return node
