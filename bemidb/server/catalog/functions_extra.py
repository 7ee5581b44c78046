"""More of Postgres's client functions as DuckDB macros, installed after catalog/functions.py's (and replacing a
few of its stand-ins): format() with %s %I %L (Metabase's describe-fields, `format('%I.%I', schema, table)`),
parse_ident() (Grafana's column picker), pg_get_expr() giving back the column defaults synced from the source,
pg_get_indexdef(index, column, pretty) naming one index column (JDBC getIndexInfo, Metabase, DBeaver),
pg_get_keywords() in FROM (DBeaver, PgJDBC's getSQLKeywords, pgAdmin)."""

from __future__ import annotations

from bemidb.quoting import quote_literal
from bemidb.server.catalog.functions_math import json_macros, math_macros
from bemidb.server.catalog.keyword_rows import KEYWORDS

# Functions the rewrite sends to these macros (sql/extra_functions.py); `format` is sqlglot's exp.Format.
EXTRA_MACROS = frozenset({"pg_format", "parse_ident", "pg_get_keywords"})

FORMAT_ARGS = 8  # format() with up to this many arguments (DuckDB macros have no VARIADIC)
_HIDE = "chr(1)"
_PARSE_IDENT = ("list_transform(regexp_extract_all(s, '\"(?:[^\"]|\"\")*\"|[^.\"]+'), lambda p: CASE WHEN "
                "p[1] = '\"' THEN replace(p[2:-2], '\"\"', '\"') ELSE lower(trim(p)) END)")  # a % inside a substituted value, hidden from the next substitution


# Postgres 15's wording of each keyword category and bare-label flag (catdesc, baredesc; C locale)
_CATDESC = (("U", "unreserved"), ("C", "unreserved (cannot be function or type name)"),
            ("T", "reserved (can be function or type name)"), ("R", "reserved"))
_BAREDESC = ((True, "can be bare label"), (False, "requires AS"))


def _keywords(s: str) -> list[str]:
    values = ", ".join(f"({quote_literal(w)}, '{c}', {str(b).lower()})" for w, c, b in KEYWORDS)
    catdesc = " ".join(f"WHEN '{c}' THEN '{d}'" for c, d in _CATDESC)
    baredesc = " ".join(f"WHEN {str(b).lower()} THEN '{d}'" for b, d in _BAREDESC)
    return [f"CREATE OR REPLACE TABLE {s}.bemidb_keywords AS SELECT * FROM (VALUES {values}) "
            "AS k(word, catcode, barelabel)",
            f"CREATE OR REPLACE MACRO {s}.pg_get_keywords() AS TABLE SELECT word, catcode, barelabel, "
            f"CASE catcode {catdesc} END AS catdesc, CASE barelabel {baredesc} END AS baredesc "
            f"FROM {s}.bemidb_keywords ORDER BY word"]


def extra_macros(s: str) -> list[str]:
    """CREATE MACRO statements in schema `s` (the catalog schema, where functions.py put quote_ident & co.)."""
    step = (f"CREATE OR REPLACE MACRO {s}.bemidb_format_step(f, v) AS regexp_replace(f, '%[sIL]', replace(replace("
            f"CASE regexp_extract(f, '%([sIL])', 1) WHEN 'I' THEN {s}.quote_ident(v::VARCHAR) "
            f"WHEN 'L' THEN {s}.quote_nullable(v::VARCHAR) ELSE coalesce(v::VARCHAR, '') END, "
            f"'%', {_HIDE}), '\\', '\\\\'))")
    overloads = []
    for n in range(FORMAT_ARGS + 1):
        args = [f"a{i}" for i in range(1, n + 1)]
        body = "f"
        for arg in args:
            body = f"{s}.bemidb_format_step({body}, {arg})"
        overloads.append(f"({', '.join(['f', *args])}) AS replace(replace({body}, '%%', '%'), {_HIDE}, '%')")
    args_text = (f"coalesce((SELECT string_agg(CASE WHEN coalesce(_bu._bn, '') = '' THEN '' ELSE _bu._bn || ' ' END "
                 f"|| {s}.format_type(_bu._bt, NULL), ', ' ORDER BY _bu._bi) FROM (SELECT unnest(_bp.proargtypes) AS "
                 "_bt, unnest(coalesce(_bp.proargnames, [])) AS _bn, unnest(generate_series(1, len(_bp.proargtypes))) "
                 f"AS _bi FROM {s}.pg_proc _bp WHERE _bp.oid = funcoid) _bu), '')")
    return [
        *_keywords(s),
        *math_macros(s),
        *json_macros(s),
        # \df and JDBC getFunctions print a function's signature from its pg_proc row (catalog/pg_proc_rows.py)
        f"CREATE OR REPLACE MACRO {s}.pg_get_function_result(funcoid) AS (SELECT CASE WHEN _bp.proretset THEN "
        f"'SETOF ' ELSE '' END || {s}.format_type(_bp.prorettype, NULL) FROM {s}.pg_proc _bp WHERE _bp.oid = funcoid)",
        f"CREATE OR REPLACE MACRO {s}.pg_get_function_arguments(funcoid) AS {args_text}",
        f"CREATE OR REPLACE MACRO {s}.pg_get_function_identity_arguments(funcoid) AS {args_text}",
        step,
        f"CREATE OR REPLACE MACRO {s}.pg_format " + ", ".join(overloads),
        # parse_ident('a."B c".d') -> [a, B c, d]: quoted parts keep their case, bare ones are folded
        f"CREATE OR REPLACE MACRO {s}.parse_ident(s) AS {_PARSE_IDENT}, (s, strict) AS {_PARSE_IDENT}",
        # adbin holds the default's text (catalog/table_rows.py); other node trees are not kept: NULL
        f"CREATE OR REPLACE MACRO {s}.pg_get_expr(expr, relid) AS expr::VARCHAR, "
        "(expr, relid, pretty) AS expr::VARCHAR",
        # pretty: the table's schema only when it is not on search_path, as Postgres prints it
        f"CREATE OR REPLACE MACRO {s}.bemidb_indexdef_pretty(idxoid) AS (SELECT CASE WHEN "
        f"{s}.pg_table_is_visible(_bx.indrelid) THEN replace(_bl.defs[_bx.indexrelid], ' ON ' || "
        f"{s}.quote_ident(_bl.rel_nsp[_bx.indrelid]) || '.', ' ON ') ELSE _bl.defs[_bx.indexrelid] END "
        f"FROM {s}.pg_index _bx, {s}.bemidb_lookup _bl WHERE _bx.indexrelid = TRY_CAST(idxoid AS UINTEGER))",
        f"CREATE OR REPLACE MACRO {s}.pg_get_indexdef(idxoid) AS (SELECT defs FROM {s}.bemidb_lookup)"
        "[TRY_CAST(idxoid AS UINTEGER)], "
        f"(idxoid, col, pretty) AS CASE WHEN (col = 0 OR col IS NULL) AND pretty THEN "
        f"{s}.bemidb_indexdef_pretty(idxoid) WHEN col = 0 OR col IS NULL THEN (SELECT defs FROM {s}.bemidb_lookup)"
        f"[TRY_CAST(idxoid AS UINTEGER)] ELSE (SELECT _bc.def FROM {s}.bemidb_index_columns _bc "
        "WHERE _bc.indexrelid = TRY_CAST(idxoid AS UINTEGER) AND _bc.attnum = col) END",
    ]
