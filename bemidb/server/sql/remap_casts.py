"""CASTS: ::regclass, ::regtype, ::oid, ::name, ::jsonb, '{a,b}'::text[] ... -> what they mean in DuckDB.
"""

from __future__ import annotations

import decimal
import re

from sqlglot import exp

from bemidb.server.sql.nodes import TYPE_MAP, array_literal, call_macro, is_text_input, type_name
from bemidb.server.sql.remap_json import jsonb_literal

_REG_TYPES = {"regclass", "regtype", "regproc", "regprocedure", "regnamespace", "regrole", "regoper",
              "regoperator", "regconfig", "regdictionary", "regcollation"}


def _literal_decimal(text: str) -> exp.DataType | None:
    """The DECIMAL holding a numeric literal's value at its own scale ('1e3' -> scale 0, '1.0e-5' -> 6)."""
    try:
        value = decimal.Decimal(text.strip())
    except decimal.InvalidOperation:
        return None
    if not value.is_finite():
        return None
    scale = max(0, -value.as_tuple().exponent)
    digits = max(len(value.as_tuple().digits) + max(0, value.as_tuple().exponent), scale + 1)
    return exp.DataType.build(f"DECIMAL(38, {scale})") if digits <= 38 and scale <= 38 else None


def cast(node: exp.Cast) -> exp.Expression:
    target = type_name(node.args["to"])
    inner = node.this
    if target in ("regclass",):
        if is_text_input(inner):
            return call_macro("bemidb_regclass", inner)
        if isinstance(inner, exp.Literal):  # 16385::regclass
            return call_macro("bemidb_regclass_name", inner)
        return call_macro("bemidb_regclass_name", inner)
    if target in ("regtype",):
        return call_macro("bemidb_regtype", inner) if is_text_input(inner) else call_macro("bemidb_regtype_name", inner)
    if target == "regnamespace":
        return call_macro("bemidb_regnamespace", inner) if is_text_input(inner) else call_macro(
            "bemidb_regnamespace_name", inner)
    if target == "regrole":
        return exp.Literal.number(10) if is_text_input(inner) else call_macro("pg_get_userbyid", inner)
    if target in ("regproc", "regprocedure", "regoper", "regoperator", "regconfig", "regdictionary",
                  "regcollation"):
        return call_macro("bemidb_regproc", inner) if is_text_input(inner) else exp.Cast(
            this=inner, to=exp.DataType.build("VARCHAR"))
    if target == "oid" and isinstance(inner, exp.Dot) and isinstance(inner.expression, exp.Anonymous) and \
            inner.expression.name.startswith("bemidb_reg") and not inner.expression.name.endswith("_name"):
        return inner  # 'x'::regclass::oid: the lookup already gives the OID
    if target == "jsonb" and isinstance(inner, exp.Literal) and inner.is_string:
        normalized = jsonb_literal(inner.this)
        if normalized is not None:
            inner.set("this", normalized)  # jsonb prints its own normal form: sorted keys, blanks
    to = node.args["to"]
    if target in ("numeric", "decimal") and isinstance(inner, exp.Cast) and \
            inner.args["to"].this == exp.DataType.Type.DECIMAL and inner.args["to"].expressions:
        return inner  # div(a, b), already a DECIMAL of scale 0: no DuckDB default DECIMAL(18,3) around it
    if isinstance(to, exp.DataType) and to.this in (exp.DataType.Type.VARCHAR, exp.DataType.Type.CHAR) and \
            to.expressions:
        # an explicit cast to varchar(n) truncates in Postgres; DuckDB ignores the length
        size = node.args["to"].expressions[0]
        size = size.this if isinstance(size, exp.DataTypeParam) else size
        return exp.Cast(this=exp.Anonymous(this="left", expressions=[
            exp.Cast(this=inner, to=exp.DataType.build("VARCHAR")), size.copy()]), to=exp.DataType.build("VARCHAR"))
    if target in ("numeric", "decimal") and isinstance(inner, exp.Literal) and not to.expressions:
        exact = _literal_decimal(inner.this)  # '1.50'::numeric, 1e3::numeric keep their digits, as Postgres's
        if exact is not None:
            return exp.Cast(this=inner if inner.is_string else exp.Literal.string(inner.this), to=exact)
    if target in ("numeric", "decimal") and isinstance(inner, exp.Literal) and inner.is_string and \
            inner.this.strip().lower() in ("nan", "infinity", "-infinity", "inf", "-inf"):
        # DuckDB's DECIMAL has no NaN or infinities: a result column gets Postgres's text of it, anything
        # computed from it a DOUBLE
        item = node.parent.parent if isinstance(node.parent, exp.Alias) else node.parent
        top = isinstance(item, exp.Select) or (item is None and isinstance(node.parent, exp.Alias))  # named
        if top and node.arg_key in ("expressions", "this"):
            word = inner.this.strip().lower().lstrip("-")
            text = "NaN" if word == "nan" else ("-" if inner.this.strip().startswith("-") else "") + "Infinity"
            return exp.Literal.string(text)
        return exp.Cast(this=inner, to=exp.DataType.build("DOUBLE"))
    if target == "bytea" and isinstance(inner, exp.Literal) and inner.is_string and \
            re.fullmatch(r"\\x([0-9a-fA-F]{2})*", inner.this):
        return exp.Anonymous(this="unhex", expressions=[exp.Literal.string(inner.this[2:])])  # '\x00ff'::bytea
    if target in ("time", "time without time zone") and \
            not isinstance(inner, exp.Literal | exp.Null | exp.Placeholder | exp.Parameter):
        return call_macro("bemidb_time", inner)  # timestamptz::time: DuckDB has no such cast
    if target == "bytea" and not isinstance(inner, exp.Literal | exp.Null | exp.Placeholder | exp.Parameter):
        return call_macro("bemidb_bytea", inner)  # text_col::bytea: Postgres's bytea input, not DuckDB's
    if target.endswith("[]") and isinstance(inner, exp.Literal) and inner.is_string:
        array = array_literal(inner.this, target[:-2])
        if array is not None:
            return array
    if target in ("text", "varchar", "character varying") and isinstance(inner, exp.Dot) and \
            isinstance(inner.expression, exp.Anonymous) and inner.expression.name.startswith("bemidb_reg"):
        fn = inner.expression.name
        # x::regclass::text: the name ('t'::regclass::text too, after the lookup)
        return inner if fn.endswith("_name") or fn == "bemidb_regproc" else call_macro(fn + "_name", inner)
    if target in ("text", "varchar", "character varying") and not isinstance(inner, exp.Literal | exp.Null) and \
            not (isinstance(to, exp.DataType) and to.expressions):
        return call_macro("bemidb_text", inner)  # printed as Postgres prints the value, not as DuckDB casts it
    mapped = TYPE_MAP.get(target)
    if mapped is None and target.endswith("[]") and target[:-2] in TYPE_MAP:
        mapped = TYPE_MAP[target[:-2]] + "[]"
    if mapped is not None:
        node.set("to", exp.DataType.build(mapped, dialect="duckdb"))
    elif isinstance(node.args["to"], exp.DataType) and node.args["to"].this == exp.DataType.Type.USERDEFINED:
        node.set("to", exp.DataType.build(target, dialect="postgres"))  # pg_catalog.int4 -> int4
    return node
