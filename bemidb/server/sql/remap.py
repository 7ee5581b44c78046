"""Transforms on a parsed Postgres query so DuckDB answers it as Postgres would. Tables, not logic:

- RELATIONS: pg_catalog.X / information_schema.X / bare catalog names -> our emulation (remap_relations.py);
- FUNCTIONS: Postgres functions DuckDB lacks or spells differently -> our macros or DuckDB equivalents (remap_functions.py);
- CASTS: ::regclass, ::regtype, ::oid, ::name, ::jsonb, '{a,b}'::text[] ... -> what they mean in DuckDB (remap_casts.py);
- operators: OPERATOR(pg_catalog.~), SIMILAR TO, COLLATE "default", jsonb #> #>> @> ? ?| ?&, = ANY('{..}').

`transform(tree)` applies all of them in one walk over the sqlglot tree.
"""

from __future__ import annotations

from sqlglot import exp

from bemidb.server.catalog.oids import (
    CATALOG_SCHEMA,
    INFO_SCHEMA,
    INFORMATION_SCHEMA_RELATIONS,
    PG_CATALOG_RELATIONS,
)
from bemidb.server.sql import remap_datetime, remap_json, remap_strings
from bemidb.server.sql.column_names import name_columns, postgres_name
from bemidb.server.sql.extra_functions import NODES as EXTRA_NODES
from bemidb.server.sql.extra_functions import extra_function, reg_comparison
from bemidb.server.sql.nodes import array_literal, call, call_macro, similar_to_regex
from bemidb.server.sql.remap_casts import cast
from bemidb.server.sql.remap_functions import TABLE_MACROS, function, json_arrow, json_operator
from bemidb.server.sql.remap_relations import cte_names, empty_subquery, relation
from bemidb.server.sql.remap_table_functions import table_functions
from bemidb.server.sql.vector_subscripts import zero_based


def _operator(node: exp.Operator) -> exp.Expression:
    op = str(node.args.get("operator", "")).split(".")[-1].strip()
    left, right = node.this, node.expression
    if op == "~":
        return exp.RegexpLike(this=left, expression=right)
    if op == "~*":
        return exp.RegexpILike(this=left, expression=right)
    if op == "!~":
        return exp.Not(this=exp.RegexpLike(this=left, expression=right))
    if op == "!~*":
        return exp.Not(this=exp.RegexpILike(this=left, expression=right))
    if op in ("=", "<>", "<", ">", "<=", ">="):
        cls = {"=": exp.EQ, "<>": exp.NEQ, "<": exp.LT, ">": exp.GT, "<=": exp.LTE, ">=": exp.GTE}[op]
        return cls(this=left, expression=right)
    if op == "~~":
        return exp.Like(this=left, expression=right)
    if op == "~~*":
        return exp.ILike(this=left, expression=right)
    return node


