"""String and bytea functions whose Postgres meaning DuckDB spells differently: format() with %s %I %L,
positions (%2$s) and widths; encode/decode (hex, base64); convert_from/convert_to; octet_length; comparisons
with a decimal literal (Postgres compares a real with 3.14 in double precision, never in single); LIKE/ILIKE
ANY (ARRAY[...]).
"""

from __future__ import annotations

import re

from sqlglot import exp

from bemidb.server.sql.nodes import call, call_macro, is_json, pg_array_items

_SPEC = re.compile(r"%(?:(\d+)\$)?(-)?(\d+)?([sIL%])")


def format_call(node: exp.Format) -> exp.Expression | None:
    """format('Hello %s, %1$I', a) -> concat of its pieces; None when the template is not a literal or uses
    what is not read here (* widths)."""
    template = node.this
    if not (isinstance(template, exp.Literal) and template.is_string):
        return None
    text, args = template.this, list(node.expressions)
    if "%*" in text:
        return None
    parts: list[exp.Expression] = []
    position, next_arg = 0, 0
    for m in _SPEC.finditer(text):
        if m.start() > position:
            parts.append(exp.Literal.string(text[position:m.start()]))
        position = m.end()
        index, left, width, kind = m.groups()
        if kind == "%":
            parts.append(exp.Literal.string("%"))
            continue
        arg_index = int(index) - 1 if index else next_arg
        next_arg = arg_index + 1
        if arg_index >= len(args):
            return None  # Postgres: "too few arguments for format()"
        parts.append(_padded(_formatted(args[arg_index].copy(), kind), int(width) if width else 0, bool(left)))
    if position < len(text):
        parts.append(exp.Literal.string(text[position:]))
    if not parts:
        return exp.Literal.string("")
    return call("concat", *parts)


def _formatted(arg: exp.Expression, kind: str) -> exp.Expression:
    if kind == "I":
        return call_macro("quote_ident", exp.Cast(this=arg, to=exp.DataType.build("VARCHAR")))
    if kind == "L":
        return call_macro("quote_nullable", arg)
    return call("coalesce", exp.Cast(this=arg, to=exp.DataType.build("VARCHAR")), exp.Literal.string(""))


def _padded(value: exp.Expression, width: int, left: bool) -> exp.Expression:
    if not width:
        return value
    # Postgres pads to the width and never truncates; DuckDB's lpad/rpad truncate, hence greatest().
    size = exp.Cast(this=call("greatest", exp.Literal.number(width), call("length", value.copy())),
                    to=exp.DataType.build("INTEGER"))
    return call("rpad" if left else "lpad", value, size, exp.Literal.string(" "))


def _charset(node: exp.Expression) -> str:
    charset = node.args.get("charset")
    return charset.this.lower() if isinstance(charset, exp.Literal) else ""


def encode_decode(node: exp.Encode | exp.Decode) -> exp.Expression | None:
    charset = _charset(node)
    if isinstance(node, exp.Encode):
        if charset == "hex":
            return exp.Lower(this=call("hex", node.this))
        if charset == "base64":
            return call("to_base64", node.this)
        if charset == "escape":
            return call_macro("bemidb_encode_escape", node.this)
        return None
    if charset == "hex":
        return call("unhex", node.this)
    if charset == "base64":
        return call("from_base64", node.this)
    return None


def regexp_match(value: exp.Expression, pattern: exp.Expression) -> exp.Expression | None:
    """regexp_match(s, 'a(b)(c)'): the first match's groups as text[] (the whole match without groups), NULL
    when nothing matches; the pattern must be a literal (its groups are counted here)."""
    if not (isinstance(pattern, exp.Literal) and pattern.is_string):
        return None
    groups = len(re.findall(r"(?<!\\)\((?!\?)", pattern.this))
    parts = [call("regexp_extract", value.copy(), pattern.copy(), exp.Literal.number(g))
             for g in (range(1, groups + 1) if groups else [0])]
    return exp.Case(ifs=[exp.If(this=call("regexp_matches", value.copy(), pattern.copy()),
                                true=exp.Array(expressions=parts))], default=exp.Null())


