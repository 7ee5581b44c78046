"""jsonb compared and sorted in Postgres's order (rules of typed_rewrites.py): DuckDB orders JSON as text.

Postgres orders jsonb values Object > Array > Boolean > Number > String > Null (an empty top-level array below
null), objects by their number of pairs, arrays by their length, numbers as numbers, booleans false < true.
Where an operand of <, <=, >, >= or an ORDER BY key is a jsonb column, it is compared by a key holding exactly
that (a DuckDB struct, compared field by field), then pair by pair (keys in their stored order) or element by
element, each element by its kind, number and text: nested arrays and objects inside are ordered by their
text, which is where this stays an approximation of Postgres's recursive comparison.
"""

from __future__ import annotations

from sqlglot import exp

from bemidb.server.sql.typed_rules import compare_by, layered

_TAG = "jsonb order"
_RANGE = (exp.LT, exp.GT, exp.LTE, exp.GTE)


def _scalar(x: str, top: bool) -> str:
    """kind (Postgres's order of kinds), then number, then text of a JSON value `x` (SQL)."""
    empty = "CASE WHEN json_array_length({x}) = 0 THEN 0 ELSE 5 END" if top else "5"
    return (f"kind := CASE json_type({x}) WHEN 'ARRAY' THEN {empty.format(x=x)} WHEN 'NULL' THEN 1 "
            f"WHEN 'VARCHAR' THEN 2 WHEN 'BOOLEAN' THEN 4 WHEN 'OBJECT' THEN 6 ELSE 3 END, "
            f"size := CASE json_type({x}) WHEN 'ARRAY' THEN json_array_length({x}) "
            f"WHEN 'OBJECT' THEN len(json_keys({x})) ELSE 0 END, "
            f"number := CASE WHEN json_type({x}) IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN CAST({x} AS DOUBLE) "
            f"WHEN json_type({x}) = 'BOOLEAN' THEN CAST(CAST({x} AS BOOLEAN) AS DOUBLE) END")


def _text(x: str) -> str:
    return f"text := CASE WHEN json_type({x}) = 'VARCHAR' THEN {x} ->> '$' ELSE CAST({x} AS VARCHAR) END"


def _key_sql(x: str) -> str:
    """The whole key: kind and size, then the elements (an object's pairs in their stored order, key before
    value; an array's elements), each by kind, number and text, then the value's own number and text."""
    element = f"struct_pack(key := e.key, {_scalar('e.value', False)}, {_text('e.value')})"
    pairs = f"list_transform(map_entries(CAST({x} AS MAP(VARCHAR, JSON))), lambda e: {element})"
    item = element.replace("e.key", "''").replace("e.value", "v")
    items = f"list_transform(CAST({x} AS JSON[]), lambda v: {item})"
    elements = (f"CASE json_type({x}) WHEN 'OBJECT' THEN {pairs} WHEN 'ARRAY' THEN {items} END")
    return f"CASE WHEN {x} IS NULL THEN NULL ELSE struct_pack({_scalar(x, True)}, elements := {elements}, " \
           f"{_text(x)}) END"


def _key(node: exp.Expression) -> exp.Expression:
    value = exp.Cast(this=node.copy(), to=exp.DataType.build("JSON"))
    return exp.maybe_parse(_key_sql(f"({value.sql(dialect='duckdb')})"), dialect="duckdb")


def _choose_comparison(types: tuple) -> str | None:
    return _TAG if "jsonb" in types and all(t in ("jsonb", None) for t in types) else None


def _choose_order(types: tuple) -> str | None:
    return _TAG if types and types[0] == "jsonb" else None


_apply_comparison, _apply_order = compare_by(_key)


def with_jsonb(rules: dict) -> dict:
    """`rules` with jsonb comparisons and ORDER BY keys added (the other rules keep their classes' nodes)."""
    return layered(layered(rules, _RANGE, _choose_comparison, _apply_comparison, _TAG),
                   (exp.Ordered,), _choose_order, _apply_order, _TAG)
