"""Rewrites that depend on the types of a call's or an operator's operands, chosen at plan time.

Postgres's answer to avg(x), x / y, real_col + 1 or date_trunc('month', d) depends on the operands' types;
DuckDB's differs (DOUBLE averages, REAL arithmetic, TIMESTAMP truncations). The operand types are known only
against the tables being served, while translations are cached by text. So translate records, per such node,
the origins of its operands (`candidates`, on the Postgres tree); `specialize` resolves them at plan time,
lets each rule (numeric_aggregates.py, typed_operators.py) choose a rewrite from the types, and re-translates
the statement with those rewrites (cached per statement and choice). A rule's exact numeric result is
Postgres's text when it is a whole result column of the outermost query (each value with its own scale), and a
DECIMAL where it feeds another expression.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

from sqlglot import exp
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.scope import build_scope

from bemidb.server.sql import (
    column_origins,
    enum_comparisons,
    float_nan,
    jsonb_order,
    numeric_aggregates,
    source_typeof,
    typed_comparisons,
    typed_functions,
    typed_operators,
)

# the source-type rules (enums, jsonb, NaN) layered over the others: where they choose nothing, those decide
RULES = source_typeof.with_typeof(float_nan.with_nan(jsonb_order.with_jsonb(enum_comparisons.with_enums(
    {**numeric_aggregates.RULES, **typed_operators.RULES, **typed_comparisons.RULES, **typed_functions.RULES}))))  # node class -> rule (operands, choose, apply)
_NODES = tuple(RULES)
_MARK = "bemidb_typed_rewrite"
NESTED = exp.DataType.build("DECIMAL(38, 16)")  # inside an expression: 22 integer digits, 16 decimals


def candidates(tree: exp.Expression, text: str = "") -> tuple[tuple[int, tuple], ...]:
    """(node number, origins of its operands) for each node a rule may rewrite, on the Postgres tree before
    the remap; numbers count the nodes in `tree.find_all` order."""
    nodes = list(tree.find_all(*_NODES))
    if not nodes:
        return ()
    for i, node in enumerate(nodes):
        node.meta[_MARK] = i
    try:
        root = build_scope(normalize_identifiers(tree.copy(), dialect="postgres"))
    except Exception:  # noqa: BLE001 - then DuckDB's types answer, as before
        root = None
    finally:
        for node in nodes:
            node.meta.pop(_MARK, None)
    if root is None:
        return ()
    found = {}
    for scope in root.traverse():
        for node in scope.find_all(*_NODES):
            if _MARK not in node.meta or node.meta[_MARK] in found:
                continue
            origins = tuple(_operand_origin(scope, operand, text) for operand in RULES[type(node)].operands(node))
            if any(origins):
                found[node.meta[_MARK]] = origins
    return tuple(sorted(found.items()))


def _operand_origin(scope, operand: exp.Expression | None, text: str):
    while isinstance(operand, exp.Paren):
        operand = operand.this
    if operand is None:
        return None
    if isinstance(operand, exp.Neg) and isinstance(operand.this, exp.Literal):
        operand = operand.this
    if isinstance(operand, _ARITHMETIC):  # (n + 1): typed from its operands' types at plan time
        return ("arithmetic", _operand_origin(scope, operand.this, text),
                _operand_origin(scope, operand.expression, text))
    if isinstance(operand, exp.Literal) and not operand.is_string:
        digits = operand.this
        if any(c in digits for c in ".eE"):
            return "typed", "numeric"
        return "typed", "integer" if abs(int(digits)) < 2**31 else "bigint" if abs(int(digits)) < 2**63 \
            else "numeric"
    return column_origins.expression_origin(scope, operand, text)


_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div)
_RANKS = ("int2", "int4", "int8", "numeric", "float4", "float8")  # the wider type wins, but real with any
# other number is double precision


def _resolved(origin, lookup) -> str | None:
    """An operand's Postgres base type, or None when it cannot be told."""
    if not origin:
        return None
    if origin[0] == "arithmetic":
        left, right = _resolved(origin[1], lookup), _resolved(origin[2], lookup)
        if left not in _RANKS or right not in _RANKS:
            return None
        if "float4" in (left, right) and left != right:
            return "float8"
        return max(left, right, key=_RANKS.index)
    found = column_origins.resolve_one(origin, lookup)
    return base_type(found[0]) if found else None