def _is_bytes(node: exp.Expression) -> bool:
    if isinstance(node, exp.Cast):
        return node.args["to"].this in (exp.DataType.Type.VARBINARY, exp.DataType.Type.BINARY) or \
            node.args["to"].sql("postgres").lower() == "bytea"
    return isinstance(node, exp.SHA2Digest | exp.Decode)


def string_function(name: str, args: list[exp.Expression]) -> exp.Expression | None:
    """octet_length / convert_from / convert_to; None to leave the call alone."""
    if name == "octet_length" and len(args) == 1:
        return call("octet_length" if _is_bytes(args[0]) else "strlen", args[0])
    if name == "convert_from" and args:
        return call("decode", args[0])
    if name == "convert_to" and args:
        return call("encode", args[0])
    return None


def byte_length(node: exp.Length) -> exp.Expression | None:
    return call("octet_length", node.this) if _is_bytes(node.this) else None


COMPARISONS = (exp.EQ, exp.NEQ, exp.LT, exp.GT, exp.LTE, exp.GTE)


def _decimal_literal(node: exp.Expression) -> bool:
    if not (isinstance(node, exp.Literal) and not node.is_string):
        return False
    text = node.this
    digits = re.sub(r"[^0-9]", "", text.split("e")[0].split("E")[0]).lstrip("0")
    return ("." in text or "e" in text.lower()) and len(digits) <= 15


def comparison(node: exp.Expression) -> exp.Expression:
    """real_col = 3.14: Postgres compares in double precision (false for 3.14::real); DuckDB would cast the
    literal to real (true). A decimal literal against a non-literal becomes a DOUBLE, which keeps integer and
    numeric comparisons exact for literals of up to 15 significant digits."""
    left, right = node.this, node.expression
    for side, other in (("this", right), ("expression", left)):
        value = node.args.get(side)
        if isinstance(other, exp.Literal):
            continue
        if _decimal_literal(value) or (isinstance(value, exp.Literal) and value.is_string and
                                       value.this in ("NaN", "Infinity", "-Infinity")):
            node.set(side, exp.Cast(this=value, to=exp.DataType.build("DOUBLE")))
        elif isinstance(value, exp.Literal) and value.is_string and re.fullmatch(r"\\x([0-9a-fA-F]{2})+",
                                                                                    value.this):
            node.set(side, call("unhex", exp.Literal.string(value.this[2:])))  # bytea_col = '\x00ff'
        elif isinstance(value, exp.Literal) and value.is_string and value.this.startswith("{") and \
                not is_json(value.this):
            listed = duckdb_list_text(value.this)  # int_array_col = '{1,2}': DuckDB reads '[1, 2]'
            if listed is not None:
                value.set("this", listed)
    return node


def duckdb_list_text(text: str) -> str | None:
    items = pg_array_items(text)
    if items is None:
        return None
    return "[" + ", ".join("NULL" if v is None else "'" + v.replace("'", "''") + "'" for v in items) + "]"


def _backslash_escape(node: exp.Expression) -> exp.Expression:
    """Postgres's LIKE takes \\ as its escape unless told otherwise (JDBC's and DBeaver's name patterns escape _
    so: 'order\\_items'); DuckDB's has none."""
    return exp.Escape(this=node, expression=exp.Literal.string("\\"))


def like_any(node: exp.Like | exp.ILike) -> exp.Expression:
    """x ILIKE ANY (ARRAY['a%', 'b%']) -> (x ILIKE 'a%' OR x ILIKE 'b%'); a LIKE without ESCAPE escapes with \\."""
    escaped = isinstance(node.parent, exp.Escape)
    target = node.expression
    if not isinstance(target, exp.Any):
        return node if escaped else _backslash_escape(node)
    array = target.this.this if isinstance(target.this, exp.Paren) else target.this
    if not isinstance(array, exp.Array) or not array.expressions:
        return node
    tests = [node.__class__(this=node.this.copy(), expression=item) for item in array.expressions]
    tests = tests if escaped else [_backslash_escape(test) for test in tests]
    combined = tests[0]
    for test in tests[1:]:
        combined = exp.Or(this=combined, expression=test)
    return exp.Paren(this=combined)
