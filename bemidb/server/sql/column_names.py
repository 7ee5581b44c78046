"""Result column names: Postgres names an unaliased expression after its function, cast type or column
("count", "current_schema", "int4", "?column?"); DuckDB after its text ("count_star()"). Clients read
columns by name, so the Postgres names are given as aliases before the tree is rewritten. Unquoted aliases are
folded to lower case, as Postgres folds every unquoted identifier.
"""

from __future__ import annotations

import re

from sqlglot import exp

from bemidb.server.catalog import pg_types
from bemidb.server.sql.nodes import type_name

_OPAQUE = (exp.Literal, exp.Null, exp.Binary, exp.Unary, exp.Not, exp.Bracket, exp.Any, exp.All, exp.Between,
           exp.In, exp.Is, exp.Like, exp.ILike, exp.SimilarTo, exp.Operator, exp.Boolean,
           exp.JSONExtract, exp.JSONExtractScalar, exp.JSONBExtract, exp.JSONBExtractScalar, exp.JSONBContains)

# sqlglot parses several Postgres functions into one node; which name the statement used decides the column
# name: (node class, ((pattern in the statement, name), ...), name when none matches).
_SPELLINGS: dict[type, tuple[tuple[tuple[str, str], ...], str]] = {
    exp.Substring: ((("substr", "substr"),), "substring"),
    exp.Length: ((("char_length", "char_length"), ("character_length", "character_length")), "length"),
    exp.StrPosition: ((("strpos", "strpos"),), "position"),
    exp.Extract: ((("date_part", "date_part"),), "extract"),
    exp.Variance: ((("variance", "variance"),), "var_samp"),
    exp.Stddev: ((("stddev", "stddev"),), "stddev_samp"),
    exp.Mod: ((("mod", "mod"),), "?column?"),
    exp.IntDiv: ((("div", "div"),), "?column?"),
    exp.Hex: ((), "to_hex"),
    exp.Ceil: ((("ceiling", "ceiling"),), "ceil"),
    exp.StartsWith: ((("starts_with", "starts_with"),), "?column?"),
    exp.Pow: ((("power", "power"), ("pow", "pow")), "?column?"),
    exp.Sqrt: ((("sqrt", "sqrt"),), "?column?"),
    exp.Cbrt: ((("cbrt", "cbrt"),), "?column?"),
    exp.Corr: ((), "corr"),
    exp.ArrayPosition: ((), "array_position"),
    exp.PercentileCont: ((), "percentile_cont"),
    exp.PercentileDisc: ((), "percentile_disc"),
}
_TRIMS = {"TRAILING": "rtrim", "LEADING": "ltrim"}
_WRAPPERS = (exp.Window, exp.WithinGroup, exp.Filter)


def _spelled(node: exp.Expression, text: str) -> str | None:
    if isinstance(node, exp.Extract) and (spelled := _spelled_before(node, text)):
        return spelled
    for cls, (patterns, default) in _SPELLINGS.items():
        if type(node) is cls:
            for word, name in patterns:
                if re.search(rf"\b{word}\s*\(", text, re.I):
                    return name
            return default
    return None


def _spelled_before(node: exp.Extract, text: str) -> str | None:
    """extract(... from x) or date_part('...', x): the spelling nearest before x's position in the statement
    (sqlglot keeps the positions of identifiers only), when x has one."""
    start = next((n.meta["start"] for n in node.walk() if isinstance(n, exp.Identifier) and "start" in n.meta),
                 None)
    if start is None:
        return None
    found = list(re.finditer(r"\b(extract|date_part)\s*\(", text[:start], re.I))
    return found[-1].group(1).lower() if found else None


