"""Which synced table column each result column is, so RowDescription can carry the source column's type OID,
typmod, table OID and column number as Postgres does (JDBC's ResultSetMetaData, ORMs, typed drivers).

`origins(tree)` runs once per statement text (the translation is cached) on the Postgres tree, following
aliases, subqueries and CTEs with sqlglot's scopes. It names candidate tables, not resolved ones: which schema
an unqualified name means, and which of the FROM tables has an unqualified column, is decided at describe time
by `resolve` against the tables being served (they may change while the translation stays cached).
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.scope import Scope, build_scope

from bemidb.server.catalog import pg_types
from bemidb.server.sql import result_types
from bemidb.server.sql.column_names import postgres_name

# One result column: ("column", ((schema or "", table, column), ...)) candidates in FROM order;
# ("star", ((schema or "", table), ...)) for * / t.* over tables; ("typed", Postgres type) for a cast or a
# function of a fixed result type (result_types.py); ("like", origin) for the type of another origin, typmod
# dropped (min(x), coalesce(x, ...)); None when Arrow's type decides.
Origin = tuple | None


class UnconstrainedNumeric(str):
    """The type text of a result that is a `numeric` column without (p,s), or the same value through -x, abs,
    min/max, + or - an integer, or ::text. Postgres prints each such value with the scale it was typed with;
    the stored decimal has the column's largest scale, so the result is printed with trailing zeros trimmed
    (protocol/source_values.py)."""


class PaddedChar(str):
    """The type text ('character') of a char(n) column's values through min/max: Postgres keeps
    their blank padding to n though the result type has no typmod; the stored values are trimmed."""

    width: int = 0

    def __new__(cls, text: str, width: int) -> PaddedChar:
        value = super().__new__(cls, text)
        value.width = width
        return value


class InetText(str):
    """The type text ('text') of inet::text: Postgres writes the prefix length even of a host address
    ('192.168.0.1/32'); the stored inet text (its output form) omits it."""


_INTEGER_TYPES = ("int2", "int4", "int8")


def origins(tree: exp.Expression, text: str = "") -> tuple[Origin, ...]:
    """`text`: the statement as written (which spelling of a function it used decides its type)."""
    if not isinstance(tree, exp.Select):
        return ()
    try:
        tree = normalize_identifiers(tree.copy(), dialect="postgres")
        scope = build_scope(tree)
    except Exception:  # noqa: BLE001 - lineage is a description nicety; never fail a query over it
        return ()
    if scope is None:
        return ()
    return tuple(_origin(scope, item, 0, text) for item in tree.expressions)


def _origin(scope: Scope, item: exp.Expression, depth: int, text: str) -> Origin:
    node = item.this if isinstance(item, exp.Alias) else item
    while isinstance(node, exp.Paren):
        node = node.this
    if depth > 8:
        return None
    if not isinstance(node, exp.Column | exp.Star):
        return _computed(scope, node, depth, text)
    if isinstance(node, exp.Star):
        return _star(list(scope.sources.values()), depth, text)
    if not isinstance(node, exp.Column):
        return None
    if isinstance(node.this, exp.Star):
        source = scope.sources.get(node.table)
        return _star([source], depth, text) if source is not None else None
    sources = [scope.sources[node.table]] if node.table in scope.sources else \
        ([] if node.table else list(scope.sources.values()))
    candidates: list[tuple] = []
    for source in sources:
        if isinstance(source, exp.Table):
            candidates.append((source.db, source.name, node.name))
        elif isinstance(source, Scope) and isinstance(source.expression, exp.Select):
            for inner in source.expression.expressions:
                if inner.alias_or_name == node.name:
                    found = _origin(source, inner, depth + 1, text)
                    if found and found[0] == "column":
                        candidates.extend(found[1])
                    elif found and len(sources) == 1:
                        return found  # a computed column of a subquery or CTE keeps its type
                    break
    return ("column", tuple(candidates)) if candidates else None


def _computed(scope: Scope, node: exp.Expression, depth: int, text: str) -> Origin:
    if isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit():
        return "typed", "int4" if int(node.this) < 2**31 else "int8" if int(node.this) < 2**63 else "numeric"
    if isinstance(node, exp.Cast):
        to = node.args["to"].sql("postgres").lower()
        if to in ("text", "varchar"):  # numeric::text prints the value's own scale too
            inner = _origin(scope, node.this, depth + 1, text)
            return ("as_text", inner, to) if inner else ("typed", to)
        return "typed", "numeric" if to == "decimal" else to  # ::numeric (sqlglot: DECIMAL)
    if type(node).__name__ in result_types.JSON_SAME_AS_LEFT:
        left = _origin(scope, node.this, depth + 1, text)
        if left is None and isinstance(node, exp.DPipe):  # '[0]' || jsonb_col
            left = _origin(scope, node.expression, depth + 1, text)
        return ("json_like", left) if left else None
    if isinstance(node, exp.Sub) and isinstance(node.expression, exp.Literal) and node.expression.is_string:
        left = _origin(scope, node.this, depth + 1, text)  # jsonb - 'key' is jsonb
        return ("json_like", left) if left else None
    if isinstance(node, exp.Neg):
        inner = _origin(scope, node.this, depth + 1, text)
        return ("like", inner) if inner else None  # -smallint_col is smallint
    if isinstance(node, exp.Binary) and any(key[1] == type(node).__name__ for key in result_types.OPERATORS):
        left = _origin(scope, node.this, depth + 1, text)
        right = _origin(scope, node.expression, depth + 1, text)
        return ("operator", type(node).__name__, left, right) if left and right else None
    if not isinstance(node, exp.Func | exp.Window | exp.WithinGroup | exp.Filter):
        return None
    name = postgres_name(node, text)
    if name in result_types.FIXED:
        return "typed", result_types.FIXED[name]
    if name == "generate_series" and isinstance(node, exp.Func) and all(
            isinstance(a, exp.Literal) and not a.is_string and a.this.lstrip("-").isdigit() and
            abs(int(a.this)) < 2**31 for a in node.iter_expressions()):
        return "typed", "int4"  # generate_series(1, 3): integer, not DuckDB's BIGINT
    if name == "array_agg" and isinstance(node, exp.ArrayAgg | exp.Filter):
        call = node.this if isinstance(node, exp.Filter) else node
        first = call.this.this if isinstance(call.this, exp.Order) else call.this
        first = first.expressions[0] if isinstance(first, exp.Distinct) and len(first.expressions) == 1 else first
        inner = _origin(scope, first, depth + 1, text) if isinstance(first, exp.Expression) else None
        return ("array_like", inner) if inner else None
    if name in result_types.BY_ARGUMENT:
        call = node
        while isinstance(call, exp.Window | exp.Filter):
            call = call.this
        inner = _origin(scope, call.this, depth + 1, text) if isinstance(call.this, exp.Expression) else None
        return ("by_argument", inner, name) if inner else None
    if name in result_types.SAME_AS_FIRST_ARGUMENT:
        call = node
        while isinstance(call, exp.Window | exp.WithinGroup | exp.Filter):
            call = call.this
        first = call.expressions[0] if isinstance(call, exp.Anonymous) and call.expressions else call.this
        if isinstance(call, exp.Mode) or isinstance(node, exp.WithinGroup):
            ordered = node.find(exp.Ordered)
            first = ordered.this if ordered is not None else None
        if isinstance(first, exp.Expression):
            inner = _origin(scope, first, depth + 1, text)
            if inner and name in result_types.AGGREGATES:
                return "aggregate_like", inner
            return ("like", inner) if inner else None
    return None


def expression_origin(scope: Scope, node: exp.Expression, text: str = "") -> Origin:
    """The origin of any expression of `scope` (an operand, an aggregate's argument), as for a result column."""
    return _origin(scope, node, 0, text)


def resolve_one(origin: Origin, lookup) -> tuple[str, int, int] | None:
    """One origin -> (source Postgres type, table OID, attnum) or None, as `resolve` does per column."""
    return _one(origin, lookup)


def plain_type(pg_type: str) -> str:
    """'numeric(10,2)' -> 'numeric', 'double precision' -> 'float8', 'integer[]' -> '_int4'."""
    return _plain(pg_type)


def _star(sources: list, depth: int, text: str) -> Origin:
    """* over tables, subqueries and CTEs: ("star", parts), each part a table (schema, name) or ("columns",
    origins of a subquery's select list)."""
    parts: list[tuple] = []
    for source in sources:
        if isinstance(source, exp.Table):
            parts.append((source.db, source.name))
        elif isinstance(source, Scope) and isinstance(source.expression, exp.Select):
            inner = [_origin(source, item, depth + 1, text) for item in source.expression.expressions]
            parts.append(("columns", tuple(inner)))
        else:
            return None
    return ("star", tuple(parts)) if parts else None


def resolve(found: tuple[Origin, ...], lookup, count: int) -> list[tuple[str, int, int] | None]:
    """Per result column (source Postgres type, table OID, attnum) or None. `lookup(schema, table)` gives
    (table OID, {column: (attnum, pg_type)}) of a served table or None; `count` is the result's width (when a
    star cannot be expanded to exactly that many columns, nothing is described from the source)."""
    out: list[tuple[str, int, int] | None] = []
    for origin in found:
        if origin is None or origin[0] != "star":
            out.append(_one(origin, lookup))
        else:
            for schema, table in origin[1]:
                if schema == "columns":  # * over a subquery or CTE: its own columns, a star among them too
                    out.extend(resolve(table, lookup, -1))
                    continue
                table_found = lookup(schema, table)
                if table_found is None:
                    return [None] * count
                oid, columns = table_found
                out.extend((pg_type, oid, attnum) for attnum, pg_type in sorted(columns.values()))
    return out if len(out) == count or count < 0 else [None] * count


def _one(origin: Origin, lookup) -> tuple[str, int, int] | None:
    if origin is None:
        return None
    kind = origin[0]
    if kind == "operator":
        left, right = _one(origin[2], lookup), _one(origin[3], lookup)
        if left is None or right is None:
            return None
        key = (_plain(left[0]), origin[1], _plain(right[0]))
        if origin[1] in ("Add", "Sub") and _unconstrained_sum(left[0], right[0]):
            return UnconstrainedNumeric("numeric"), 0, 0
        return (result_types.OPERATORS[key], 0, 0) if key in result_types.OPERATORS else None
    if kind == "column":
        return _first_column(origin[1], lookup)
    if kind == "typed":
        return origin[1], 0, 0
    inner = _one(origin[1], lookup)
    if kind == "as_text":
        if inner and isinstance(inner[0], UnconstrainedNumeric):
            return UnconstrainedNumeric(origin[2]), 0, 0
        return (InetText(origin[2]) if inner and _plain(inner[0]) == "inet" else origin[2]), 0, 0
    if inner is None:
        return None
    pg_type = _without_typmod(inner[0])
    if kind == "json_like":
        return (pg_type, 0, 0) if pg_type in ("json", "jsonb") else None
    if kind == "array_like":
        return (pg_type if pg_type.endswith("]") else pg_type + "[]"), 0, 0
    if kind == "by_argument":
        mapped = result_types.BY_ARGUMENT[origin[2]].get(pg_type)
        return (mapped, 0, 0) if mapped else None
    if kind == "aggregate_like":
        pg_type = result_types.AGGREGATE_ARGUMENT.get(pg_type, pg_type)
    # min/max give one of the column's values; coalesce(x, 'none') may not (its 'none' is not padded)
    parsed = pg_types.parse_type_name(inner[0]) if kind == "aggregate_like" else None
    if parsed is not None and parsed[0].name == "bpchar" and parsed[1] > 4:
        return PaddedChar(pg_type, parsed[1] - 4), 0, 0
    return pg_type, 0, 0


def _unconstrained_sum(left: str, right: str) -> bool:
    """x + y or x - y keeps the larger scale: trimmed when one is an unconstrained numeric and the other an
    integer or one as well (not numeric(p,s), whose scale the result keeps)."""
    kinds = [isinstance(t, UnconstrainedNumeric) or _plain(t) in _INTEGER_TYPES for t in (left, right)]
    return all(kinds) and (isinstance(left, UnconstrainedNumeric) or isinstance(right, UnconstrainedNumeric))


def _plain(pg_type: str) -> str:
    """A type's short name for the operator table: 'date', 'timestamp without time zone' -> 'timestamp'."""
    parsed = pg_types.parse_type_name(_without_typmod(pg_type))
    return parsed[0].name if parsed else pg_type


def _without_typmod(pg_type: str) -> str:
    """'numeric(10,2)' -> 'numeric', 'character varying(20)[]' -> 'character varying[]'."""
    head, _, rest = pg_type.partition("(")
    return head + rest.partition(")")[2] if rest else pg_type


def _first_column(candidates, lookup) -> tuple[str, int, int] | None:
    for schema, table, column in candidates:
        table_found = lookup(schema, table)
        if table_found is not None and column in table_found[1]:
            attnum, pg_type = table_found[1][column]
            return pg_type, table_found[0], attnum
    return None
