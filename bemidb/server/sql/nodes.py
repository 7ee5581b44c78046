"""Small sqlglot node builders and Postgres literal readers the remap tables share: our macro calls,
Postgres type names, array literals ('{a,b}'), JSON paths, SIMILAR TO patterns.
"""

from __future__ import annotations

import json
import re

from sqlglot import exp

from bemidb.server.catalog.oids import CATALOG_SCHEMA

# Postgres-only type names -> DuckDB types.
TYPE_MAP = {"oid": "BIGINT", "xid": "BIGINT", "xid8": "UBIGINT", "cid": "BIGINT", "tid": "VARCHAR",
             "name": "VARCHAR", "char": "VARCHAR", '"char"': "VARCHAR", "bpchar": "VARCHAR", "text": "VARCHAR",
             "jsonb": "JSON", "json": "JSON", "int2vector": "SMALLINT[]", "oidvector": "BIGINT[]",
             "pg_node_tree": "VARCHAR", "aclitem": "VARCHAR", "regclass": "BIGINT", "inet": "VARCHAR",
             "cidr": "VARCHAR", "macaddr": "VARCHAR", "money": "DECIMAL(18,2)", "citext": "VARCHAR",
             "xml": "VARCHAR", "tsvector": "VARCHAR", "pg_lsn": "VARCHAR", "int2": "SMALLINT", "int4": "INTEGER",
             "int8": "BIGINT", "float4": "REAL", "float8": "DOUBLE", "bool": "BOOLEAN", "serial": "INTEGER",
             "bigserial": "BIGINT"}


def call_macro(name: str, *args: exp.Expression) -> exp.Expression:
    """bemidb_pg_catalog.name(args): our macro, schema-qualified so no user or DuckDB function shadows it."""
    return exp.Dot(this=exp.to_identifier(CATALOG_SCHEMA), expression=exp.Anonymous(this=name,
                                                                                        expressions=list(args)))


def call(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def type_name(datatype: exp.Expression) -> str:
    """Lower-case unqualified name of a cast target: 'regclass', 'text', 'int4[]' ..."""
    if isinstance(datatype, exp.ObjectIdentifier):
        return datatype.name.lower()
    if isinstance(datatype, exp.DataType):
        if datatype.this == exp.DataType.Type.USERDEFINED:
            kind = datatype.args.get("kind")
            if isinstance(kind, exp.Dot):
                return kind.expression.name.lower()
            return (kind.name if isinstance(kind, exp.Expression) else str(kind)).lower()
        if datatype.this == exp.DataType.Type.ARRAY and datatype.expressions:
            return type_name(datatype.expressions[0]) + "[]"
        return datatype.sql("postgres").lower()
    return datatype.sql("postgres").lower()


def is_text_input(node: exp.Expression) -> bool:
    """A value that Postgres would parse with the reg* input function: a string literal or a parameter."""
    return (isinstance(node, exp.Literal) and node.is_string) or isinstance(node, exp.Placeholder | exp.Parameter)


def pg_array_items(text: str) -> list[str | None] | None:
    """'{a,"b c",NULL}' -> ['a', 'b c', None]; None when it is not a one-dimensional array literal."""
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")) or "{" in text[1:-1]:
        return None
    body = text[1:-1]
    if not body.strip():
        return []
    items: list[str | None] = []
    for m in re.finditer(r'\s*(?:"((?:[^"\\]|\\.)*)"|([^,]*?))\s*(?:,|$)', body):
        if m.end() == m.start():
            break
        quoted, plain = m.group(1), m.group(2)
        if quoted is not None:
            items.append(re.sub(r"\\(.)", r"\1", quoted))
        else:
            items.append(None if plain.upper() == "NULL" else plain)
        if m.end() >= len(body):
            break
    return items


def array_literal(text: str, element_type: str | None) -> exp.Expression | None:
    items = pg_array_items(text)
    if items is None:
        return None
    numbers = element_type is None and items and all(v is None or re.fullmatch(r"-?\d{1,18}", v) for v in items)
    values = [exp.Null() if v is None else exp.Literal.number(v) if numbers else exp.Literal.string(v)
              for v in items]  # = ANY('{1,42}') against an integer column
    array = exp.Array(expressions=values)
    if element_type:
        target = TYPE_MAP.get(element_type, element_type)
        return exp.Cast(this=array, to=exp.DataType.build(f"{target}[]", dialect="duckdb"))
    return array


def is_json(text: str) -> bool:
    """'{"a":1}' is JSON, '{1,2}' is a Postgres array literal."""

    try:
        return isinstance(json.loads(text), dict | list)
    except ValueError:
        return False


def similar_to_regex(pattern: str) -> str:
    """SQL SIMILAR TO pattern -> an anchored regular expression (% -> .*, _ -> ., the rest is regex)."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append({"%": ".*", "_": ".", ".": "\\."}.get(ch, ch))
        i += 1
    return "^(?:" + "".join(out) + ")$"


def json_path(text: str) -> str:
    """Postgres text[] path '{a,0,b}' -> DuckDB JSON path '$.a[0].b'."""
    items = pg_array_items(text) or []
    path = "$"
    for item in items:
        if item is not None and re.fullmatch(r"-?\d+", item):
            path += f"[{item}]" if not item.startswith("-") else f"[#{item}]"
        else:
            path += '."' + (item or "").replace('"', '\\"') + '"'
    return path
