"""Transforms on a parsed Postgres query so DuckDB answers it as Postgres would. Tables, not logic:

- RELATIONS: pg_catalog.X / information_schema.X / bare catalog names -> our emulation (pg_catalog.py);
- FUNCTIONS: Postgres functions DuckDB lacks or spells differently -> our macros or DuckDB equivalents;
- CASTS: ::regclass, ::regtype, ::oid, ::name, ::jsonb, '{a,b}'::text[] ... -> what they mean in DuckDB;
- operators: OPERATOR(pg_catalog.~), SIMILAR TO, COLLATE "default", jsonb #> #>> @> ? ?| ?&, = ANY('{..}').

`transform(tree)` applies all of them in one walk over the sqlglot tree.
"""

from __future__ import annotations

import re

from sqlglot import exp

from bemidb.server.catalog.pg_catalog import (
    ALWAYS_EMPTY,
    CATALOG_SCHEMA,
    INFO_SCHEMA,
    INFORMATION_SCHEMA_RELATIONS,
    PG_CATALOG_RELATIONS,
)

# Functions answered by our macros in CATALOG_SCHEMA (pg_catalog.py defines each one).
MACROS = frozenset("""
current_setting set_config version current_database current_schema current_schemas pg_backend_pid
pg_get_userbyid pg_encoding_to_char pg_char_to_encoding pg_is_in_recovery pg_postmaster_start_time
pg_conf_load_time pg_table_is_visible pg_type_is_visible pg_function_is_visible format_type obj_description
col_description shobj_description pg_get_expr pg_get_constraintdef pg_get_indexdef pg_get_viewdef
pg_get_function_result pg_get_function_arguments pg_get_function_identity_arguments pg_get_partkeydef
pg_get_triggerdef pg_get_serial_sequence pg_get_statisticsobjdef_columns pg_relation_is_publishable
pg_tablespace_location pg_total_relation_size pg_relation_size pg_table_size pg_indexes_size pg_database_size
pg_size_pretty quote_ident quote_literal quote_nullable array_upper array_lower cardinality has_table_privilege
has_schema_privilege has_database_privilege has_column_privilege has_function_privilege has_sequence_privilege
has_any_column_privilege has_foreign_data_wrapper_privilege has_server_privilege has_tablespace_privilege
has_type_privilege has_language_privilege pg_has_role txid_current pg_current_xact_id pg_cancel_backend
pg_terminate_backend inet_server_addr inet_server_port inet_client_addr pg_stat_get_numscans
to_regtype to_regclass to_regnamespace to_regrole to_regproc to_regprocedure pg_is_other_temp_schema
pg_my_temp_schema _pg_expandarray
""".split())

# Postgres name -> DuckDB name, same arguments.
RENAMES = {
    "jsonb_array_length": "json_array_length", "json_array_length": "json_array_length",
    "jsonb_build_object": "json_object", "json_build_object": "json_object",
    "jsonb_build_array": "json_array", "json_build_array": "json_array",
    "jsonb_pretty": "json", "to_jsonb": "to_json", "row_to_json": "to_json",
    "jsonb_strip_nulls": "json", "json_strip_nulls": "json",
    "clock_timestamp": "now", "statement_timestamp": "now", "transaction_timestamp": "now",
    "timeofday": "now", "string_to_array": "string_split",
}

_REG_TYPES = {"regclass", "regtype", "regproc", "regprocedure", "regnamespace", "regrole", "regoper",
              "regoperator", "regconfig", "regdictionary", "regcollation"}
# Postgres-only type names -> DuckDB types.
_TYPE_MAP = {"oid": "BIGINT", "xid": "BIGINT", "xid8": "UBIGINT", "cid": "BIGINT", "tid": "VARCHAR",
             "name": "VARCHAR", "char": "VARCHAR", '"char"': "VARCHAR", "bpchar": "VARCHAR", "text": "VARCHAR",
             "jsonb": "JSON", "json": "JSON", "int2vector": "SMALLINT[]", "oidvector": "BIGINT[]",
             "pg_node_tree": "VARCHAR", "aclitem": "VARCHAR", "regclass": "BIGINT", "inet": "VARCHAR",
             "cidr": "VARCHAR", "macaddr": "VARCHAR", "money": "DECIMAL(18,2)", "citext": "VARCHAR",
             "xml": "VARCHAR", "tsvector": "VARCHAR", "pg_lsn": "VARCHAR", "int2": "SMALLINT", "int4": "INTEGER",
             "int8": "BIGINT", "float4": "REAL", "float8": "DOUBLE", "bool": "BOOLEAN", "serial": "INTEGER",
             "bigserial": "BIGINT"}


