"""FUNCTIONS: Postgres functions DuckDB lacks or spells differently -> our macros (catalog/functions.py) or
DuckDB equivalents; jsonb operators (-> ->> #> #>> @> ? ?| ?&) -> DuckDB's JSON functions.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

from bemidb.server.sql import remap_json, remap_strings
from bemidb.server.sql.nodes import array_literal, call, call_macro, is_json, json_path, pg_array_items
from bemidb.server.sql.to_char import to_char
from bemidb.server.sql.to_char_number import is_number_template, to_char_number

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
pg_my_temp_schema _pg_expandarray bemidb_last_synced_at
""".split())
TABLE_MACROS = frozenset({"bemidb_last_synced_at", "pg_get_keywords"})  # of the macros, the ones that return rows (FROM f())


# Postgres name -> DuckDB name, same arguments.
RENAMES = {
    "jsonb_array_length": "json_array_length", "json_array_length": "json_array_length",
    "jsonb_build_object": "json_object", "json_build_object": "json_object",
    "jsonb_build_array": "json_array", "json_build_array": "json_array",
    "to_jsonb": "to_json", "row_to_json": "to_json",
    "jsonb_strip_nulls": "json", "json_strip_nulls": "json",
    "clock_timestamp": "now", "statement_timestamp": "now", "transaction_timestamp": "now",
    "timeofday": "now", "string_to_array": "string_split", "every": "bool_and",
}


# Aggregates whose DISTINCT Postgres answers from sorted input (NULL last): their items come out in that order.
SORTED_DISTINCT = (exp.ArrayAgg, exp.GroupConcat)


def _sorted_distinct(node: exp.Expression) -> exp.Expression:
    distinct = node.this
    if isinstance(distinct, exp.Distinct) and len(distinct.expressions) == 1:
        node.set("this", exp.Order(this=distinct.copy(), expressions=[
            exp.Ordered(this=distinct.expressions[0].copy(), nulls_first=False)]))
    return node


def function(node: exp.Expression) -> exp.Expression:
    if isinstance(node, SORTED_DISTINCT):
        return _sorted_distinct(node)
    if isinstance(node, exp.JSONBObjectAgg):
        if isinstance(node.expression, exp.Order):
            node.set("expression", node.expression.this)  # jsonb sorts its keys: the ORDER BY changes nothing
        return remap_json.spaced(node)
    if isinstance(node, exp.JSONArrayAgg):  # json_agg(x ORDER BY y)
        return remap_json.spaced(call("to_json", exp.ArrayAgg(this=node.this)))
    if isinstance(node, exp.ArraySize) and node.expression is not None:
        return call_macro("array_upper", node.this, node.expression)  # array_length('{}', 1) is NULL
    if isinstance(node, exp.Anonymous) and node.name.lower() in remap_json.JSONB_SPACED | \
            remap_json.JSON_OBJECT_SPACED:
        if node.name.lower() == "jsonb_build_object":
            remap_json.order_keys(node)
        rewritten = _function(node)
        return remap_json.for_function(node.name.lower(), rewritten) if rewritten is not node else node
    if isinstance(node, exp.Anonymous) and node.name.lower() in ("jsonb_strip_nulls", "json_strip_nulls") and \
            len(node.expressions) == 1:  # a merge patch onto {} drops the null members, at every depth
        stripped = call("json_merge_patch", exp.Literal.string("{}"), node.expressions[0])
        return remap_json.spaced(stripped) if node.name.lower() == "jsonb_strip_nulls" else stripped
    return _function(node)


