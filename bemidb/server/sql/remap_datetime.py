"""extract() and date_part() with Postgres's result types and values.

Postgres 14+: extract gives numeric (epoch and seconds with 6 decimals), date_part double precision; DuckDB
gives BIGINT for most fields (seconds without their fraction) and DOUBLE for epoch. Years before Christ:
Postgres counts 1 BC as -1, DuckDB (ISO) as 0. Which spelling the statement used is marked on the node by
remap.transform (`SPELLING`), as sqlglot parses both into one Extract node.
"""

from __future__ import annotations

from sqlglot import exp

SPELLING = "bemidb_spelling"
_SIX_DECIMALS = exp.DataType.build("DECIMAL(38, 6)")
_DOUBLE = exp.DataType.build("DOUBLE")


def extract(node: exp.Extract) -> exp.Expression:
    field = node.this.name.upper() if isinstance(node.this, exp.Var | exp.Identifier) else ""
    date_part = node.meta.get(SPELLING) == "date_part"
    if field in ("SECOND", "SECONDS"):  # with the fraction: microseconds of the minute / 10^6
        micros = exp.Extract(this=exp.var("MICROSECOND"), expression=node.expression)
        if date_part:
            return exp.Div(this=exp.Cast(this=micros, to=_DOUBLE.copy()), expression=exp.Literal.number("1e6"))
        return exp.Mul(this=exp.Cast(this=micros, to=exp.DataType.build("DECIMAL(38, 0)")),
                       expression=exp.Cast(this=exp.Literal.string("0.000001"), to=_SIX_DECIMALS.copy()))
    if field in ("MILLISECOND", "MILLISECONDS"):  # the seconds in milliseconds, with their fraction
        micros = exp.Extract(this=exp.var("MICROSECOND"), expression=node.expression)
        if date_part:
            return exp.Div(this=exp.Cast(this=micros, to=_DOUBLE.copy()), expression=exp.Literal.number("1e3"))
        return exp.Mul(this=exp.Cast(this=micros, to=exp.DataType.build("DECIMAL(38, 0)")),
                       expression=exp.Cast(this=exp.Literal.string("0.001"), to=exp.DataType.build("DECIMAL(38, 3)")))
    if field == "EPOCH":
        return node if date_part else exp.Cast(this=node, to=_SIX_DECIMALS.copy())
    if field in ("YEAR", "YEARS"):
        node = exp.Case(ifs=[exp.If(this=exp.LTE(this=node.copy(), expression=exp.Literal.number(0)),
                                    true=exp.Sub(this=node.copy(), expression=exp.Literal.number(1)))],
                        default=node)
    return exp.Cast(this=node, to=_DOUBLE.copy()) if date_part else node