def _call(name: str, *args: exp.Expression) -> exp.Expression:
    """bemidb_pg_catalog.name(args): our macro, schema-qualified so no user or DuckDB function shadows it."""
    return exp.Dot(this=exp.to_identifier(CATALOG_SCHEMA), expression=exp.Anonymous(this=name,
                                                                                        expressions=list(args)))


def _func(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def _type_name(datatype: exp.Expression) -> str:
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
            return _type_name(datatype.expressions[0]) + "[]"
        return datatype.sql("postgres").lower()
    return datatype.sql("postgres").lower()


def _is_text_input(node: exp.Expression) -> bool:
    """A value that Postgres would parse with the reg* input function: a string literal or a parameter."""
    return (isinstance(node, exp.Literal) and node.is_string) or isinstance(node, exp.Placeholder | exp.Parameter)


def _pg_array_items(text: str) -> list[str | None] | None:
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


def _array_literal(text: str, element_type: str | None) -> exp.Expression | None:
    items = _pg_array_items(text)
    if items is None:
        return None
    values = [exp.Null() if v is None else exp.Literal.string(v) for v in items]
    array = exp.Array(expressions=values)
    if element_type:
        target = _TYPE_MAP.get(element_type, element_type)
        return exp.Cast(this=array, to=exp.DataType.build(f"{target}[]", dialect="duckdb"))
    return array


def _is_json(text: str) -> bool:
    """'{"a":1}' is JSON, '{1,2}' is a Postgres array literal."""
    import json

    try:
        return isinstance(json.loads(text), dict | list)
    except ValueError:
        return False


def _similar_to_regex(pattern: str) -> str:
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


def _json_path(text: str) -> str:
    """Postgres text[] path '{a,0,b}' -> DuckDB JSON path '$.a[0].b'."""
    items = _pg_array_items(text) or []
    path = "$"
    for item in items:
        if item is not None and re.fullmatch(r"-?\d+", item):
            path += f"[{item}]" if not item.startswith("-") else f"[#{item}]"
        else:
            path += '."' + (item or "").replace('"', '\\"') + '"'
    return path


# ---------------------------------------------------------------------------------------------------------

def _cte_names(tree: exp.Expression) -> set[str]:
    return {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}


def _relation(node: exp.Table, ctes: set[str]) -> exp.Expression:
    if isinstance(node.this, exp.Func):  # FROM pg_catalog.unnest(...) / generate_series(...): DuckDB's own
        if node.args.get("db") is not None and node.args["db"].name.lower() in ("pg_catalog", "information_schema"):
            node.set("db", None)
        return _scalar_in_from(node)
    if isinstance(node.this, exp.Dot) and isinstance(node.this.expression, exp.Func):
        return _scalar_in_from(node)
    name = node.name.lower() if not node.this.args.get("quoted") else node.name
    db = node.args.get("db")
    schema = db.name.lower() if db is not None else None
    if node.args.get("catalog") is not None:
        node.set("catalog", None)  # db.schema.table: there is only one database
    if schema == "pg_catalog" and name in PG_CATALOG_RELATIONS:
        node.set("db", exp.to_identifier(CATALOG_SCHEMA))
    elif schema == "information_schema" and name in INFORMATION_SCHEMA_RELATIONS:
        node.set("db", exp.to_identifier(INFO_SCHEMA))
    elif schema is None and name in PG_CATALOG_RELATIONS and name not in ctes:
        node.set("db", exp.to_identifier(CATALOG_SCHEMA))  # pg_catalog is implicitly first on search_path
    return node


# Postgres scalar functions clients put in FROM (Grafana: string_to_array(current_setting(...)) s); anything else
# there is left to DuckDB as a table function (and its sandbox).
_SCALARS_IN_FROM = {"string_split", "string_to_array", "regexp_split_to_array", "array_append", "array_cat",
                    "array_prepend", "current_setting", "current_schemas", "current_schema", "version"}


def _scalar_in_from(node: exp.Table) -> exp.Expression:
    """FROM string_to_array(...) s: Postgres makes a one-row relation of a scalar function's value, whose
    column is named after the alias; DuckDB only takes table functions there, so wrap it in a subquery."""
    ours = isinstance(node.this, exp.Dot) and node.this.this.name == CATALOG_SCHEMA  # our (scalar) macros
    func = node.this.expression if isinstance(node.this, exp.Dot) else node.this
    name = (func.name if isinstance(func, exp.Anonymous) else func.sql("duckdb").split("(")[0]).lower()
    if not ours and name not in _SCALARS_IN_FROM:
        return node
    alias = node.alias or name
    subquery = exp.select(exp.alias_(node.this, alias, quoted=True)).subquery(alias=exp.to_identifier(alias))
    return subquery


def _cast(node: exp.Cast) -> exp.Expression:
    target = _type_name(node.args["to"])
    inner = node.this
    if target in ("regclass",):
        if _is_text_input(inner):
            return _call("bemidb_regclass", inner)
        if isinstance(inner, exp.Literal):  # 16385::regclass
            return _call("bemidb_regclass_name", inner)
        return _call("bemidb_regclass_name", inner)
    if target in ("regtype",):
        return _call("bemidb_regtype", inner) if _is_text_input(inner) else _call("bemidb_regtype_name", inner)
    if target == "regnamespace":
        return _call("bemidb_regnamespace", inner) if _is_text_input(inner) else _call(
            "bemidb_regnamespace_name", inner)
    if target == "regrole":
        return exp.Literal.number(10) if _is_text_input(inner) else _call("pg_get_userbyid", inner)
    if target in ("regproc", "regprocedure", "regoper", "regoperator", "regconfig", "regdictionary",
                  "regcollation"):
        return _call("bemidb_regproc", inner) if _is_text_input(inner) else exp.Cast(
            this=inner, to=exp.DataType.build("VARCHAR"))
    if target == "oid" and isinstance(inner, exp.Dot) and isinstance(inner.expression, exp.Anonymous) and \
            inner.expression.name.startswith("bemidb_reg") and not inner.expression.name.endswith("_name"):
        return inner  # 'x'::regclass::oid: the lookup already gives the OID
    if target.endswith("[]") and isinstance(inner, exp.Literal) and inner.is_string:
        array = _array_literal(inner.this, target[:-2])
        if array is not None:
            return array
    if target in ("text", "varchar", "character varying") and isinstance(inner, exp.Dot) and \
            isinstance(inner.expression, exp.Anonymous) and inner.expression.name.startswith("bemidb_reg"):
        fn = inner.expression.name
        # x::regclass::text: the name ('t'::regclass::text too, after the lookup)
        return inner if fn.endswith("_name") or fn == "bemidb_regproc" else _call(fn + "_name", inner)
    mapped = _TYPE_MAP.get(target)
    if mapped is None and target.endswith("[]") and target[:-2] in _TYPE_MAP:
        mapped = _TYPE_MAP[target[:-2]] + "[]"
    if mapped is not None:
        node.set("to", exp.DataType.build(mapped, dialect="duckdb"))
    elif isinstance(node.args["to"], exp.DataType) and node.args["to"].this == exp.DataType.Type.USERDEFINED:
        node.set("to", exp.DataType.build(target, dialect="postgres"))  # pg_catalog.int4 -> int4
    return node


def _function(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.CurrentVersion):
        return _call("version")
    if isinstance(node, exp.CurrentSchema):
        return _call("current_schema")
    if isinstance(node, exp.CurrentSchemas):
        return _call("current_schemas", node.this or exp.true())
    if isinstance(node, exp.CurrentDatabase | exp.CurrentCatalog):
        return _call("current_database")
    if isinstance(node, exp.CurrentUser | exp.SessionUser):
        return _call("bemidb_user")
    if isinstance(node, exp.StringToArray):
        return _func("string_split", node.this, node.expression)
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        if name in MACROS:
            return _call(name, *node.expressions)
        if name == "to_char" and len(node.expressions) == 2 and isinstance(node.expressions[1], exp.Literal):
            from bemidb.server.sql.to_char import to_char

            converted = to_char(node.expressions[0], node.expressions[1].this)
            if converted is not None:
                return converted
            import sqlglot  # a pattern we do not read (Q, W, J ...): sqlglot's own conversion

            fallback = sqlglot.parse_one(f"SELECT to_char(x, {node.expressions[1].sql('postgres')})",
                                         read="postgres").expressions[0]
            fallback.set("this", node.expressions[0])
            return fallback
        if name in ("jsonb_typeof", "json_typeof"):
            return _call("bemidb_json_typeof", *node.expressions)
        if name in RENAMES:
            return _func(RENAMES[name], *node.expressions)
        if name in ("jsonb_extract_path_text", "json_extract_path_text", "jsonb_extract_path",
                    "json_extract_path") and node.expressions:
            keys = node.expressions[1:]
            path = "$" + "".join(f'."{k.this}"' if isinstance(k, exp.Literal) else "" for k in keys)
            fn = "json_extract_string" if name.endswith("_text") else "json_extract"
            return _func(fn, node.expressions[0], exp.Literal.string(path))
        if name in ("jsonb_object_keys", "json_object_keys") and node.expressions:
            return exp.Explode(this=_func("json_keys", node.expressions[0]))
        if name in ("jsonb_agg", "json_agg"):
            return _func("to_json", exp.ArrayAgg(this=node.expressions[0]))
        if name in ("jsonb_object_agg", "json_object_agg") and len(node.expressions) == 2:
            return _func("to_json", _func("map", exp.ArrayAgg(this=node.expressions[0]),
                                          exp.ArrayAgg(this=node.expressions[1])))
        if name in ("jsonb_array_elements", "json_array_elements", "jsonb_array_elements_text",
                    "json_array_elements_text") and node.expressions:
            extract = "json_extract_string" if name.endswith("_text") else "json_extract"
            return exp.Explode(this=_func(extract, node.expressions[0], exp.Literal.string("$[*]")))
        if name == "age" and len(node.expressions) == 1:
            return _func("age", _func("current_date"), node.expressions[0])
        if name == "pg_sleep":
            # seconds (any numeric) -> whole milliseconds: DuckDB's sleep_ms takes a BIGINT only
            millis = exp.Mul(this=exp.Paren(this=node.expressions[0]), expression=exp.Literal.number(1000))
            return _func("sleep_ms", exp.Cast(this=millis, to=exp.DataType.build("BIGINT")))
    return node


def _json_operator(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.JSONBExtract | exp.JSONBExtractScalar):
        path = node.expression
        if isinstance(path, exp.Literal) and path.is_string:
            path = exp.Literal.string(_json_path(path.this))
        fn = "json_extract_string" if isinstance(node, exp.JSONBExtractScalar) else "json_extract"
        return _func(fn, node.this, path)
    if isinstance(node, exp.ArrayContainsAll):
        right = node.expression
        if isinstance(right, exp.Literal) and right.is_string and _is_json(right.this):
            return _func("json_contains", node.this, right)  # jsonb @> '{"a":1}'
        if isinstance(right, exp.Literal) and right.is_string:
            array = _array_literal(right.this, None)
            if array is not None:
                return _func("list_has_all", node.this, array)
        return _func("list_has_all", node.this, right)
    if isinstance(node, exp.JSONBContainsTopKey):
        return _call("bemidb_json_has_key", node.this, node.expression)
    if isinstance(node, exp.JSONBContainsAnyTopKeys | exp.JSONBContainsAllTopKeys):
        keys = node.expression
        fn = "list_has_any" if isinstance(node, exp.JSONBContainsAnyTopKeys) else "list_has_all"
        return _func(fn, _func("json_keys", node.this), keys)
    return node


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


def _json_arrow(node: exp.Lambda) -> exp.Expression:
    """Postgres has no lambdas: inside function arguments sqlglot reads `j -> 'k'` as one; it is jsonb ->."""
    params = node.expressions
    if len(params) != 1:
        return node
    target = exp.column(params[0].name, quoted=bool(params[0].args.get("quoted")))
    body = node.this
    if isinstance(body, exp.Literal):
        path = f"$[{body.this}]" if not body.is_string else '$."' + body.this.replace('"', '\\"') + '"'
        return _func("json_extract", target, exp.Literal.string(path))
    if isinstance(body, exp.JSONExtract | exp.JSONExtractScalar):
        # j -> 'a' ->> 'b' arrives as Lambda(j, 'a' ->> 'b'): rebuild it left to right
        inner = _json_arrow(exp.Lambda(this=body.this, expressions=params))
        return body.__class__(this=inner, expression=body.expression, only_json_types=True)
    if isinstance(body, exp.Expression):
        return _func("json_extract", target, body)
    return node


def _reads_only_empty(select: exp.Expression) -> bool:
    """A SELECT that can only return no rows: FROM an always-empty catalog relation (psql's pg_attrdef,
    pg_policy, pg_inherits ...), no aggregate or GROUP BY (count(*) of nothing is one row), no outer join
    that could bring rows back."""
    if not isinstance(select, exp.Select) or select.args.get("group"):
        return False
    if select.find(exp.Placeholder, exp.Parameter):
        return False  # dropping it would renumber the statement's $n parameters
    source = select.args.get("from_") or select.args.get("from")
    table = source.this if source is not None else None
    if not (isinstance(table, exp.Table) and table.db == CATALOG_SCHEMA and table.name in ALWAYS_EMPTY):
        return False
    if any(join.side in ("RIGHT", "FULL") for join in select.args.get("joins") or []):
        return False
    return not any(isinstance(e, exp.AggFunc) for item in select.expressions for e in item.walk())


def _empty_subquery(node: exp.Expression) -> exp.Expression:
    """Scalar subqueries over relations that are always empty are NULL, EXISTS over them false: DuckDB spends
    milliseconds planning each correlated subquery, psql's \\d sends several."""
    if isinstance(node, exp.Exists) and _reads_only_empty(node.this):
        return exp.false()
    if isinstance(node, exp.Subquery) and not isinstance(node.parent, exp.From | exp.Join) and \
            not node.alias and _reads_only_empty(node.this):
        return exp.Null()
    return node


def _node(node: exp.Expression, ctes: set[str]) -> exp.Expression:
    if isinstance(node, exp.Subquery | exp.Exists):
        return _empty_subquery(node)
    if isinstance(node, exp.Lambda):
        return _json_arrow(node)
    if isinstance(node, exp.Table):
        return _relation(node, ctes)
    if isinstance(node, exp.Dot) and isinstance(node.this, exp.Identifier) and \
            node.this.name.lower() in ("pg_catalog", "information_schema"):
        if isinstance(node.expression, exp.Dot):
            return node.expression  # pg_catalog.f(x) where f(x) already became our macro
        if isinstance(node.expression, exp.Func):
            return _json_operator(_function(node.expression))  # pg_catalog.f(x): the same f as unqualified
    if isinstance(node, exp.Column) and node.name == "user" and not node.table and \
            not node.this.args.get("quoted"):
        return _call("bemidb_user")  # bare USER is CURRENT_USER in Postgres (a reserved word, never a column)
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
    if isinstance(node, exp.Cast):
        return _cast(node)
    if isinstance(node, exp.Operator):
        return _operator(node)
    if isinstance(node, exp.SimilarTo):
        pattern = node.expression
        if isinstance(pattern, exp.Literal) and pattern.is_string:
            return _func("regexp_full_match", node.this, exp.Literal.string(_similar_to_regex(pattern.this)))
        return node
    if isinstance(node, exp.Any | exp.All) and isinstance(node.this, exp.Paren) and \
            isinstance(node.this.this, exp.Literal) and node.this.this.is_string:
        array = _array_literal(node.this.this.this, None)  # x = ANY('{a,b}')
        if array is not None:
            node.set("this", array)
        return node
    if isinstance(node, exp.Func):
        return _json_operator(_function(node))
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


# ---------------------------------------------------------------------------------------------------------
# Result column names: Postgres names an unaliased expression after its function, cast type or column
# ("count", "current_schema", "int4", "?column?"); DuckDB after its text ("count_star()"). Clients read
# columns by name, so the Postgres names are given as aliases before the tree is rewritten.

_OPAQUE = (exp.Literal, exp.Null, exp.Binary, exp.Unary, exp.Not, exp.Bracket, exp.Any, exp.All, exp.Between,
           exp.In, exp.Is, exp.Like, exp.ILike, exp.SimilarTo, exp.Operator, exp.Interval)


def _colname(node: exp.Expression) -> str | None:
    """What Postgres calls an unaliased select item, or None to leave DuckDB's name (plain columns, *)."""
    if isinstance(node, exp.Column | exp.Star | exp.Subquery):
        return None
    if isinstance(node, exp.Paren):
        return _colname(node.this)
    if isinstance(node, exp.Boolean):
        return "bool"
    if isinstance(node, exp.Cast):
        if isinstance(node.this, exp.Column):
            return node.this.name
        inner = _colname(node.this)
        if inner and inner != "?column?":
            return inner
        target = _type_name(node.args["to"])
        from bemidb.server.catalog import pg_types

        parsed = pg_types.parse_type_name(target)
        return pg_types.element_of(parsed[0]).name if parsed else target.split(".")[-1].rstrip("[]")
    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
        return _colname(node.expression)
    if isinstance(node, exp.Case):
        return "case"
    if isinstance(node, exp.Array):
        return "array"
    if isinstance(node, exp.Exists):
        return "exists"
    if isinstance(node, exp.Extract):
        return "extract"
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    if isinstance(node, exp.Func):
        text = node.sql("postgres")
        name = text.split("(", 1)[0].strip().lower()
        return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else "?column?"
    if isinstance(node, _OPAQUE):
        return "?column?"
    return None


def _name_columns(tree: exp.Expression) -> None:
    for select in tree.find_all(exp.Select):
        items = select.expressions
        for i, item in enumerate(items):
            if isinstance(item, exp.Alias):
                continue
            name = _colname(item)
            if name is not None:
                items[i] = exp.alias_(item, name, quoted=True)


def transform(tree: exp.Expression) -> exp.Expression:
    ctes = _cte_names(tree)
    _name_columns(tree)
    return _post_order(tree, lambda node: _node(node, ctes))
