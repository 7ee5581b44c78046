"""avg, variance and stddev over integer and numeric columns answered in numeric, as Postgres answers them.

DuckDB computes them in DOUBLE whatever the argument; Postgres in exact numeric (round(avg(total), 2) prints
106.20, not 106.2). Which calls to rewrite depends on the argument's type, known only against the tables being
served, while translations are cached by text. So translate records, per call, the origin of its argument
(`candidates`); `specialize` resolves those at plan time and, when some are integer or numeric, re-translates
the statement with those calls computed from exact sums by catalog/numeric_macros.py (cached per statement
and choice). A call that is a whole result column of the outermost query gives Postgres's text (each value
with its own scale); one inside an expression gives a DECIMAL the expression can compute on.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

from sqlglot import exp
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.scope import build_scope

from bemidb.server.sql import column_origins
from bemidb.server.sql.nodes import call_macro

# sqlglot node -> (macro, population?)
_KINDS = {exp.Avg: ("pg_avg_text", False), exp.Stddev: ("pg_stddev_text", False),
          exp.StddevSamp: ("pg_stddev_text", False), exp.StddevPop: ("pg_stddev_text", True),
          exp.Variance: ("pg_var_text", False), exp.VariancePop: ("pg_var_text", True)}
_INTEGERS = ("smallint", "integer", "bigint", "int2", "int4", "int8")
_EXACT = (*_INTEGERS, "numeric", "decimal")
_MARK = "bemidb_numeric_aggregate"
NESTED = exp.DataType.build("DECIMAL(38, 16)")  # inside an expression: 22 integer digits, 16 decimals


def candidates(tree: exp.Expression, text: str = "") -> tuple[tuple[int, tuple], ...]:
    """(call number, origin of its argument) for each call of _KINDS over a column or cast, on the Postgres
    tree before the remap; numbers count the calls in `tree.find_all` order."""
    calls = list(tree.find_all(*_KINDS))
    if not calls:
        return ()
    for i, call in enumerate(calls):
        call.meta[_MARK] = i
    try:
        copy = normalize_identifiers(tree.copy(), dialect="postgres")
        root = build_scope(copy)
    except Exception:  # noqa: BLE001 - then DuckDB's DOUBLE answers, as before
        root = None
    finally:
        for call in calls:
            call.meta.pop(_MARK, None)
    if root is None:
        return ()
    found = []
    for scope in root.traverse():
        for call in scope.find_all(*_KINDS):
            argument = _argument(call)
            origin = column_origins._origin(scope, argument, 0, text) if argument is not None else None
            if origin is not None and _MARK in call.meta:
                found.append((call.meta[_MARK], origin))
    return tuple(sorted(found))


def _argument(call: exp.Expression) -> exp.Expression | None:
    argument = call.this
    if isinstance(argument, exp.Distinct):
        argument = argument.expressions[0] if len(argument.expressions) == 1 else None
    return argument


def exact_type(pg_type: str | None) -> str | None:
    """'integer' / 'numeric' for a type Postgres aggregates in numeric, else None."""
    base = (pg_type or "").partition("(")[0].strip().lower()
    return "integer" if base in _INTEGERS else "numeric" if base in _EXACT else None


def specialize(plan, statement: str, lookup):
    """`plan` (a Query) with its integer/numeric aggregate calls made exact; `lookup` resolves tables."""
    args = getattr(plan, "numeric_args", ())
    if not args:
        return plan
    chosen = []
    for number, origin in args:
        resolved = column_origins._one(origin, lookup)
        kind = exact_type(resolved[0]) if resolved else None
        if kind:
            chosen.append((number, kind))
    if not chosen:
        return plan
    try:
        sql = typed_sql(statement, tuple(chosen))
    except Exception:  # noqa: BLE001 - a statement this cannot rewrite runs as translated
        return plan
    return dataclasses.replace(plan, sql=sql)


@lru_cache(maxsize=1024)
def typed_sql(statement: str, chosen: tuple[tuple[int, str], ...]) -> str:
    from bemidb.server.sql import remap, rewrite  # rewrite imports this module

    tree = rewrite._parsed(statement)
    kinds = dict(chosen)
    for i, call in enumerate(tree.find_all(*_KINDS)):
        if i in kinds:
            call.meta[_MARK] = kinds[i]
    tree = remap.transform(tree, statement)
    outer = tree.expressions if isinstance(tree, exp.Select) else []
    replaced: dict[int, exp.Expression] = {}
    for call in [c for c in tree.find_all(*_KINDS) if _MARK in c.meta]:
        container = call
        if isinstance(container.parent, exp.Filter) and container.arg_key == "this":
            container = container.parent
        if isinstance(container.parent, exp.Window) and container.arg_key == "this":
            container = container.parent
        text_form = _exact_text(call, container, call.meta[_MARK])
        item = container.parent if isinstance(container.parent, exp.Alias) else container
        index = next((i for i, e in enumerate(outer) if e is item), None)  # a result column of the query
        top = index is not None
        if top:
            replaced[index] = text_form
        container.replace(text_form if top else exp.Cast(this=text_form, to=NESTED.copy()))
    if replaced and isinstance(tree, exp.Select):
        _order_numerically(tree, replaced)
    return tree.sql(dialect="duckdb")


def _exact_text(call: exp.Expression, container: exp.Expression, kind: str) -> exp.Expression:
    macro, population = _KINDS[type(call)]
    argument = call.this
    distinct = isinstance(argument, exp.Distinct)
    value = argument.expressions[0] if distinct else argument

    def aggregate(cls, operand: exp.Expression) -> exp.Expression:
        node = cls(this=exp.Distinct(expressions=[operand]) if distinct else operand)
        if container is call:
            return node
        template = container.copy()
        template.find(type(call)).replace(node)
        return template

    total, count = aggregate(exp.Sum, value.copy()), aggregate(exp.Count, value.copy())
    if macro == "pg_avg_text":
        return call_macro(macro, total, count)
    wide = exp.Cast(this=value.copy(), to=exp.DataType.build("HUGEINT")) if kind == "integer" else value.copy()
    squares = aggregate(exp.Sum, exp.Mul(this=wide, expression=wide.copy()))
    return call_macro(macro, total, squares, count, exp.Boolean(this=population))


def _order_numerically(tree: exp.Select, replaced: dict[int, exp.Expression]) -> None:
    """ORDER BY 2 or ORDER BY its alias, where result column 2 became text: sort by the number."""
    order = tree.args.get("order")
    if order is None:
        return
    aliases = {item.alias: i for i, item in enumerate(tree.expressions) if isinstance(item, exp.Alias)}
    for ordered in order.expressions:
        key = ordered.this
        index = None
        if isinstance(key, exp.Literal) and not key.is_string and key.this.isdigit():
            index = int(key.this) - 1
        elif isinstance(key, exp.Column) and not key.table:
            index = aliases.get(key.name)
        if index in replaced:
            key.replace(exp.Cast(this=replaced[index].copy(), to=NESTED.copy()))