def _function(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.CurrentVersion):
        return call_macro("version")
    if isinstance(node, exp.CurrentSchema):
        return call_macro("current_schema")
    if isinstance(node, exp.CurrentSchemas):
        return call_macro("current_schemas", node.this or exp.true())
    if isinstance(node, exp.CurrentDatabase | exp.CurrentCatalog):
        return call_macro("current_database")
    if isinstance(node, exp.CurrentUser | exp.SessionUser):
        return call_macro("bemidb_user")
    if isinstance(node, exp.Format):
        return remap_strings.format_call(node) or node
    if isinstance(node, exp.Encode | exp.Decode):
        return remap_strings.encode_decode(node) or node
    if isinstance(node, exp.Length):
        return remap_strings.byte_length(node) or node
    if isinstance(node, exp.StringToArray):
        split = call("string_split", node.this, node.expression)
        if node.args.get("null") is not None:  # string_to_array(s, ',', '') : that item is NULL
            item = exp.to_identifier("bemidb_item")
            test = exp.EQ(this=exp.column(item.copy()), expression=node.args["null"])
            return call("list_transform", split, exp.Lambda(this=exp.Case(
                ifs=[exp.If(this=test, true=exp.Null())], default=exp.column(item.copy())), expressions=[item]))
        if isinstance(node.parent, exp.Table | exp.From | exp.Join):
            return split
        if isinstance(node.this, exp.Literal):
            return exp.Array(expressions=[]) if node.this.this == "" else split
        # string_to_array('', ',') is {} in Postgres, [''] in DuckDB
        return exp.Case(ifs=[exp.If(this=exp.EQ(this=node.this.copy(), expression=exp.Literal.string("")),
                                    true=exp.Array(expressions=[]))],
                        default=split)
    if isinstance(node, exp.Substring) and isinstance(node.args.get("start"), exp.Literal) and \
            node.args["start"].is_string and node.args.get("length") is None:
        return call("regexp_extract", node.this, node.args["start"])  # substring(s from 'pattern')
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        if name in MACROS:
            return call_macro(name, *node.expressions)
        if name == "regexp_match" and len(node.expressions) == 2:
            return remap_strings.regexp_match(*node.expressions) or node
        rewritten = remap_strings.string_function(name, node.expressions)
        if rewritten is not None:
            return rewritten
        if name == "to_char" and len(node.expressions) == 2 and isinstance(node.expressions[1], exp.Literal):
            if is_number_template(node.expressions[1].this):
                return to_char_number(node.expressions[0], node.expressions[1].this) or node
            value = node.expressions[0]
            if _is_interval(value) and _TIME_OF_DAY.fullmatch(node.expressions[1].this):
                # to_char(interval, 'HH24:MI'): its time fields, read off midnight plus the interval
                value = exp.Add(this=exp.Cast(this=exp.Literal.string("2000-01-01"),
                                              to=exp.DataType.build("TIMESTAMP")), expression=value)
            converted = to_char(value, node.expressions[1].this)
            if converted is not None:
                return converted
            # a pattern we do not read (Q, W, J ...): sqlglot's own conversion
            fallback = sqlglot.parse_one(f"SELECT to_char(x, {node.expressions[1].sql('postgres')})",
                                         read="postgres").expressions[0]
            fallback.set("this", node.expressions[0])
            return fallback
        if name in ("jsonb_typeof", "json_typeof"):
            return call_macro("bemidb_json_typeof", *node.expressions)
        if name in ("to_json", "to_jsonb") and len(node.expressions) == 1 and \
                isinstance(node.expressions[0], exp.Literal) and not node.expressions[0].is_string:
            return exp.Cast(this=exp.Literal.string(node.expressions[0].this), to=exp.DataType.build("JSON"))
        if name == "jsonb_set" and len(node.expressions) in (3, 4):
            return _jsonb_set(*node.expressions) or node
        if name in RENAMES:
            renamed = call(RENAMES[name], *node.expressions)
            if RENAMES[name] == "json_array_length":  # integer in Postgres, UBIGINT in DuckDB
                return exp.Cast(this=renamed, to=exp.DataType.build("INTEGER"))
            return renamed
        if name in ("jsonb_extract_path_text", "json_extract_path_text", "jsonb_extract_path",
                    "json_extract_path") and node.expressions:
            keys = node.expressions[1:]
            path = "$" + "".join(f'."{k.this}"' if isinstance(k, exp.Literal) else "" for k in keys)
            fn = "json_extract_string" if name.endswith("_text") else "json_extract"
            return call(fn, node.expressions[0], exp.Literal.string(path))
        if name in ("jsonb_object_keys", "json_object_keys") and node.expressions:
            return exp.Explode(this=call("json_keys", node.expressions[0]))
        if name in ("jsonb_agg", "json_agg"):
            return call("to_json", exp.ArrayAgg(this=node.expressions[0]))
        if name in ("jsonb_object_agg", "json_object_agg") and len(node.expressions) == 2:
            return call("to_json", call("map", exp.ArrayAgg(this=node.expressions[0]),
                                          exp.ArrayAgg(this=node.expressions[1])))
        if name in ("jsonb_array_elements", "json_array_elements", "jsonb_array_elements_text",
                    "json_array_elements_text") and node.expressions:
            extract = "json_extract_string" if name.endswith("_text") else "json_extract"
            return exp.Explode(this=call(extract, node.expressions[0], exp.Literal.string("$[*]")))
        if name == "age" and len(node.expressions) == 1:
            return call("age", call("current_date"), node.expressions[0])
        if name == "pg_sleep":
            # seconds (any numeric) -> whole milliseconds: DuckDB's sleep_ms takes a BIGINT only
            millis = exp.Mul(this=exp.Paren(this=node.expressions[0]), expression=exp.Literal.number(1000))
            return call("sleep_ms", exp.Cast(this=millis, to=exp.DataType.build("BIGINT")))
    return node