def _node(node: exp.Expression, ctes: set[str]) -> exp.Expression:
    if isinstance(node, exp.Subquery | exp.Exists):
        return empty_subquery(node)
    if isinstance(node, exp.Lambda):
        return json_arrow(node)
    if isinstance(node, exp.Table):
        return relation(node, ctes)
    if isinstance(node, exp.Dot) and isinstance(node.this, exp.Identifier) and \
            node.this.name.lower() in ("pg_catalog", "information_schema"):
        if isinstance(node.expression, exp.Dot):
            return node.expression  # pg_catalog.f(x) where f(x) already became our macro
        if isinstance(node.expression, exp.Func):
            return json_operator(function(node.expression))  # pg_catalog.f(x): the same f as unqualified
    if isinstance(node, exp.Column) and node.name == "user" and not node.table and \
            not node.this.args.get("quoted"):
        return call_macro("bemidb_user")  # bare USER is CURRENT_USER in Postgres (a reserved word, never a column)
    if isinstance(node, exp.Column) and node.args.get("db") is not None:  # pg_catalog.pg_class.relname
        schema = node.args["db"].name.lower()
        table = node.args["table"].name.lower() if node.args.get("table") is not None else ""
        if schema == "pg_catalog" and table in PG_CATALOG_RELATIONS:
            node.set("db", exp.to_identifier(CATALOG_SCHEMA))
        elif schema == "information_schema" and table in INFORMATION_SCHEMA_RELATIONS:
            node.set("db", exp.to_identifier(INFO_SCHEMA))
        return node
    if isinstance(node, exp.Collate):
        collation = node.expression.sql("postgres").lower().replace('"', "")
        if collation in ("pg_catalog.default", "default", "c", "pg_catalog.c", "posix", "pg_catalog.posix"):
            return node.this
        return node
    if isinstance(node, exp.Filter):
        return remap_json.filtered_aggregate(node)
    if isinstance(node, exp.Cast):
        return cast(node)
    if isinstance(node, exp.Extract):
        return remap_datetime.extract(node)
    if isinstance(node, exp.StrToTime):  # to_timestamp(text, template) is a timestamp with time zone
        return exp.Cast(this=node, to=exp.DataType.build("TIMESTAMPTZ"))
    if isinstance(node, exp.BitString):  # B'1010': bit columns are stored as their text
        return exp.Literal.string(node.this)
    if isinstance(node, exp.Length) and isinstance(node.this, exp.Dot) and \
            node.this.expression.name == "bemidb_bytea":
        return call("octet_length", node.this)  # length(x::bytea) counts bytes
    if isinstance(node, exp.EQ | exp.NEQ):
        node = reg_comparison(node)  # x::regtype <> 'trigger'::regtype and pg_proc.oid = typreceive
    if isinstance(node, remap_strings.COMPARISONS):
        return remap_strings.comparison(node)
    if isinstance(node, exp.Like | exp.ILike):
        return remap_strings.like_any(node)
    if isinstance(node, exp.Operator):
        return _operator(node)
    if isinstance(node, exp.SimilarTo):
        pattern = node.expression
        if isinstance(pattern, exp.Literal) and pattern.is_string:
            return call("regexp_full_match", node.this, exp.Literal.string(similar_to_regex(pattern.this)))
        return node
    if isinstance(node, exp.Any | exp.All) and isinstance(node.this, exp.Paren) and \
            isinstance(node.this.this, exp.Literal) and node.this.this.is_string:
        array = array_literal(node.this.this.this, None)  # x = ANY('{a,b}')
        if array is not None:
            node.set("this", array)
        return node
    if isinstance(node, EXTRA_NODES) and (new := extra_function(node)) is not node:
        return new  # format(), parse_ident() ... (catalog/functions_extra.py)
    if isinstance(node, exp.Func):
        return json_operator(function(node))
    if isinstance(node, exp.Bracket):
        return zero_based(node)  # int2vector/oidvector subscripts count from 0
    return node


def _post_order(node: exp.Expression, fn) -> exp.Expression:
    """Children first, then the node: a rewrite sees its operands already rewritten (x::regclass::oid,
    f(COLLATE ...)), and a replaced node's operands are still visited (unlike sqlglot's pre-order transform)."""
    for key, value in list(node.args.items()):
        if isinstance(value, exp.Expression):
            new = _post_order(value, fn)
            if new is not value:
                node.set(key, new)
        elif isinstance(value, list):
            changed = False
            items = []
            for item in value:
                new = _post_order(item, fn) if isinstance(item, exp.Expression) else item
                changed |= new is not item
                items.append(new)
            if changed:
                node.set(key, items)
    return fn(node)


def _rows_in_select_list(tree: exp.Expression) -> None:
    """SELECT pg_get_keywords() IS NOT NULL: a set-returning macro in a select list without FROM gives a row
    per row it returns (Postgres's SRF in the target list); DuckDB wants it in FROM, its row as the alias."""
    for select in tree.find_all(exp.Select):
        if select.args.get("from_") is not None:
            continue
        calls = [d for item in select.expressions for d in item.find_all(exp.Dot)
                 if isinstance(d.expression, exp.Anonymous) and d.expression.name in TABLE_MACROS]
        if len(calls) != 1:
            continue
        row = exp.to_identifier("bemidb_srf")
        source = exp.Table(this=calls[0].expression.copy(), db=calls[0].this.copy(),
                           alias=exp.TableAlias(this=row.copy()))
        calls[0].replace(exp.column(row.copy()))
        select.set("from_", exp.From(this=source))


def transform(tree: exp.Expression, text: str = "") -> exp.Expression:
    """`text`: the statement as written (which of two spellings of a function it used names the column)."""
    ctes = cte_names(tree)
    table_functions(tree)  # FROM jsonb_each(...): Postgres's columns
    for node in tree.find_all(exp.Extract):  # extract(...) or date_part(...): their types differ
        node.meta[remap_datetime.SPELLING] = postgres_name(node, text)
    name_columns(tree, text)
    tree = _post_order(tree, lambda node: _node(node, ctes))
    _rows_in_select_list(tree)
    return tree
