"""Calls answered by the macros of catalog/functions_extra.py and functions_math.py: format() (sqlglot's
exp.Format, which DuckDB's own fmt-style format would misread) and the functions DuckDB lacks or answers
differently (parse_ident, width_bucket, justify_hours, upper, div ...)."""

from __future__ import annotations

from sqlglot import exp

from bemidb.server.catalog.functions_extra import EXTRA_MACROS, FORMAT_ARGS
from bemidb.server.catalog.functions_math import MATH_MACROS
from bemidb.server.sql import remap_strings
from bemidb.server.sql.nodes import call, call_macro

# sqlglot's own nodes for Postgres functions -> (our macro, the node's arguments in call order)
NODE_MACROS = {
    exp.WidthBucket: ("width_bucket", ("this", "min_value", "max_value", "num_buckets")),
    exp.JustifyHours: ("justify_hours", ("this",)),
    exp.JustifyDays: ("justify_days", ("this",)),
    exp.JustifyInterval: ("justify_interval", ("this",)),
    exp.Upper: ("bemidb_upper", ("this",)),
    exp.Hex: ("bemidb_to_hex", ("this",)),
    # Postgres refuses these arguments where DuckDB answers NaN or -inf
    exp.Sqrt: ("bemidb_sqrt", ("this",)),
    exp.Ln: ("bemidb_ln", ("this",)),
    exp.Log: ("bemidb_log10", ("this",)),
    exp.Pow: ("bemidb_power", ("this", "expression")),
}
NODES = (exp.Format, exp.Anonymous, exp.IntDiv, exp.Substring, exp.Div, *NODE_MACROS)


def extra_function(node: exp.Expression) -> exp.Expression:
    if type(node) in NODE_MACROS:
        name, keys = NODE_MACROS[type(node)]
        args = [node.args.get(key) for key in keys]
        extra = any(v is not None and k not in keys for k, v in node.args.items())  # log(b, x): DuckDB's own
        return call_macro(name, *args) if all(a is not None for a in args) and not extra else node
    if isinstance(node, exp.Div) and is_interval(node.this):
        return call_macro("bemidb_interval_div", node.this, node.expression)  # DuckDB has no INTERVAL // n
    if isinstance(node, exp.Anonymous) and node.name.lower() in ("num_nulls", "num_nonnulls") and node.expressions:
        test = exp.Is if node.name.lower() == "num_nulls" else lambda **kw: exp.Not(this=exp.Is(**kw))
        counts = [exp.Cast(this=test(this=a.copy(), expression=exp.Null()), to=exp.DataType.build("INTEGER"))
                  for a in node.expressions]
        total = counts[0]
        for count in counts[1:]:
            total = exp.Add(this=total, expression=count)
        return exp.Paren(this=total)
    if isinstance(node, exp.Substring) and isinstance(node.args.get("length"), exp.Neg) and \
            isinstance(node.args["length"].this, exp.Literal):
        return call("error", exp.Literal.string("negative substring length not allowed"))
    if isinstance(node, exp.IntDiv):
        # div(a, b): the quotient truncated toward zero, a numeric of scale 0 (DuckDB's // divides decimals)
        a, b = exp.Paren(this=node.this.copy()), exp.Paren(this=node.expression.copy())
        exact = exp.IntDiv(this=exp.Paren(this=exp.Sub(this=a.copy(), expression=exp.Mod(
            this=a.copy(), expression=b.copy()))), expression=b.copy())
        return exp.Cast(this=exact, to=exp.DataType.build("DECIMAL(38, 0)"))
    if isinstance(node, exp.Format):
        exact = remap_strings.format_call(node)  # a literal template: positions and widths as Postgres
        if exact is not None:
            return exact
        if len(node.expressions) <= FORMAT_ARGS:  # a template only known at run time: the macro
            return call_macro("pg_format", node.this, *node.expressions)
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        if name == "format" and node.expressions and len(node.expressions) <= FORMAT_ARGS + 1:
            return call_macro("pg_format", *node.expressions)
        if name in EXTRA_MACROS or name in MATH_MACROS:
            return call_macro(name, *node.expressions)
    return node


def is_interval(node: exp.Expression) -> bool:
    return isinstance(node, exp.Interval) or (isinstance(node, exp.Cast) and
                                              node.args["to"].this == exp.DataType.Type.INTERVAL)


def _macro_arg(node: exp.Expression, name: str) -> exp.Expression | None:
    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Anonymous) and \
            node.expression.name.lower() == name and len(node.expression.expressions) == 1:
        return node.expression.expressions[0]
    return None


# regproc columns: Postgres compares them with pg_proc.oid; here they hold the function's name
_REGPROC_COLUMNS = {"typinput", "typoutput", "typreceive", "typsend", "typmodin", "typmodout", "typanalyze",
                    "typsubscript"}


def reg_comparison(node: exp.Expression) -> exp.Expression:
    """`prorettype::regtype <> 'trigger'::regtype` (pgcli): a regtype is an OID to compare, a name only to
    print. The cast of the column became the type's name; compared with an OID, the column is compared as is.
    `pg_proc.oid = t.typreceive` (Npgsql's type loading): the regproc column holds a name, so the function is
    matched by its name (the I/O functions' names are unique)."""
    if not isinstance(node, exp.EQ | exp.NEQ):
        return node
    for mine, other in (("this", "expression"), ("expression", "this")):
        oid, regproc = node.args.get(mine), node.args.get(other)
        if isinstance(oid, exp.Column) and oid.name.lower() == "oid" and isinstance(regproc, exp.Column) and \
                regproc.name.lower() in _REGPROC_COLUMNS:
            node.set(mine, exp.column("proname", table=oid.args.get("table")))
            return node
    for mine, other in (("this", "expression"), ("expression", "this")):
        column = _macro_arg(node.args.get(mine), "bemidb_regtype_name")
        if column is not None and _macro_arg(node.args.get(other), "bemidb_regtype") is not None:
            node.set(mine, column)
    return node