_TIME_OF_DAY = re.compile(r"(FM|HH24|HH12|HH|MI|SS|MS|US|[^A-Za-z])*")  # only time fields: no days, months


def _is_interval(node: exp.Expression) -> bool:
    return isinstance(node, exp.Interval) or (isinstance(node, exp.Cast) and
                                              node.args["to"].this == exp.DataType.Type.INTERVAL)


def _jsonb_set(target, path, value, create=None) -> exp.Expression | None:
    """jsonb_set(t, '{key}', v [, create]) on one top-level object key; deeper or array paths stay unsupported."""
    if not (isinstance(path, exp.Literal) and path.is_string):
        return None
    keys = pg_array_items(path.this)
    if not keys or len(keys) != 1 or keys[0] is None or keys[0].lstrip("-").isdigit():
        return None
    return remap_json.spaced(call_macro("bemidb_jsonb_set_key", target, exp.Literal.string(keys[0]), value,
                                        create if create is not None else exp.true()))


def json_operator(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.JSONExtract) and not node.meta.get("bemidb_spaced"):
        node.meta["bemidb_spaced"] = True
        return remap_json.spaced(node)  # j -> 'k' (DuckDB prints it compact)
    if isinstance(node, exp.JSONBExtract | exp.JSONBExtractScalar):
        path = node.expression
        if isinstance(path, exp.Literal) and path.is_string:
            path = exp.Literal.string(json_path(path.this))
        if isinstance(node, exp.JSONBExtractScalar):  # an object or array as jsonb prints it
            found = call("json_extract", node.this.copy(), path.copy())
            nested = exp.In(this=call("json_type", found.copy()), expressions=[
                exp.Literal.string("OBJECT"), exp.Literal.string("ARRAY")])
            return exp.Case(ifs=[exp.If(this=nested, true=exp.Cast(this=remap_json.spaced(found), to=exp.DataType.build(
                "VARCHAR")))], default=call("json_extract_string", node.this, path))
        return remap_json.spaced(call("json_extract", node.this, path))
    if isinstance(node, exp.ArrayContainsAll):
        right = node.expression
        if isinstance(right, exp.Literal) and right.is_string and is_json(right.this):
            return call("json_contains", node.this, right)  # jsonb @> '{"a":1}'
        if isinstance(right, exp.Cast) and right.args["to"].this == exp.DataType.Type.JSON:
            return call("json_contains", node.this, right)  # jsonb @> $1::jsonb, @> '...'::jsonb
        if isinstance(right, exp.Literal) and right.is_string:
            array = array_literal(right.this, None)
            if array is not None:
                return call("list_has_all", node.this, array)
        return call("list_has_all", node.this, right)
    if isinstance(node, exp.JSONBContainsTopKey):
        return call_macro("bemidb_json_has_key", node.this, node.expression)
    if isinstance(node, exp.JSONBContainsAnyTopKeys | exp.JSONBContainsAllTopKeys):
        keys = node.expression
        fn = "list_has_any" if isinstance(node, exp.JSONBContainsAnyTopKeys) else "list_has_all"
        return call(fn, call("json_keys", node.this), keys)
    return node


def json_arrow(node: exp.Lambda) -> exp.Expression:
    """Postgres has no lambdas: inside function arguments sqlglot reads `j -> 'k'` as one; it is jsonb ->."""
    params = node.expressions
    if len(params) != 1:
        return node
    target = exp.column(params[0].name, quoted=bool(params[0].args.get("quoted")))
    body = node.this
    if isinstance(body, exp.Literal):
        path = f"$[{body.this}]" if not body.is_string else '$."' + body.this.replace('"', '\\"') + '"'
        return call("json_extract", target, exp.Literal.string(path))
    if isinstance(body, exp.JSONExtract | exp.JSONExtractScalar):
        # j -> 'a' ->> 'b' arrives as Lambda(j, 'a' ->> 'b'): rebuild it left to right
        inner = json_arrow(exp.Lambda(this=body.this, expressions=params))
        return body.__class__(this=inner, expression=body.expression, only_json_types=True)
    if isinstance(body, exp.Expression):
        return call("json_extract", target, body)
    return node
