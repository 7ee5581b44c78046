"""Postgres SQL -> a plan (sql/plans.py): a DuckDB query, a setting change, a transaction verb, COPY, a
materialized view.

Utility statements are recognised by their leading keywords (utility.py); queries go through sqlglot
(postgres -> duckdb) plus the transform tables of remap.py. Translations are cached by statement text, so a
repeated query costs a dictionary lookup.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import ParseError
from sqlglot.tokens import TokenType

from bemidb.server.sql import column_origins, remap, typed_rewrites, utility
from bemidb.server.sql.keyword_aliases import quote_keyword_aliases
from bemidb.server.sql.plans import Empty, Plan, Query
from bemidb.server.sql.split import split, strip_comments

__all__ = ["split", "translate"]

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # "falling back to Command" warnings are expected


class _Postgres(Postgres):
    """sqlglot's Postgres dialect, except to_char stays a plain call: remap.py converts its template itself."""

    class Parser(Postgres.Parser):
        FUNCTIONS = {**Postgres.Parser.FUNCTIONS,
                     "TO_CHAR": lambda args: exp.Anonymous(this="to_char", expressions=args)}

        def _parse_interval(self, match_interval: bool = True):
            """interval '1 day 02:03:04' whole: sqlglot keeps its first number and unit only ('1' DAY)."""
            raw = self._next.text if self._curr is not None and self._curr.token_type == TokenType.INTERVAL and \
                self._next is not None and self._next.token_type == TokenType.STRING else None
            node = super()._parse_interval(match_interval)
            if raw and isinstance(node, exp.Interval) and node.args.get("unit") is not None and \
                    isinstance(node.this, exp.Literal) and len(raw.split()) > 2:
                return exp.Interval(this=exp.Literal.string(raw.replace(" +", " ")))  # DuckDB reads no "+02:00"
            return node


PASS_THROUGH_CHARS = 256 * 1024


@lru_cache(maxsize=4096)
def translate(statement: str) -> Plan:
    """One statement -> its plan. Raises ParseError (SQLSTATE 42601) when it cannot be parsed, and PgError for
    statements a read-only server refuses (25006) or does not support (0A000)."""
    text = strip_comments(statement)
    if not text:
        return Empty()
    plan = utility.classify(text, translate)
    if plan is not None:
        return plan
    if len(statement) > PASS_THROUGH_CHARS:
        # Huge statements are data (IN lists, VALUES): sqlglot takes seconds per MB, DuckDB milliseconds.
        return Query(statement, _tag_of(text))
    tree = _parsed(statement)
    if tree is None:
        return Empty()
    if isinstance(tree, exp.Command):
        # sqlglot gave up on the statement (EXPLAIN ANALYZE, VALUES forms ...): DuckDB gets it as written.
        return Query(statement, _tag_of(text))
    remap.table_functions(tree)  # FROM jsonb_each(...) as a subquery: its columns get origins too
    found = column_origins.origins(tree, statement)  # before the remap renames relations
    typed_args = typed_rewrites.candidates(tree, statement)  # resolved at plan time
    tree = remap.transform(tree, statement)
    return Query(tree.sql(dialect="duckdb"), _tag_of(text), param_hints=_param_hints(statement),
                 origins=found, typed_args=typed_args)


def translated_tree(statement: str) -> exp.Expression | None:
    """A query's sqlglot tree after the remap transforms: what translate generates DuckDB SQL from (a fresh
    tree per call; sql/grants.py rewrites its relations before generating)."""
    tree = _parsed(statement)
    return remap.transform(tree, statement) if tree is not None and not isinstance(tree, exp.Command) else tree


def parsed(statement: str) -> exp.Expression | None:
    """The statement's Postgres tree before the remap (a fresh tree per call; typed_rewrites.py re-translates)."""
    return _parsed(statement)


def _parsed(statement: str) -> exp.Expression | None:
    try:
        return sqlglot.parse_one(_OID_ARRAY.sub("::bigint[]", statement), read=_Postgres)
    except ParseError:
        quoted = quote_keyword_aliases(statement)  # `AS select`: retried only when the text does not parse
        if quoted == statement:
            raise
        return sqlglot.parse_one(_OID_ARRAY.sub("::bigint[]", quoted), read=_Postgres)



# Parameter types Postgres clients rely on that DuckDB would infer differently (asyncpg binds its type
# introspection query's $1 as oid[]; an int8[] there makes it introspect forever).
_PARAM_CAST = re.compile(r"\$(\d+)\s*::\s*(?:pg_catalog\.)?(oid|regclass|regtype|name)\s*(\[\])?", re.I)
_HINT_OIDS = {("oid", False): 26, ("oid", True): 1028, ("regclass", False): 2205, ("regtype", False): 2206,
              ("name", False): 19, ("name", True): 1003}


def _param_hints(statement: str) -> tuple[tuple[int, int], ...]:
    hints = []
    for m in _PARAM_CAST.finditer(statement):
        oid = _HINT_OIDS.get((m.group(2).lower(), bool(m.group(3))))
        if oid:
            hints.append((int(m.group(1)) - 1, oid))
    return tuple(hints)


# sqlglot reads `oid[]` as the oid type indexed by [], not as an array type (asyncpg sends $1::oid[]).
_OID_ARRAY = re.compile(r"::\s*(?:pg_catalog\.)?(?:oid|regtype|regclass)\s*\[\]", re.I)


def _tag_of(text: str) -> str:
    word = text.split(None, 1)[0].upper().lstrip("(") if text.split() else "SELECT"
    return "EXPLAIN" if word == "EXPLAIN" else "SELECT"