def _colname(node: exp.Expression, text: str) -> str | None:
    """What Postgres calls an unaliased select item, or None to leave DuckDB's name (plain columns, *)."""
    if isinstance(node, exp.Column | exp.Star):
        return None
    if isinstance(node, exp.Subquery):
        inner = node.this
        if isinstance(inner, exp.Select) and inner.expressions:
            first = inner.expressions[0]
            return first.alias_or_name if isinstance(first, exp.Alias | exp.Column) else \
                (_colname(first, text) or "?column?")
        return None
    if isinstance(node, exp.Paren):
        return _colname(node.this, text)
    if isinstance(node, _WRAPPERS):
        return _colname(node.this, text)
    if isinstance(node, exp.Bracket) and isinstance(node.this, exp.Column):
        return node.this.name  # arr[1] is named after its column
    spelled = _spelled(node, text)
    if spelled is not None:
        return spelled
    if isinstance(node, exp.Trim):
        return _TRIMS.get(str(node.args.get("position") or "").upper(), "btrim")
    if isinstance(node, exp.Cast):
        return _cast_name(node, text)[0]
    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
        return _colname(node.expression, text)
    if isinstance(node, exp.Case):
        return _cast_name(node, text)[0]
    if isinstance(node, exp.Array):
        return "array"
    if isinstance(node, exp.Exists):
        return "exists"
    if isinstance(node, exp.Interval):
        return "interval"
    if isinstance(node, exp.AtTimeZone):
        return "timezone"
    if isinstance(node, _OPAQUE):
        return "?column?"
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    if isinstance(node, exp.Func):
        name = node.sql("postgres").split("(", 1)[0].strip().lower()
        return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else "?column?"
    return None


def _cast_name(node: exp.Expression, text: str) -> tuple[str | None, int]:
    """(name, strength) as Postgres's FigureColnameInternal figures them: a cast keeps the name of what it casts
    when that name is strong (2: a column, a call, ARRAY[...], ROW(...)), else is named after its own type (1);
    CASE is weak (1) unless its ELSE has a strong name, which it then takes; a constant, a parameter or an
    operator has no name (0). So x::a::b is named after x when x is a column or a call, and (CASE ... END)::text
    or ('...'::timestamptz)::date::text after the outermost type. Parentheses are no node in Postgres's tree."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Cast):
        name, strength = _cast_name(node.this, text)
        return (name, strength) if strength > 1 else (_type_name(node.args["to"]), 1)
    if isinstance(node, exp.Case):  # named after its ELSE when that name is strong
        default = node.args.get("default")
        name, strength = _cast_name(default, text) if default is not None else (None, 0)
        return (name, strength) if strength > 1 else ("case", 1)
    if isinstance(node, exp.Column):
        return node.name, 2
    name = _colname(node, text)
    if isinstance(node, exp.Subquery):  # (SELECT 1)::text keeps the subquery's column name, even ?column?
        return name, 2
    if name in (None, "?column?"):
        return None, 0
    return name, 2


def _type_name(to: exp.DataType) -> str:
    target = type_name(to)
    kind = to.args.get("kind")
    if isinstance(kind, exp.Identifier) and kind.args.get("quoted"):
        return kind.name  # ::"char" is named char (unquoted, char would be bpchar)
    parsed = pg_types.parse_type_name(target)
    return pg_types.element_of(parsed[0]).name if parsed else target.split(".")[-1].rstrip("[]")


def postgres_name(node: exp.Expression, text: str = "") -> str | None:
    """The name Postgres gives an unaliased `node` (a function's own name for calls), or None for a column."""
    return _colname(node, text)


def name_values(tree: exp.Expression) -> None:
    """FROM (VALUES ...) v: Postgres names the columns column1, column2 ... (DuckDB col0, col1 ...)."""
    for values in tree.find_all(exp.Values):
        alias = values.args.get("alias")
        if not values.expressions or not isinstance(values.expressions[0], exp.Tuple) or \
                (alias is not None and alias.columns):
            continue
        width = len(values.expressions[0].expressions)
        columns = [exp.to_identifier(f"column{i + 1}") for i in range(width)]
        if alias is None:
            if not isinstance(values.parent, exp.From | exp.Join | exp.Subquery):
                continue
            alias = exp.TableAlias(this=exp.to_identifier("values"))
            values.set("alias", alias)
        alias.set("columns", columns)


def name_columns(tree: exp.Expression, text: str = "") -> None:
    name_values(tree)
    for select in tree.find_all(exp.Select):
        items = select.expressions
        for i, item in enumerate(items):
            if isinstance(item, exp.Alias):
                alias = item.args.get("alias")
                if isinstance(alias, exp.Identifier) and not alias.quoted:
                    item.set("alias", exp.to_identifier(alias.name.lower(), quoted=True))
                continue
            name = _colname(item, text)
            if name is not None:
                items[i] = exp.alias_(item, name, quoted=True)
