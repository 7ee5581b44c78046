"""json/jsonb values computed by a query, printed as Postgres prints them: jsonb with a blank after ':' and
',' ({"a": 1, "b": [1, 2]}), json_build_object with ' : ' between key and value; jsonb literals with their
keys in jsonb's order (shorter first, then bytewise) and duplicates dropped; aggregate FILTERs moved onto the
aggregate inside to_json(list(...)).
"""

from __future__ import annotations

import json

from sqlglot import exp

from bemidb.server.sql.nodes import call

# A JSON text's strings and plain characters up to the next separator; a separator inside a string is never
# reached on its own, so only structural ':' and ',' get their blank (RE2, no look-behind needed).
_UP_TO_COLON = r'((?:"(?:[^"\\]|\\.)*"|[^",:])*):'
_UP_TO_COMMA = r'((?:"(?:[^"\\]|\\.)*"|[^",])*),'

JSONB_SPACED = frozenset(("jsonb_build_object", "jsonb_build_array", "json_build_array", "jsonb_agg", "json_agg",
                          "jsonb_object_agg"))
JSON_OBJECT_SPACED = frozenset(("json_build_object",))


def spaced(value: exp.Expression, colon: str = ": ") -> exp.Expression:
    text = exp.Cast(this=value, to=exp.DataType.build("VARCHAR"))
    text = call("regexp_replace", text, exp.Literal.string(_UP_TO_COLON), exp.Literal.string("\\1" + colon),
                exp.Literal.string("g"))
    text = call("regexp_replace", text, exp.Literal.string(_UP_TO_COMMA), exp.Literal.string("\\1, "),
                exp.Literal.string("g"))
    return exp.Cast(this=text, to=exp.DataType.build("JSON"))


def for_function(name: str, rewritten: exp.Expression) -> exp.Expression:
    if name in JSONB_SPACED:
        return spaced(rewritten)
    if name in JSON_OBJECT_SPACED:
        return spaced(rewritten, " : ")
    return rewritten


def _jsonb_order(value):
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return {k: _jsonb_order(value[k]) for k in keys}
    if isinstance(value, list):
        return [_jsonb_order(v) for v in value]
    return value


def order_keys(node: exp.Anonymous) -> None:
    """jsonb_build_object('min', 1, 'max', 2): jsonb keeps its keys shorter first, then bytewise, the last of
    a duplicated key; done here when every key is a literal."""
    args = node.expressions
    if len(args) % 2 or not all(isinstance(k, exp.Literal) and k.is_string for k in args[::2]):
        return
    pairs = {k.this: (k, v) for k, v in zip(args[::2], args[1::2], strict=True)}
    ordered = sorted(pairs, key=lambda k: (len(k.encode()), k.encode()))
    node.set("expressions", [part for key in ordered for part in pairs[key]])


def jsonb_literal(text: str) -> str | None:
    """'{"b":1,"a":2}'::jsonb -> '{"a": 2, "b": 1}'; None when it is not JSON or holds numbers whose text
    Python would change (1.50, 1e3: jsonb keeps numeric's text)."""
    try:
        value = json.loads(text, parse_float=lambda s: _Keep(s), parse_int=lambda s: _Keep(s))
    except ValueError:
        return None
    return _dump(_jsonb_order(value))


class _Keep(str):
    """A number kept as its own text."""


def _dump(value) -> str:
    if isinstance(value, _Keep):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(json.dumps(k, ensure_ascii=False) + ": " + _dump(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_dump(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def filtered_aggregate(node: exp.Filter) -> exp.Expression:
    """jsonb_agg(x) FILTER (WHERE c), already to_json(list(x)): DuckDB wants the FILTER on list(x)."""
    inner = node.this
    if isinstance(inner, exp.AggFunc):
        return node
    aggregate = inner.find(exp.ArrayAgg)
    if aggregate is None:
        return node
    aggregate.replace(exp.Filter(this=aggregate.copy(), expression=node.expression))
    return inner
