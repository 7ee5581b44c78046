"""pg_typeof(x) of a synced column answers the SOURCE type, as Postgres names it (rules of typed_rewrites.py):
'mood' for an enum, 'time with time zone', 'character varying', 'numeric' (typmods dropped, as regtype prints),
where DuckDB would name its storage type (an ENUM's labels, decimal(38,6), varchar)."""

from __future__ import annotations

from sqlglot import exp

from bemidb.server.catalog import pg_types
from bemidb.server.catalog.functions import format_type
from bemidb.server.sql.typed_rules import layered

_TAG = "typeof "


def _operands(node: exp.Expression) -> list:
    if isinstance(node, exp.Anonymous) and str(node.this).lower() == "pg_typeof" and len(node.expressions) == 1:
        return [node.expressions[0]]
    return []


def _choose(types: tuple) -> str | None:
    if len(types) != 1 or not types[0]:
        return None
    name = types[0]
    if name in ("bpchar", "_bpchar"):  # regtype names it so; format_type(oid, NULL) says bpchar
        return _TAG + "character" + ("[]" if name.startswith("_") else "")
    known = pg_types.BY_NAME.get(name)
    return _TAG + (format_type(known) if known is not None else name)


def _apply(node: exp.Expression, tag: str):
    if not (isinstance(node, exp.Anonymous) and str(node.this).lower() == "pg_typeof"):
        return node, node.copy(), False
    return node, exp.Literal.string(tag[len(_TAG):]), False


def with_typeof(rules: dict) -> dict:
    return layered(rules, (exp.Anonymous,), _choose, _apply, _TAG, _operands)