def base_type(pg_type: str | None) -> str | None:
    """'numeric(10,2)' -> 'numeric', 'double precision' -> 'float8', 'integer' -> 'int4'."""
    return column_origins.plain_type(pg_type) if pg_type else None


def specialize(plan, statement: str, lookup):
    """`plan` (a Query) with the rewrites its operands' types call for; `lookup` resolves tables."""
    args = getattr(plan, "typed_args", ())
    if not args:
        return plan
    numbered = _node_classes(statement)
    tables: dict = {}

    def lookup_once(schema: str, table: str):  # each table looked up once per plan, however many operands
        if (schema, table) not in tables:
            tables[schema, table] = lookup(schema, table)
        return tables[schema, table]

    chosen = []
    for number, origins in args:
        types = tuple(_resolved(o, lookup_once) for o in origins)
        rule = RULES.get(numbered[number]) if number < len(numbered) else None
        tag = rule.choose(types) if rule else None
        if tag:
            chosen.append((number, tag))
    if not chosen:
        return plan
    try:
        sql, texts = typed_sql(statement, tuple(chosen))
    except Exception:  # noqa: BLE001 - a statement this cannot rewrite runs as translated
        return plan
    origins = tuple(("typed", "numeric") if i in texts else o for i, o in enumerate(plan.origins))
    return dataclasses.replace(plan, sql=sql, origins=origins)


@lru_cache(maxsize=1024)
def _node_classes(statement: str) -> tuple[type, ...]:
    from bemidb.server.sql import rewrite  # rewrite imports this module

    return tuple(type(node) for node in rewrite.parsed(statement).find_all(*_NODES))


@lru_cache(maxsize=1024)
def typed_sql(statement: str, chosen: tuple[tuple[int, str], ...]) -> tuple[str, frozenset[int]]:
    """The DuckDB SQL, and which result columns of the outermost query are now exact numeric text."""
    from bemidb.server.sql import remap, rewrite  # rewrite imports this module

    tree = rewrite.parsed(statement)
    tags = dict(chosen)
    for i, node in enumerate(tree.find_all(*_NODES)):
        if i in tags:
            node.meta[_MARK] = tags[i]
    tree = remap.transform(tree, statement)
    outer = tree.expressions if isinstance(tree, exp.Select) else []
    replaced: dict[int, exp.Expression] = {}
    # innermost first: an outer rule's operands are then already rewritten
    marked = [n for n in tree.find_all(*_NODES) if _MARK in n.meta]
    for node in reversed(marked):
        tag = node.meta.pop(_MARK)
        if node.find_ancestor(exp.Having) is not None and RULES[type(node)].exact:
            continue  # DuckDB cannot bind the macros' lambdas in HAVING; a comparison there needs no scale
        if node.find_ancestor(exp.Bracket) is not None:
            continue  # a subscript: sqlglot shifts a typed index by the dialects' offset once more (indkey[n-1])
        container, new, exact_text = RULES[type(node)].apply(node, tag)
        item = container.parent if isinstance(container.parent, exp.Alias) else container
        index = next((i for i, e in enumerate(outer) if e is item), None)  # a result column of the query
        grouped = node.find_ancestor(exp.Group) is not None  # GROUP BY n / 3 must stay the select item's n / 3
        if exact_text and index is None and not grouped and not _feeds_exact(container):
            new = exp.Cast(this=new, to=NESTED.copy())
        elif exact_text and index is not None:
            replaced[index] = new
        container.replace(new)
    if replaced and isinstance(tree, exp.Select):
        _order_numerically(tree, replaced)
    return tree.sql(dialect="duckdb"), frozenset(replaced)


def _feeds_exact(container: exp.Expression) -> bool:
    """An exact numeric text that an outer exact operator reads as it is (2 / 3.0 * 100: the quotient's 20
    decimals times 100), rather than as DECIMAL(38, 16); a divisor stays a DECIMAL."""
    child, outer = container, container.parent
    while isinstance(outer, exp.Paren):
        child, outer = outer, outer.parent
    if not isinstance(outer, exp.Mul | exp.Add | exp.Sub | exp.Div) or outer.meta.get(_MARK) != "numeric":
        return False
    return not (isinstance(outer, exp.Div) and child.arg_key == "expression")


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
