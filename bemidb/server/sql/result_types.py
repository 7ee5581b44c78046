"""Postgres's result types of functions and expressions whose type does not depend on their arguments' types,
or is their first argument's type, kept as data. RowDescription describes such a result column with this type
(the encoder writes DuckDB's value in it: BIGINT -> int4 is range-checked, JSON -> jsonb is the same text).
Functions whose Postgres type depends on the argument type in other ways (sum, avg) are not listed here.
"""

from __future__ import annotations

# Function name (as written, lower case) -> Postgres type.
FIXED: dict[str, str] = {
    **dict.fromkeys(("length", "char_length", "character_length", "octet_length", "bit_length", "strpos",
                     "position", "ascii", "array_length", "array_upper", "array_lower", "array_ndims",
                     "array_position", "cardinality", "jsonb_array_length", "json_array_length", "ntile",
                     "width_bucket", "scale", "min_scale"), "int4"),
    **dict.fromkeys(("trim_scale", "div"), "numeric"),
    **dict.fromkeys(("jsonb_build_object", "jsonb_build_array", "jsonb_agg", "jsonb_object_agg", "to_jsonb",
                     "jsonb_strip_nulls", "jsonb_set", "jsonb_insert", "jsonb_object", "jsonb_extract_path",
                     "jsonb_array_elements", "jsonb_path_query", "jsonb_path_query_first"), "jsonb"),
    **dict.fromkeys(("json_build_object", "json_build_array", "json_agg", "json_object_agg", "to_json",
                     "row_to_json", "array_to_json", "json_object", "json_extract_path",
                     "json_array_elements", "json_strip_nulls"), "json"),
    **dict.fromkeys(("jsonb_pretty", "jsonb_typeof", "json_typeof", "md5", "to_hex", "quote_ident",
                     "quote_literal", "quote_nullable", "format", "to_char", "initcap", "array_to_string",
                     "string_agg", "jsonb_extract_path_text", "json_extract_path_text", "concat", "concat_ws",
                     "encode", "convert_from", "current_setting", "version"), "text"),
    **dict.fromkeys(("decode", "sha224", "sha256", "sha384", "sha512", "digest", "convert_to"), "bytea"),
    **dict.fromkeys(("row_number", "rank", "dense_rank", "count"), "int8"),
    **dict.fromkeys(("percent_rank", "cume_dist", "random", "pi", "date_part"), "float8"),
    "extract": "numeric",
    # names (DBeaver's SELECT current_schema(),session_user; PgJDBC's getSchemas)
    **dict.fromkeys(("current_schema", "current_user", "session_user", "current_database", "current_catalog",
                     "user"), "name"),
}

# Functions whose result is their first argument's type (typmod dropped, as Postgres does).
SAME_AS_FIRST_ARGUMENT = frozenset((
    "abs", "min", "max", "lag", "lead", "first_value", "last_value", "nth_value", "coalesce", "nullif", "greatest",
    "least", "mode", "gcd", "lcm",
))

# Aggregates over a type Postgres has no own aggregate for: they take the type it is coerced to.
AGGREGATE_ARGUMENT = {"character varying": "text", "varchar": "text"}
AGGREGATES = frozenset(("min", "max"))

# Aggregates whose Postgres type follows their argument's (format_type spelling) by a table of their own.
# sum's values print the same whatever DuckDB computed them in (HUGEINT for integers); avg and the variances
# of integers and numerics are computed as Postgres does by sql/typed_rewrites.py.
_NUMERIC_OR_FLOAT8 = {"smallint": "numeric", "integer": "numeric", "bigint": "numeric", "numeric": "numeric",
                      "real": "float8", "double precision": "float8"}
BY_ARGUMENT = {
    "sum": {"smallint": "int8", "integer": "int8", "bigint": "numeric", "numeric": "numeric",
            "double precision": "float8", "interval": "interval"},
    # numeric for integers and numerics: sql/numeric_aggregates.py computes them so
    **dict.fromkeys(("avg", "stddev", "stddev_samp", "stddev_pop", "variance", "var_samp", "var_pop"),
                    _NUMERIC_OR_FLOAT8),
}

# Binary operators whose Postgres type differs from DuckDB's while the values print the same:
# (left type, operator node, right type) -> result type.
OPERATORS = {
    ("date", "Sub", "date"): "int4",
    # DuckDB computes with a HUGEINT sum: the digits are the same, Postgres's type is bigint
    **{("int8", op, "int8"): "int8" for op in ("Add", "Sub", "Mul", "Div", "Mod")},
}

# Postgres operators (sqlglot node names) whose result is the left operand's type when it is json/jsonb.
JSON_SAME_AS_LEFT = frozenset(("JSONExtract", "JSONBExtract", "DPipe"))
